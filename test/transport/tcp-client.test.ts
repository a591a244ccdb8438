/**
 * transport/tcp-client.ts against real listeners: the byte channel every
 * client reads and writes through, and the messages it gives when there is no
 * connection (the CLIs print them as they are, so they must say what to do).
 */
import dns from 'node:dns';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { ConnectionError, ErrorCodes } from '../../protocol/index.js';
import { connectTcp } from '../../transport/tcp-client.js';
import { closedPort } from '../clients/run-cli.js';
import { spinFor } from '../helpers/socket-pair.js';
import { delay, eventually } from '../helpers/wire-fixture.js';
import type { Tap } from '../helpers/tap.js';

/** A listener that answers each line with `200 <line>` and ends after `QUIT`. */
async function echoServer(t: Tap): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        if (line === 'QUIT') socket.end('221 bye\r\n');
        else socket.write(`200 ${line}\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

async function rejection(connecting: Promise<unknown>): Promise<ConnectionError> {
  try {
    await connecting;
  } catch (error) {
    if (error instanceof ConnectionError) return error;
    throw error;
  }
  throw new Error('connected where no connection was expected');
}

async function readText(read: () => Promise<Uint8Array | null>, until: string): Promise<string> {
  let text = '';
  while (!text.includes(until)) {
    const bytes = await read();
    if (bytes === null) break;
    text += Buffer.from(bytes).toString();
  }
  return text;
}

t.test('bytes go both ways; the end of the connection reads as null', async (t) => {
  const port = await echoServer(t);
  const channel = await connectTcp({ host: '127.0.0.1', port });
  t.teardown(() => channel.close());
  await channel.write(Buffer.from('PING\n'));
  t.equal(await readText(() => channel.read(), '\r\n'), '200 PING\r\n');
  await channel.write(Buffer.from('QUIT\n'));
  // Read only once the reply and the end have both arrived: a read must return what is already there.
  await new Promise((resolve) => channel.socket.once('end', resolve));
  t.equal(await readText(() => channel.read(), '\r\n'), '221 bye\r\n');
  t.equal(await channel.read(), null, 'the server closed: no more bytes');
  channel.close();
  t.ok(channel.socket.destroyed, 'close() lets go of the socket');
});

t.test("the server ending its side leaves ours open: what the client sends after that still arrives", async (t) => {
  const received: Buffer[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.end('221 bye\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const channel = await connectTcp({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  t.teardown(() => channel.close());
  t.equal(await readText(() => channel.read(), '\r\n'), '221 bye\r\n');
  t.equal(await channel.read(), null, "the server's end");
  await channel.write(Buffer.from('QUIT\r\n'));
  await eventually(() => Buffer.concat(received).toString() === 'QUIT\r\n', 'the server gets what the client sent after its end');
});

t.test('the connect timeout bounds only the handshake: a connection older than it keeps working', async (t) => {
  const port = await echoServer(t);
  const channel = await connectTcp({ host: '127.0.0.1', port, connectTimeoutMs: 150 });
  t.teardown(() => channel.close());
  await delay(450);
  t.notOk(channel.socket.destroyed, 'still connected after three times the connect timeout');
  await channel.write(Buffer.from('PING\n'));
  t.equal(await readText(() => channel.read(), '\r\n'), '200 PING\r\n');
});

t.test('a handshake that completed while this process was held up past the connect timeout: connected, not timed out', async (t) => {
  const port = await echoServer(t);
  const connecting = connectTcp({ host: '127.0.0.1', port, connectTimeoutMs: 100 });
  // A loaded machine: the kernel completes the handshake, but this thread runs again only after the timeout is
  // due, and Node runs due timers before it polls its sockets.
  spinFor(300);
  const channel = await connecting;
  t.teardown(() => channel.close());
  await channel.write(Buffer.from('PING\n'));
  t.equal(await readText(() => channel.read(), '\r\n'), '200 PING\r\n', 'and the connection works');
});

t.test('no server there: the message names the address and the command that starts one', async (t) => {
  const port = await closedPort();
  const error = await rejection(connectTcp({ host: '127.0.0.1', port }));
  t.equal(error.code, ErrorCodes.CONNECTION_REFUSED);
  t.match(error.message, `could not connect to 127.0.0.1:${port}: connection refused`);
  t.match(error.message, new RegExp(`socklab server async --port ${port}"`), 'and how to start a server on that port');
  t.equal((error.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED', "the system's error is kept as the cause");
});

t.test('a host name that does not resolve: the message names it and the option to check', async (t) => {
  const error = await rejection(connectTcp({ host: 'no-such-host.invalid', port: 8020 }));
  t.equal(error.code, ErrorCodes.CONNECTION_FAILED);
  t.equal(error.message, 'could not connect: no such host "no-such-host.invalid" (check --host)');
  // ENOTFOUND from a resolver, EAI_AGAIN on a machine without one.
  t.match((error.cause as NodeJS.ErrnoException).code, /^(ENOTFOUND|EAI_AGAIN)$/, "the system's error is kept as the cause");
});

t.test('a name server that does not answer (EAI_AGAIN) reads as a host to check too', async (t) => {
  // A resolver that fails this way cannot be summoned on demand: net.connect looks names up through dns.lookup.
  const realLookup = dns.lookup;
  dns.lookup = ((hostname: string, _options: unknown, callback: (error: NodeJS.ErrnoException) => void) => {
    const error: NodeJS.ErrnoException = Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname}`), { code: 'EAI_AGAIN', syscall: 'getaddrinfo' });
    process.nextTick(callback, error);
  }) as unknown as typeof dns.lookup;
  t.teardown(() => {
    dns.lookup = realLookup;
  });
  const error = await rejection(connectTcp({ host: 'flaky-resolver.example', port: 8020 }));
  t.equal(error.code, ErrorCodes.CONNECTION_FAILED);
  t.equal(error.message, 'could not connect: no such host "flaky-resolver.example" (check --host)');
  t.equal((error.cause as NodeJS.ErrnoException).code, 'EAI_AGAIN');
});

t.test('any other failure says where and what the system said', async (t) => {
  const error = await rejection(connectTcp({ host: '255.255.255.255', port: 9 }));
  t.equal(error.code, ErrorCodes.CONNECTION_FAILED);
  const cause = error.cause as NodeJS.ErrnoException;
  t.equal(error.message, `could not connect to 255.255.255.255:9: ${cause.message}`);
});

t.test('a listener that never completes the handshake: the connect gives up after the timeout, and says so', async (t) => {
  // A listener whose thread is blocked never accepts: once its backlog is full, the kernel drops new handshakes.
  const blocked = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const net = require('node:net');
     const { parentPort, workerData } = require('node:worker_threads');
     const server = net.createServer();
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       setTimeout(() => Atomics.wait(workerData, 0, 0), 50);
     });`,
    { eval: true, workerData: blocked },
  );
  t.teardown(async () => {
    Atomics.store(blocked, 0, 1);
    Atomics.notify(blocked, 0);
    await worker.terminate();
  });
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  await delay(200); // the worker is asleep: nothing accepts from now on
  const fillers: net.Socket[] = [];
  t.teardown(() => fillers.forEach((socket) => socket.destroy()));
  for (let i = 0; i < 4; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => {}));
  await delay(200);
  const started = performance.now();
  const error = await rejection(connectTcp({ host: '127.0.0.1', port, connectTimeoutMs: 300 }));
  t.equal(error.code, ErrorCodes.TIMEOUT);
  t.equal(error.message, `could not connect to 127.0.0.1:${port} within 0.3 s`);
  t.ok(performance.now() - started >= 290, 'not before the timeout');
});

t.test('a server that resets the connection ends the channel: reads give null, writes fail as CONNECTION_CLOSED, nothing is thrown', async (t) => {
  // Reset on the first request, once the connection is up (a server that crashed, a proxy that gave up).
  const server = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const channel = await connectTcp({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  t.teardown(() => channel.close());
  await channel.write(Buffer.from('PING\n'));
  t.equal(await channel.read(), null, 'the reset reads as the end');
  await t.rejects(channel.write(Buffer.from('PING\n')), { code: ErrorCodes.CONNECTION_CLOSED });
});
