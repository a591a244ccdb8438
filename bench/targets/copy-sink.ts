/**
 * The ceiling for bulk bytes: the barest Node server that copies what a client
 * sends into a file and fsyncs it. It greets (`220 copy-sink ready`) and then
 * reads lines: a line that is a byte count `<size>` is answered `150` once the
 * file is open, then that many bytes are copied into it and fsynced, then
 * answered `226`; `QUIT` is answered `221` and the connection ends; any other
 * line (LIST, ECHO...) is answered `200 PONG`, like the line server does. So
 * a whole scripted session (greeting, small requests, an upload, goodbye)
 * runs over one connection with the very round trips it has against a
 * socklab server (PROTOCOL.md: `PUT` is answered `150` before the data), with
 * nothing parsed beyond "is this line a number, or QUIT". Prints "listening
 * on HOST:PORT".
 *
 * The bytes go to the file the way the async server writes them, and the
 * way a native copy does: gathered into large writes (1 MiB writev), several
 * in flight on libuv's thread pool while the socket is read, flushed to disk
 * in the background as they go, then one fsync (servers/storage/batched-writer.ts),
 * each file call a node:fs callback on a raw descriptor (servers/storage/fs-calls.ts).
 * So uploads from many clients reach the disk side by side, as they can with
 * the async server: a ceiling must not be slower than what it bounds.
 *
 * With `--hash` it is the hash-sink: the same copy, plus the sha256 of the
 * bytes computed as they arrive, on the one thread that reads them, and sent
 * back in the 226 (`226 <hex>`). That is the least a server must do that
 * checks what it stores (PROTOCOL.md: PUT carries the sha256), so it bounds
 * what socklab's servers can reach on an upload, as the copy-sink bounds the
 * bare copy (put-throughput.ts prints both).
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BatchedFileWriter } from '../../servers/storage/batched-writer.js';
import { closeFile, openFile, syncFile } from '../../servers/storage/fs-calls.js';
import { withGrowingReads } from '../../transport/accepted-reads.js';

const LF = 10;
const PONG = Buffer.from('200 PONG\n');
const BYE = Buffer.from('221 bye\n');
const hashing = process.argv.includes('--hash');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-copy-sink-'));
let uploads = 0;

interface Upload {
  readonly file: string;
  /** Resolves once the file is open; until then the socket is paused. */
  readonly opened: Promise<{ readonly fd: number; readonly writer: BatchedFileWriter }>;
  writer: BatchedFileWriter | null;
  remaining: number;
  /** The running sha256 of the bytes received (hash-sink only). */
  readonly hash: Hash | null;
}

// Paused on connect: its reads move to buffers that grow with the traffic (transport/accepted-reads.ts), as the
// servers' do; a ceiling must not read slower than what it bounds.
const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
  const socket = withGrowingReads(accepted);
  socket.on('error', () => {});
  socket.write('220 copy-sink ready\n');
  /** Bytes of a line not yet complete (or read while an upload was being committed). */
  let unread: Buffer = Buffer.alloc(0);
  let upload: Upload | null = null;
  /** Between the last byte of an upload and its 226, what arrives waits in `unread`. */
  let committing = false;

  const startUpload = (size: number): Upload => {
    const file = path.join(dir, `upload-${++uploads}`);
    socket.pause();
    const opened = openFile(file, 'w').then((fd) => {
      const writer = new BatchedFileWriter(fd);
      started.writer = writer;
      socket.write(`150 send ${size} bytes\n`);
      resumeUnlessCommitting();
      return { fd, writer };
    });
    const started: Upload = { file, opened, writer: null, remaining: size, hash: hashing ? createHash('sha256') : null };
    return started;
  };

  /** Queues bytes for the file; the socket pauses while the disk is behind. */
  const write = (upload: Upload, part: Buffer) => {
    upload.hash?.update(part);
    const wait = upload.writer === null ? upload.opened.then(({ writer }) => writer.write(part)) : upload.writer.write(part);
    if (wait === undefined) return;
    socket.pause();
    void wait.then(resumeUnlessCommitting);
  };

  /** Once the bytes are on disk: 226, and back to reading lines (paused meanwhile, so replies keep their order). */
  const commit = (done: Upload) => {
    upload = null;
    committing = true;
    socket.pause();
    void done.opened
      .then(async ({ fd, writer }) => {
        await writer.settle();
        await syncFile(fd);
        await closeFile(fd);
      })
      .then(() => {
        fs.unlink(done.file, () => {});
        socket.write(done.hash === null ? '226\n' : `226 ${done.hash.digest('hex')}\n`);
        committing = false;
        socket.resume();
        consume(Buffer.alloc(0));
      });
  };
  const resumeUnlessCommitting = () => {
    if (!committing && upload !== null) socket.resume();
  };

  const consume = (chunk: Buffer): void => {
    if (committing) {
      unread = Buffer.concat([unread, chunk]);
      return;
    }
    let rest: Buffer = unread.length === 0 ? chunk : Buffer.concat([unread, chunk]);
    unread = Buffer.alloc(0);
    while (rest.length > 0 || (upload !== null && upload.remaining === 0)) {
      if (upload !== null) {
        const part = rest.subarray(0, upload.remaining);
        upload.remaining -= part.length;
        rest = rest.subarray(part.length);
        if (part.length > 0) write(upload, part);
        if (upload.remaining > 0) return;
        unread = rest;
        commit(upload);
        return;
      }
      const lf = rest.indexOf(LF);
      if (lf < 0) break;
      const line = rest.subarray(0, lf).toString('latin1').trim();
      rest = rest.subarray(lf + 1);
      if (/^[0-9]+$/.test(line)) upload = startUpload(Number(line));
      else if (line === 'QUIT') {
        socket.end(BYE);
        return;
      } else if (line !== '') socket.write(PONG);
    }
    unread = rest;
  };

  socket.on('data', consume);
  socket.resume();
  socket.on('close', () => {
    if (upload === null) return;
    const { file, opened } = upload;
    void opened.then(async ({ fd, writer }) => {
      await writer.discard();
      await closeFile(fd);
      fs.unlink(file, () => {});
    });
  });
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 2048 }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening on ${address.address}:${address.port}\n`);
});
const stop = () => {
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
