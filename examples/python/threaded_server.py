"""The blocking server with a thread per client.

The code that talks to a client is blocking_server.py's serve_client(), as it
is; the only change is that each client gets a thread of its own to run it.
A thread that waits for its client's next line stops only that client, so
every client is served at once.

    python3 examples/python/threaded_server.py [port] [host]    # 127.0.0.1:8020

Measure it with `npx socklab load chat --protocol echo --port 8020 --serves all`.
"""
import threading

from blocking_server import listen_address, log, open_listener, serve_client


def main():
    host, port = listen_address("A line server with a thread per client: answers each line with the same line.")
    listener = open_listener(host, port)
    try:
        while True:
            conn, address = listener.accept()
            # daemon: Ctrl-C ends the server without waiting for connected clients to leave
            threading.Thread(target=serve_client, args=(conn, address), daemon=True).start()
    except KeyboardInterrupt:
        log("stopped")
    finally:
        listener.close()


if __name__ == "__main__":
    main()
