/**
 * transport/drain.ts over a real TCP connection: waiting for a client that is
 * behind on our writes. A client that takes nothing for the stall time is cut
 * off (not sooner), one that reads slowly is served however long it takes, a
 * wait without a stall time ends only with the client, and a wait that is over
 * leaves nothing behind on the socket.
 */
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { ConnectionError, ErrorCodes } from '../../protocol/index.js';
import { drained } from '../../transport/drain.js';
import { acceptedPair, busyPastTimers } from '../helpers/socket-pair.js';
import { delay, eventually } from '../helpers/wire-fixture.js';
import type { Tap } from '../helpers/tap.js';

const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

async function connected(t: Tap): Promise<{ client: net.Socket; served: net.Socket }> {
  const pair = await acceptedPair();
  t.teardown(() => {
    pair.client.destroy();
    pair.served.destroy();
  });
  return pair;
}

/** Writes until the kernel takes no more (the client does not read) and `extra` bytes wait in the socket. */
function fillBehind(served: net.Socket, extra = 0): void {
  while (served.write(CHUNK));
  for (let queued = 0; queued < extra; queued += CHUNK.length) served.write(CHUNK);
}

/** How a wait ended, or 'pending' if it had not within `ms`. */
async function outcomeWithin(wait: Promise<void>, ms: number): Promise<'drained' | 'pending' | ConnectionError> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      wait.then(
        () => 'drained' as const,
        (error: unknown) => {
          if (error instanceof ConnectionError) return error;
          throw error;
        },
      ),
      new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

t.test('a client that takes none of our bytes is cut off after the stall time, not sooner, and the log says why', async (t) => {
  const stallMs = 400;
  const { client, served } = await connected(t);
  client.pause();
  fillBehind(served);
  let stalls = 0;
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  const started = performance.now();
  const outcome = await outcomeWithin(
    drained(served, stallMs, () => stalls++),
    10 * stallMs,
  );
  const waited = performance.now() - started;
  if (!(outcome instanceof ConnectionError)) {
    t.fail(`the wait ended ${outcome}`);
    return;
  }
  t.equal(outcome.code, ErrorCodes.WRITE_STALLED);
  t.match(outcome.message, /stopped reading.*0\.4 s/, 'the message gives the stall time in seconds');
  t.ok(waited >= stallMs - 20, `not before the stall time (${Math.round(waited)} ms)`);
  // Checked a quarter stall time apart: a check once a second would cut this client off 2.5 stall times late.
  t.ok(waited < 2 * stallMs, `nor much after it (${Math.round(waited)} ms)`);
  t.equal(stalls, 1, 'the owner is told once');
  t.ok(served.destroyed, 'the socket is closed: the client could not read a 421 either');
  client.resume();
  await clientClosed; // once it reads what the kernel still holds, the client finds the connection ended
});

t.test('a client that takes some of our bytes restarts the clock: it is cut off a whole stall time after its last progress', async (t) => {
  const stallMs = 1000;
  const { client, served } = await connected(t);
  client.pause();
  fillBehind(served); // the last write is stuck part-way in the kernel
  served.write(Buffer.alloc(64 * MiB)); // and a large one waits behind it, as replies queue behind a stuck one
  const started = performance.now();
  const wait = drained(served, stallMs);
  await delay(0.4 * stallMs);
  // A sip: the client reads a little, enough for the kernel to take the stuck write, far from all of it.
  let sipped = 0;
  const sip = (chunk: Buffer) => {
    sipped += chunk.length;
    if (sipped >= 4 * MiB) client.pause();
  };
  client.on('data', sip);
  client.resume();
  const outcome = await outcomeWithin(wait, 1.35 * stallMs - (performance.now() - started));
  t.equal(outcome instanceof ConnectionError ? outcome.code : outcome, 'pending', 'not cut off a stall time after the wait began: it made progress since');
  client.off('data', sip);
  client.pause();
  const end = await outcomeWithin(wait, 10 * stallMs);
  t.equal(end instanceof ConnectionError ? end.code : end, ErrorCodes.WRITE_STALLED, 'then, taking nothing more, it is cut off');
});

