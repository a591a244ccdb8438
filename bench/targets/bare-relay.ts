/**
 * The ceiling for the workers server: the same thread-per-connection relay
 * (transport/thread-relay.ts, a piscina pool of the same size) with no
 * session behind it. Each worker greets and then answers every line with
 * `200 PONG`, like the line server: no parsing, no protocol, no storage. What
 * `workers` does on top of this costs the difference. Prints "listening on
 * HOST:PORT" like the other servers.
 *   node dist/bench/targets/bare-relay.js [host] [port] [threads]
 */
import net from 'node:net';
import { Piscina } from 'piscina';
import { withSharedReadBuffer } from '../../transport/accepted-reads.js';
import { createRelayChannel, SocketRelay } from '../../transport/thread-relay.js';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 0);
const threads = Number(process.argv[4] ?? 8);

const pool = new Piscina<{ channel: SharedArrayBuffer }, void>({
  filename: new URL('./bare-relay-worker.js', import.meta.url).href,
  minThreads: threads,
  maxThreads: threads,
  idleTimeout: Number.POSITIVE_INFINITY,
  execArgv: [],
});

const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (accepted) => {
  // Read the way the workers server reads (its reads land in one shared buffer, the relay copies them into the ring).
  const socket = withSharedReadBuffer(accepted);
  socket.on('error', () => {});
  const channel = createRelayChannel();
  const relay = new SocketRelay(socket, channel, 0, () => {});
  pool
    .run({ channel })
    .then(() => relay.finished)
    .catch(() => {})
    .finally(() => {
      relay.close();
      socket.destroy();
    });
});
server.listen({ host, port, backlog: 2048 }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening on ${address.address}:${address.port}\n`);
});
const stop = () => {
  server.close();
  void pool.destroy().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
