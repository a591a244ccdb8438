#!/usr/bin/env python3
"""Homework 3: a blocking file server speaking socklab protocol v1.

The lecture's server (socket, SO_REUSEADDR, bind, listen, accept), grown into
the file-transfer server of homework 3: one client after another, each served
to the end before the next is accepted. The protocol is protocol/PROTOCOL.md;
`npx socklab check --port 8020` says whether this server follows it.

    python3 examples/python/file_server.py --port 8020 --root storage

Standard library only.
"""
import argparse
import datetime
import hashlib
import os
import re
import socket
import unicodedata

MAX_LINE = 1024                  # bytes in a request line, LF excluded
MAX_FILE_SIZE = 64 * 1024 * 1024  # larger uploads get 552 before any data
IDLE_TIMEOUT = 120               # seconds a client may stay silent
MODES = ('ask', 'new', 'overwrite', 'append')


class ClientGone(Exception):
    """The client closed its side (or went silent): its session is over."""


class Connection:
    """One client's socket with a buffer: the bytes recv() returned that no one has used yet.

    recv() returns whatever has arrived: half a line, or three requests and the
    start of a file. So we keep the rest for the next read instead of losing it.
    """

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b''

    def recv_more(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            self.reply('421 idle timeout')
            raise ClientGone()
        if not chunk:               # b'' means the client closed its side (EOF)
            raise ClientGone()
        self.buffer += chunk

    def read_line(self):
        """The next request line as bytes, without LF (or CR LF); None if it is too long."""
        while b'\n' not in self.buffer:
            if len(self.buffer) > MAX_LINE + 1:    # no LF in sight: it can only be too long
                return None
            self.recv_more()
        line, self.buffer = self.buffer.split(b'\n', 1)
        if line.endswith(b'\r'):
            line = line[:-1]
        return None if len(line) > MAX_LINE else line

    def read_exactly(self, size):
        """Yields the next `size` bytes in pieces, as they arrive (a file may not fit in memory)."""
        while size > 0:
            if not self.buffer:
                self.recv_more()
            piece, self.buffer = self.buffer[:size], self.buffer[size:]
            size -= len(piece)
            yield piece

    def reply(self, line):
        self.sock.sendall(line.encode('utf-8') + b'\n')


def is_valid_name(name):
    """PROTOCOL.md's file-name rule: letters, digits, '.', '_', '-', first a letter or digit.

    It is the only thing between a request and the disk: '../x', 'a/b' and
    '.hidden' fail it, so nothing outside the storage folder is ever touched.
    """
    if not 1 <= len(name) <= 128 or len(name.encode('utf-8')) > 255:
        return False
    if unicodedata.normalize('NFC', name) != name:
        return False

    def letter_or_digit(ch):
        return unicodedata.category(ch)[0] in 'LN'

    return letter_or_digit(name[0]) and all(letter_or_digit(ch) or ch in '._-' for ch in name)


class Server:
    def __init__(self, root):
        self.root = root
        self.uploads = 0

    def path(self, name):
        return os.path.join(self.root, name)

    def size_of(self, name):
        """The file's size, or None if there is no such file."""
        path = self.path(name)
        return os.path.getsize(path) if os.path.isfile(path) else None

    def sha256_of(self, name):
        digest = hashlib.sha256()
        with open(self.path(name), 'rb') as f:
            for block in iter(lambda: f.read(65536), b''):
                digest.update(block)
        return digest.hexdigest()

    # --- one client ---------------------------------------------------------

    def serve(self, sock):
        conn = Connection(sock)
        conn.reply('220 socklab/1 sequential ready')
        pending_put = None          # after a 350: the PUT waiting for OVERWRITE/APPEND/CANCEL
        while True:
            raw = conn.read_line()
            if raw is None:
                conn.reply('500 line too long')   # we cannot find the next line safely: close
                return
            try:
                line = raw.decode('utf-8')
            except UnicodeDecodeError:
                conn.reply('500 line is not valid UTF-8')
                pending_put = None
                continue
            if line.strip(' ') == '':
                continue                           # empty lines get no reply
            line = line.lstrip(' ')
            word, _, rest = line.partition(' ')
            word = word.upper() if word.isascii() else word
            args = [a for a in rest.split(' ') if a]   # one or more spaces between arguments

            if pending_put is not None:
                name, size, sha256 = pending_put
                pending_put = None
                if word in ('OVERWRITE', 'APPEND') and not args:
                    self.receive(conn, name, size, word.lower(), sha256)
                elif word == 'CANCEL' and not args:
                    conn.reply('200 cancelled')
                else:
                    conn.reply('503 expected OVERWRITE, APPEND or CANCEL')
                continue

            if word == 'QUIT':
                if args:
                    conn.reply('501 QUIT takes no arguments')
                    continue
                conn.reply('221 bye')
                return
            if word == 'PUT':
                pending_put = self.put(conn, args)
            elif word == 'ECHO':
                conn.reply('200 ' + rest if rest else '200')   # the text byte for byte, spaces too
            elif word in ('PING', 'HELP', 'LIST') and args:
                conn.reply('501 %s takes no arguments' % word)
            elif word == 'PING':
                conn.reply('200 PONG')
            elif word == 'HELP':
                conn.reply('214 PING, ECHO <text>, LIST, STAT <name>, GET <name>, '
                           'PUT <name> <size> [mode=ask|new|overwrite|append] [sha256=<hex>], HELP, QUIT')
            elif word == 'LIST':
                self.list(conn)
            elif word in ('STAT', 'GET'):
                if len(args) != 1:
                    conn.reply('501 %s takes one file name' % word)
                elif not is_valid_name(args[0]):
                    conn.reply('553 bad name')
                elif self.size_of(args[0]) is None:
                    conn.reply('550 %s: no such file' % args[0])
                elif word == 'STAT':
                    conn.reply('213 %d %s' % (self.size_of(args[0]), self.sha256_of(args[0])))
                else:
                    self.send_file(conn, args[0])
            elif word in ('OVERWRITE', 'APPEND', 'CANCEL'):
                conn.reply('503 no PUT is waiting for an answer')
            else:
                conn.reply('500 unknown command')

    def list(self, conn):
        files = []
        for entry in os.scandir(self.root):
            # Our own temporary files (and anything else that is not a name) stay hidden.
            if is_valid_name(entry.name) and entry.is_file(follow_symlinks=False):
                st = entry.stat()
                mtime = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
                files.append((entry.name, st.st_size, mtime.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'))
        files.sort(key=lambda f: f[0].encode('utf-8'))   # bytewise, as PROTOCOL.md says
        conn.reply('211 %d' % len(files))
        for name, size, mtime in files:
            conn.reply('%s %d %s' % (name, size, mtime))

    def send_file(self, conn, name):
        digest = hashlib.sha256()
        with open(self.path(name), 'rb') as f:
            size = os.fstat(f.fileno()).st_size
            conn.reply('150 %d' % size)
            for block in iter(lambda: f.read(65536), b''):
                digest.update(block)
                conn.sock.sendall(block)
        conn.reply('226 ' + digest.hexdigest())

    def put(self, conn, args):
        """PUT <name> <size> [mode=...] [sha256=...]: checks in PROTOCOL.md's order; returns a pending PUT after 350."""
        if len(args) < 2 or not re.fullmatch(r'[0-9]+', args[1]):
            conn.reply('501 usage: PUT <name> <size> [mode=ask|new|overwrite|append] [sha256=<hex>]')
            return None
        name, size, options = args[0], int(args[1]), {}
        for option in args[2:]:
            key, _, value = option.partition('=')
            good = (key == 'mode' and value in MODES) or (key == 'sha256' and re.fullmatch(r'[0-9a-f]{64}', value))
            if not good or key in options:
                conn.reply('501 bad option: ' + option)
                return None
            options[key] = value
        mode, sha256 = options.get('mode', 'ask'), options.get('sha256')
        if not is_valid_name(name):
            conn.reply('553 bad name')
        elif size > MAX_FILE_SIZE:
            conn.reply('552 too large (limit %d bytes)' % MAX_FILE_SIZE)
        elif self.size_of(name) is None:
            self.receive(conn, name, size, 'append' if mode == 'append' else 'overwrite', sha256)
        elif mode == 'new':
            conn.reply('554 %s exists' % name)
        elif mode == 'ask':
            conn.reply('350 %s exists %d' % (name, self.size_of(name)))
            return (name, size, sha256)
        else:
            self.receive(conn, name, size, mode, sha256)
        return None

    def receive(self, conn, name, size, mode, sha256):
        """150, then exactly `size` bytes into a temporary file; then the file is replaced in one step.

        Until os.replace() the old file is untouched: a client that disconnects
        half-way, or a wrong sha256, leaves it exactly as it was.
        """
        self.uploads += 1
        temp = self.path('.upload-%d-%d.tmp' % (os.getpid(), self.uploads))  # not a valid name: never listed
        digest = hashlib.sha256()
        try:
            with open(temp, 'wb') as out:
                if mode == 'append' and self.size_of(name) is not None:
                    with open(self.path(name), 'rb') as old:
                        for block in iter(lambda: old.read(65536), b''):
                            out.write(block)
                conn.reply('150 send %d bytes' % size)
                for piece in conn.read_exactly(size):
                    digest.update(piece)
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())            # on disk before we say 226
                new_size = out.tell()
            if sha256 is not None and digest.hexdigest() != sha256:
                conn.reply('451 sha256 mismatch: upload discarded, %s unchanged' % name)
                return
            os.replace(temp, self.path(name))      # atomic: the old file or the new one, never a mix
            conn.reply('226 %s %d %s' % (name, new_size, digest.hexdigest()))
        finally:
            if os.path.exists(temp):
                os.remove(temp)


def main():
    parser = argparse.ArgumentParser(description='Homework 3: a blocking socklab protocol v1 file server.')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8020)
    parser.add_argument('--root', default='storage', help='the folder the files live in (created if absent)')
    args = parser.parse_args()
    os.makedirs(args.root, exist_ok=True)
    server = Server(args.root)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Without SO_REUSEADDR a restart right after a client session fails with
    # "Address already in use" while the old connection sits in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen()
    print('listening on %s:%d, files in %s' % (args.host, listener.getsockname()[1], os.path.abspath(args.root)), flush=True)
    try:
        while True:
            sock, address = listener.accept()  # the next client waits in the backlog until this line
            print('client %s:%d connected' % address, flush=True)
            sock.settimeout(IDLE_TIMEOUT)
            try:
                server.serve(sock)             # one client at a time: the others wait
            except (ClientGone, ConnectionError):
                pass
            finally:
                sock.close()
                print('client %s:%d done' % address, flush=True)
    except KeyboardInterrupt:
        print('stopped', flush=True)
    finally:
        listener.close()


if __name__ == '__main__':
    main()
