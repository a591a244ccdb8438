"""The lecture's blocking server, completed for homeworks 1 and 2.

It answers every line a client sends with the same line, and serves one
client after another: while it talks to one, every other client waits.

    python3 examples/python/blocking_server.py            # 127.0.0.1:8020
    python3 examples/python/blocking_server.py 9000       # another port
    python3 examples/python/blocking_server.py 9000 0.0.0.0

Measure it with `npx socklab load chat --protocol echo --port 8020 --serves 1`.
threaded_server.py and nonblocking_server.py import the pieces below and
change only how clients are scheduled. Standard library only, Python 3.9+.
"""
import argparse
import socket
import sys


def log(*words):
    # flush: the line appears at once, even when the output goes to a file or a pipe
    print(*words, flush=True)


def listen_address(description):
    """The host and port given on the command line (both optional)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("port", nargs="?", type=int, default=8020, help="port to listen on (default 8020; 0: any free port)")
    parser.add_argument("host", nargs="?", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error(f"port must be between 0 and 65535, not {args.port}")
    return args.host, args.port


def open_listener(host, port):
    """socket, SO_REUSEADDR, bind, listen: as in the lecture."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Without it, restarting the server right after Ctrl-C fails with "Address already in use"
    # while the old connections sit in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        sys.exit(f"cannot listen on {host}:{port}: {error.strerror} (is another server running there? try another port)")
    # The kernel completes up to this many handshakes by itself while we are busy with a client:
    # those clients are connected, but nobody reads what they send until we accept() them.
    listener.listen(128)
    host, port = listener.getsockname()  # the real port, when 0 was asked for
    log(f"listening on {host}:{port}")
    return listener


def answer(line):
    """What the server says to one line (without its newline): the line itself."""
    return line


def answer_lines(received):
    """The answers to every complete line in `received`, and what is left of an unfinished one.

    TCP carries bytes, not messages: one recv() may hold half a line, or several lines.
    """
    answers = b""
    while b"\n" in received:
        line, received = received.split(b"\n", 1)
        answers += answer(line) + b"\n"
    return answers, received


def name(address):
    return f"{address[0]}:{address[1]}"


def serve_client(conn, address):
    """Answers the client's lines until it hangs up. Blocks all the while."""
    log(f"serving {name(address)}")
    with conn:
        received = b""
        while True:
            try:
                data = conn.recv(4096)  # blocks until this client sends something
            except ConnectionError:
                break  # the client dropped the connection
            if not data:
                break  # b"": the client closed its side
            answers, received = answer_lines(received + data)
            try:
                conn.sendall(answers)
            except ConnectionError:
                break
    log(f"{name(address)} closed")


def accept_forever(listener, on_client):
    """Takes the clients from the queue one by one and hands each to on_client, until Ctrl-C."""
    try:
        while True:
            conn, address = listener.accept()  # blocks until a client is in the queue
            on_client(conn, address)
    except KeyboardInterrupt:
        log("stopped")
    finally:
        listener.close()


def main():
    host, port = listen_address("A blocking line server: answers each line with the same line, one client after another.")
    # serve_client returns only when its client leaves: nobody else is accepted, read or answered meanwhile.
    accept_forever(open_listener(host, port), serve_client)


if __name__ == "__main__":
    main()
