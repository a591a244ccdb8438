/**
 * A plain line server in the test's own process, as `socklab load --protocol
 * echo` and the Python chat client expect one: no greeting, each line
 * answered with itself. It remembers every line it got.
 */
import net from 'node:net';

export interface LineServer {
  readonly port: number;
  /** Every line received, without its LF, in order. */
  readonly received: readonly string[];
}

/** Runs `fn` with a line server listening on a free loopback port, then closes it and its connections. */
export async function withLineServer(fn: (server: LineServer) => Promise<void>): Promise<void> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      for (let lf = pending.indexOf('\n'); lf >= 0; lf = pending.indexOf('\n')) {
        received.push(pending.slice(0, lf));
        socket.write(pending.slice(0, lf + 1));
        pending = pending.slice(lf + 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn({ port: (server.address() as net.AddressInfo).port, received });
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
