/**
 * The ceiling for bulk bytes: the barest Node server that copies what a client
 * sends into a file and fsyncs it. Protocol: one line `<size>\n`, then size
 * bytes; it answers `226\n` once they are on disk. Prints "listening on HOST:PORT".
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-copy-sink-'));

const server = net.createServer((socket) => {
  socket.on('error', () => {});
  let header = Buffer.alloc(0);
  let remaining = -1;
  const file = path.join(dir, `upload-${socket.remotePort}`);
  const out = fs.createWriteStream(file);
  socket.on('data', (chunk: Buffer) => {
    if (remaining < 0) {
      header = Buffer.concat([header, chunk]);
      const lf = header.indexOf(10);
      if (lf < 0) return;
      remaining = Number(header.subarray(0, lf).toString());
      chunk = header.subarray(lf + 1);
    }
    remaining -= chunk.length;
    if (!out.write(chunk)) {
      socket.pause();
      out.once('drain', () => socket.resume());
    }
    if (remaining <= 0) {
      out.end(() => {
        const fd = fs.openSync(file, 'r');
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.rmSync(file, { force: true });
        socket.end('226\n');
      });
    }
  });
});
server.listen({ host: '127.0.0.1', port: 0 }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening on ${address.address}:${address.port}\n`);
});
const stop = () => {
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