t.test('a client that took our bytes while the server\'s thread was busy past the stall time is not cut off', async (t) => {
  const stallMs = 300;
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  // The client reads on a thread of its own, so that it can take bytes while this one is busy.
  const reader = new Worker(
    `const net = require('node:net');
     const { parentPort, workerData } = require('node:worker_threads');
     const socket = net.connect(workerData, '127.0.0.1', () => parentPort.postMessage('connected'));
     socket.pause();
     socket.on('data', () => {});
     socket.on('error', () => {});
     parentPort.on('message', () => socket.resume());`,
    { eval: true, workerData: (server.address() as net.AddressInfo).port },
  );
  // Listened for now: the worker's message can come before the connection is accepted here, and a message with no listener is lost.
  const readerConnected = new Promise((resolve) => reader.once('message', resolve));
  const served = await accepted;
  served.on('error', () => {});
  server.close();
  t.teardown(async () => {
    served.destroy();
    await reader.terminate();
  });
  await readerConnected;
  // More than the kernel takes in one turn of the event loop: the first look after the busy time sees only part of it gone.
  fillBehind(served, 32 * MiB);
  const wait = drained(served, stallMs);
  await delay(stallMs / 4);
  // The client starts reading; the server's thread is busy until the stall time is long past, so nothing it sees has moved.
  await busyPastTimers(3 * stallMs, () => reader.postMessage('read'));
  t.equal(await outcomeWithin(wait, 10 * stallMs), 'drained', 'the wait ends when the client has caught up, not as a stall');
  await delay(50); // a late verdict would come after the drain, in the same turn of the event loop
  t.notOk(served.destroyed, 'the connection stays');
});

t.test('without a stall time the wait ends only when the client catches up or leaves', async (t) => {
  const { client, served } = await connected(t);
  client.pause();
  fillBehind(served);
  const wait = drained(served, 0);
  t.equal(await outcomeWithin(wait, 600), 'pending', 'a client that does not read is waited for');
  client.resetAndDestroy();
  const outcome = await outcomeWithin(wait, 5000);
  t.equal(outcome instanceof ConnectionError ? outcome.code : outcome, ErrorCodes.CONNECTION_CLOSED, 'a client that leaves ends it');
  t.equal(outcome instanceof ConnectionError ? outcome.message : outcome, 'the client is gone', 'and the error says so');
});

t.test('a wait that is over leaves nothing behind: no listener piles up, no watch keeps running, no timer cuts the connection later', async (t) => {
  const stallMs = 200;
  const { client, served } = await connected(t);
  let received = 0;
  let last = '';
  client.on('data', (chunk: Buffer) => {
    received += chunk.length;
    last = chunk.toString('latin1');
  });
  const drainListeners = served.listenerCount('drain');
  const closeListeners = served.listenerCount('close');
  // Each wait's stall watch, counted as it runs: one left running would tick for the socket's whole life,
  // one more per wait of a long GET to a slow reader.
  let watchRuns = 0;
  const realSetInterval = globalThis.setInterval;
  globalThis.setInterval = ((callback: () => void, ms?: number) =>
    realSetInterval(() => {
      if (ms === stallMs / 4) watchRuns++;
      callback();
    }, ms)) as unknown as typeof setInterval;
  t.teardown(() => {
    globalThis.setInterval = realSetInterval;
  });
  // A long GET waits for drain many times on one socket; more than Node's 10 listeners would warn.
  const waits = 12;
  let sent = 0;
  for (let wait = 0; wait < waits; wait++) {
    // Like the servers: wait only when a write says the socket is behind.
    for (let writes = 0; writes < 64 && served.write(Buffer.alloc(MiB)); writes++) sent += MiB;
    sent += MiB;
    t.ok(served.writableNeedDrain, 'the socket is behind');
    t.equal(await outcomeWithin(drained(served, stallMs), 5000), 'drained');
    t.equal(served.listenerCount('drain'), drainListeners);
    t.equal(served.listenerCount('close'), closeListeners);
  }
  globalThis.setInterval = realSetInterval;
  await eventually(() => received === sent, 'the client got every byte');
  // The connection now sits idle with nothing queued, longer than the stall time: it must stay open.
  const watchRunsAtTheEnd = watchRuns;
  await delay(3 * stallMs);
  t.notOk(served.destroyed, 'an idle connection with nothing to send is not a stalled one');
  t.equal(watchRuns, watchRunsAtTheEnd, 'no stall watch runs once its wait is over');
  served.write('220 still here\r\n');
  await eventually(() => last.endsWith('220 still here\r\n'), 'the connection still carries replies');
});
