/**
 * Real loopback connections for the transport tests (test/transport/): the
 * server's end accepted the way the servers' shell accepts it, and small
 * helpers to watch bytes move.
 */
import net from 'node:net';
import { delay } from './wire-fixture.js';

/** The most a socket hands over in one 'data' event. */
export const SOCKET_READ_BYTES = 64 * 1024;

/** A loopback connection; its server end is accepted paused and half-open, as the servers' shell accepts. */
export async function acceptedPair(): Promise<{ client: net.Socket; served: net.Socket }> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const served = await accepted;
  served.on('error', () => {});
  server.close();
  return { client, served };
}

/** Everything `socket` receives until it closes. */
export function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

/** Resolves once `value()` has not changed for `quietMs`: the two sides have stopped moving bytes. */
export async function settled(value: () => number, quietMs = 150): Promise<number> {
  for (let last = value(); ; ) {
    await delay(quietMs);
    const now = value();
    if (now === last) return now;
    last = now;
  }
}

/** Holds this thread for `ms`, running nothing else: no timer, no socket event, no promise. */
export function spinFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/**
 * Keeps this thread busy for `ms` from a point of the event loop where due
 * timers run before the next poll of the sockets (an immediate), the way a
 * busy or descheduled server finds its timers due and its sockets unread.
 */
export function busyPastTimers(ms: number, first: () => void = () => {}): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      first();
      spinFor(ms);
      resolve();
    }),
  );
}
