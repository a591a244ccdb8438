"""Homework 1: a client that sends every line you type to the server and
prints its answer, until you type STOP (or the input ends).

    python3 examples/python/chat_client.py [port] [host]    # 127.0.0.1:8020
    printf 'hello\nworld\nSTOP\n' | python3 examples/python/chat_client.py

It talks to the line servers next to it (blocking_server.py and the others),
which answer each line with one line.
"""
import argparse
import socket
import sys

STOP_WORD = "STOP"


def main():
    parser = argparse.ArgumentParser(description="Sends each line you type to a line server and prints its answer, until STOP.")
    parser.add_argument("port", nargs="?", type=int, default=8020, help="the server's port (default 8020)")
    parser.add_argument("host", nargs="?", default="127.0.0.1", help="the server's address (default 127.0.0.1)")
    args = parser.parse_args()
    try:
        sock = socket.create_connection((args.host, args.port), timeout=10)
    except OSError as error:
        sys.exit(f"cannot connect to {args.host}:{args.port}: {error.strerror or error} (is the server running?)")
    sock.settimeout(None)  # the timeout was for connecting; an answer may wait for the server to get to us
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"connected to {args.host}:{args.port}; type lines, {STOP_WORD} ends", file=sys.stderr)
    # A file over the socket reads whole lines, however TCP cut them into pieces.
    answers = sock.makefile("r", encoding="utf-8", errors="replace", newline="\n")
    try:
        with sock, answers:
            while True:
                if interactive:
                    print("> ", end="", flush=True)
                line = sys.stdin.readline()
                if line == "" or line.strip() == STOP_WORD:
                    break  # end of input, or STOP: the STOP itself is not sent
                sock.sendall(line.rstrip("\r\n").encode("utf-8") + b"\n")
                reply = answers.readline()  # blocks until the server answers (a blocking server: until it serves us)
                if reply == "":
                    sys.exit("the server closed the connection")
                print(reply.rstrip("\n"), flush=True)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        sys.exit(130)
    except ConnectionError as error:
        sys.exit(f"the connection broke: {error.strerror or error}")


if __name__ == "__main__":
    main()
