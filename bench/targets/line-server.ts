/**
 * The ceiling for small requests: the barest Node server that answers every
 * line, with no protocol, no parsing and no storage. Whatever socklab's servers
 * do on top costs the difference. Prints "listening on HOST:PORT" like they do.
 */
import net from 'node:net';
import { countLineFeeds } from '../load/ping-load.js';

const REPLY = Buffer.from('200 PONG\n');

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {});
  socket.write('220 line-server ready\n');
  socket.on('data', (chunk: Buffer) => {
    const lines = countLineFeeds(chunk);
    if (lines === 1) socket.write(REPLY);
    else if (lines > 1) socket.write(Buffer.concat(Array.from({ length: lines }, () => REPLY)));
  });
});
server.listen({ host: process.argv[2] ?? '127.0.0.1', port: Number(process.argv[3] ?? 0), backlog: 2048 }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening on ${address.address}:${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => process.exit(0));
