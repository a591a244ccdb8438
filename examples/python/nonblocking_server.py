"""The line server with non-blocking sockets and one loop (`selectors`).

One thread serves every client: no call ever waits for one client. The loop
asks the kernel which sockets are ready (epoll on Linux, kqueue on macOS),
and does only what will not block: accept() on the listener when a client is
in the queue, recv() on a socket that has data, send() while the socket
takes more.

    python3 examples/python/nonblocking_server.py [port] [host]    # 127.0.0.1:8020

Measure it with `npx socklab load chat --protocol echo --port 8020 --serves all`.
"""
import selectors

from blocking_server import answer_lines, listen_address, log, name, open_listener


class Client:
    """What the loop remembers about one connection between two events."""

    def __init__(self, conn, address):
        self.conn = conn
        self.address = address
        self.received = b""  # the start of a line whose end has not come yet
        self.to_send = b""  # answers the socket did not take yet


def accept(selector, listener):
    try:
        conn, address = listener.accept()  # ready: does not block
    except (BlockingIOError, ConnectionError):
        return  # the client gave up between select() and accept()
    conn.setblocking(False)
    selector.register(conn, selectors.EVENT_READ, Client(conn, address))
    log(f"serving {name(address)}")


def close(selector, client):
    selector.unregister(client.conn)
    client.conn.close()
    log(f"{name(client.address)} closed")


def on_ready(selector, client, events):
    if events & selectors.EVENT_READ:
        try:
            data = client.conn.recv(4096)  # there is data (or the end): does not block
        except BlockingIOError:
            data = None  # a false alarm, rare but allowed: nothing to read after all
        except ConnectionError:
            data = b""
        if data == b"":
            close(selector, client)
            return
        if data:
            answers, client.received = answer_lines(client.received + data)
            client.to_send += answers
    if client.to_send:
        try:
            sent = client.conn.send(client.to_send)  # takes what fits in the socket's buffer, maybe not all
        except BlockingIOError:
            sent = 0
        except ConnectionError:
            close(selector, client)
            return
        client.to_send = client.to_send[sent:]
    # Ask to hear when the socket takes more only while answers are left to send:
    # a socket is almost always writable, and listening for it otherwise would spin the loop.
    wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.to_send else 0)
    selector.modify(client.conn, wanted, client)


def main():
    host, port = listen_address("A non-blocking line server (selectors): answers each line with the same line.")
    listener = open_listener(host, port)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    try:
        while True:
            for key, events in selector.select():  # the only place the loop waits
                if key.data is None:
                    accept(selector, listener)
                else:
                    on_ready(selector, key.data, events)
    except KeyboardInterrupt:
        log("stopped")
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()


if __name__ == "__main__":
    main()
