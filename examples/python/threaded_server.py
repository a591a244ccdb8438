"""The blocking server with a thread per client.

The code that talks to a client is blocking_server.py's serve_client(), and
the accept loop is its accept_forever(), both as they are; the only change is
that each client gets a thread of its own to run serve_client in.
A thread that waits for its client's next line stops only that client, so
every client is served at once.

    python3 examples/python/threaded_server.py [port] [host]    # 127.0.0.1:8020

Measure it with `npx socklab load chat --protocol echo --port 8020 --serves all`.
"""
import threading

from blocking_server import accept_forever, listen_address, open_listener, serve_client


def serve_in_a_thread(conn, address):
    """Starts serve_client for this client in a new thread and returns at once, ready to accept the next."""
    # daemon: Ctrl-C ends the server without waiting for connected clients to leave
    threading.Thread(target=serve_client, args=(conn, address), daemon=True).start()


def main():
    host, port = listen_address("A line server with a thread per client: answers each line with the same line.")
    accept_forever(open_listener(host, port), serve_in_a_thread)


if __name__ == "__main__":
    main()
