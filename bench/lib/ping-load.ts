/**
 * Request/response load with the least client-side work: each connection
 * sends `PING\n`, waits for one reply line, and sends the next. Counting LF
 * bytes is all the parsing it does, so the measured rate is the server's.
 */
import net from 'node:net';

const PING = Buffer.from('PING\n');

export interface PingLoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Connections that were greeted (a sequential server greets one at a time). */
  readonly greeted: number;
}

export async function pingLoad(port: number, connections: number, durationMs: number, host = '127.0.0.1'): Promise<PingLoadResult> {
  const sockets: net.Socket[] = [];
  let requests = 0;
  let greeted = 0;
  let measuring = false;
  let stopped = false;
  await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = net.connect({ host, port, noDelay: true });
          sockets.push(socket);
          let greetingSeen = false;
          socket.on('connect', () => resolve());
          socket.on('error', (error) => (stopped ? undefined : reject(error)));
          socket.on('data', (chunk: Buffer) => {
            let lines = 0;
            for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) lines++;
            if (!greetingSeen) {
              greetingSeen = true;
              greeted++;
              lines--;
            } else if (measuring) {
              requests += lines;
            }
            if (!stopped && lines >= 0) socket.write(PING);
          });
        }),
    ),
  );
  // Warm up briefly so JIT and connection set-up are not in the figure.
  await new Promise((resolve) => setTimeout(resolve, Math.min(500, durationMs / 4)));
  measuring = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stopped = true;
  for (const socket of sockets) socket.destroy();
  return { requests, seconds, perSecond: requests / seconds, greeted };
}
