"""A Python peer for `ping-rate`: the lecture's thread-per-connection server.

socketserver.ThreadingTCPServer gives every connection its own thread, which
reads with a blocking recv() on the socket itself. It greets, then answers
every line with `200 PONG`, like bench/targets/line-server.ts. Standard library only.

    python3 threaded_line_server.py [host] [port]
"""
import socket
import socketserver
import sys

GREETING = b"220 python-threads ready\n"
PONG = b"200 PONG\n"


class LineHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.sendall(GREETING)
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            lines = data.count(b"\n")
            if lines:
                self.request.sendall(PONG * lines)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 2048

    def handle_error(self, request, client_address):
        # A client that resets its connection (the load stopping) is the end of
        # that connection, not an error worth a traceback in the bench's output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with Server((host, port), LineHandler) as server:
        bound_host, bound_port = server.server_address[:2]
        print(f"listening on {bound_host}:{bound_port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
