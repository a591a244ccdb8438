/**
 * transport/socket-io.ts over a real TCP connection: what a session on the
 * event loop (sequential and async servers) reads and writes. Bytes arrive in
 * order and none is lost while a busy session lets the kernel hold a fast
 * client's data; the end, a reset, the server's shutdown and abort reach a
 * waiting read; the idle timer counts only while the session waits for its
 * client; a client that stops reading or leaves ends a write that waits for it.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import t from 'tap';
import { ConnectionError, ErrorCodes } from '../../protocol/index.js';
import type { ClientInput, HeldInput } from '../../transport/session-io.js';
import { SocketSessionIO } from '../../transport/socket-io.js';
import { acceptedPair, busyPastTimers, readAll, settled, SOCKET_READ_BYTES } from '../helpers/socket-pair.js';
import { delay, eventually } from '../helpers/wire-fixture.js';
import type { Tap } from '../helpers/tap.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** What the session lets pile up before it pauses the socket (socket-io.ts). */
const QUEUE_HIGH_WATER_BYTES = 512 * KiB;
/** Unsent replies past this many bytes go to the socket without a flush (socket-io.ts). */
const WRITE_BATCH_BYTES = 64 * KiB;

interface Served {
  readonly client: net.Socket;
  readonly served: net.Socket;
  readonly io: SocketSessionIO;
}

async function session(t: Tap, idleTimeoutMs = 0, held?: HeldInput): Promise<Served> {
  const { client, served } = await acceptedPair();
  t.teardown(() => {
    client.destroy();
    served.destroy();
  });
  return { client, served, io: new SocketSessionIO(served, idleTimeoutMs, held) };
}

/** The session's next input, whether it was ready at once or came later; like a session, it sends what it wrote before it waits. */
function next(io: SocketSessionIO): Promise<ClientInput> {
  return new Promise((resolve) => {
    const ready = io.read(resolve);
    if (ready !== null) resolve(ready);
    else io.flush();
  });
}

/** Reads until a signal; returns the bytes before it and the signal. */
async function readToSignal(io: SocketSessionIO): Promise<{ bytes: Buffer; signal: string }> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const input = await next(io);
    if (typeof input === 'string') return { bytes: Buffer.concat(chunks), signal: input };
    chunks.push(input);
  }
}

/** Writes `size` bytes in 64 KiB pieces the way a GET does: waiting whenever write() says so. Resolves with how far it got. */
async function writeAsAGet(io: SocketSessionIO, size: number): Promise<{ written: number; error: unknown }> {
  const piece = Buffer.alloc(64 * KiB, 0x61);
  let written = 0;
  try {
    while (written < size) {
      await io.write(piece);
      written += piece.length;
    }
    io.flush();
    return { written, error: null };
  } catch (error) {
    return { written, error };
  }
}

function codeOf(error: unknown): string | null {
  return error instanceof ConnectionError ? error.code : null;
}

t.test('bytes already received are returned at once; a read that finds none is resumed by the next bytes', async (t) => {
  const { client, served, io } = await session(t);
  client.write('PING\r\n');
  await eventually(() => served.bytesRead === 6, 'the bytes reached the server');
  const ready = io.read(() => t.fail('no resume when bytes are ready'));
  t.equal(ready instanceof Uint8Array ? Buffer.from(ready).toString() : ready, 'PING\r\n', 'returned without waiting');

  let resume: (input: ClientInput) => void = () => {};
  const resumed = new Promise<ClientInput>((resolve) => (resume = resolve));
  t.equal(io.read(resume), null, 'nothing ready: the session waits');
  client.write('STAT a\r\n');
  t.same(Buffer.from((await resumed) as Uint8Array).toString(), 'STAT a\r\n', 'and is resumed by the next bytes');
});

t.test('a session busy elsewhere lets the kernel hold a fast client: the socket pauses, and reading resumes it, without losing a byte', async (t) => {
  const { client, served, io } = await session(t);
  const sent = randomBytes(8 * MiB);
  client.end(sent);
  await settled(() => served.bytesRead);
  t.ok(served.isPaused(), 'the socket is paused while the session reads nothing');
  // The session's queue bound, plus what the socket's own stream buffers before its pause takes effect.
  t.ok(served.bytesRead <= QUEUE_HIGH_WATER_BYTES + 4 * SOCKET_READ_BYTES, `the server holds about the queue bound, not the whole upload (${served.bytesRead} bytes)`);
  const { bytes, signal } = await readToSignal(io);
  t.ok(bytes.equals(sent), 'every byte reached the session, in order');
  t.equal(signal, 'eof', 'then the end of input');
  t.equal(await next(io), 'eof', 'and it stays the end');
});

t.test('what a client sent while it waited for its turn comes first; a client that ended while waiting ends after it', async (t) => {
  const held: HeldInput = { chunks: [Buffer.from('PING\r\n'), Buffer.from('LIST\r\n')], ended: false };
  const { client, io } = await session(t, 0, held);
  client.end('QUIT\r\n');
  const { bytes, signal } = await readToSignal(io);
  t.equal(bytes.toString(), 'PING\r\nLIST\r\nQUIT\r\n');
  t.equal(signal, 'eof');

  const gone = await session(t, 0, { chunks: [Buffer.from('PING\r\n')], ended: true });
  t.same(await readToSignal(gone.io), { bytes: Buffer.from('PING\r\n'), signal: 'eof' }, 'the held end follows the held bytes');
});

t.test('a busy session reads up to the queue bound, and pauses the socket only past it', async (t) => {
  const { client, served, io } = await session(t, 0, { chunks: [randomBytes(QUEUE_HIGH_WATER_BYTES - 1)], ended: false });
  t.notOk(served.isPaused(), 'held bytes under the bound: the socket is read');
  client.write('a');
  await eventually(() => served.bytesRead === 1, 'the next byte is read');
  t.notOk(served.isPaused(), 'exactly the bound queued: the socket is still read');
  client.write('b');
  await eventually(() => served.bytesRead === 2, 'and the one after it');
  t.ok(served.isPaused(), 'one byte past the bound: the socket is paused');
  client.end();
  const { bytes, signal } = await readToSignal(io);
  t.equal(bytes.length, QUEUE_HIGH_WATER_BYTES + 1, 'every byte reaches the session');
  t.equal(signal, 'eof');

  const atTheBound = await session(t, 0, { chunks: [randomBytes(QUEUE_HIGH_WATER_BYTES)], ended: false });
  t.notOk(atTheBound.served.isPaused(), 'held bytes exactly at the bound: the socket is read');

  // Taking bytes resumes reading only once what is left is within the bound.
  const past = await session(t, 0, { chunks: [randomBytes(1), randomBytes(1), randomBytes(QUEUE_HIGH_WATER_BYTES)], ended: false });
  t.ok(past.served.isPaused(), 'held bytes past the bound: the socket is not read');
  t.equal(((await next(past.io)) as Uint8Array).length, 1);
  t.ok(past.served.isPaused(), 'still past the bound after a take: still not read');
  t.equal(((await next(past.io)) as Uint8Array).length, 1);
  t.notOk(past.served.isPaused(), 'down to the bound: read again');
});

t.test('held input past the queue bound counts towards it: the socket stays paused until the session has taken enough', async (t) => {
  const heldBytes = QUEUE_HIGH_WATER_BYTES + 2 * SOCKET_READ_BYTES;
  const chunks = Array.from({ length: heldBytes / SOCKET_READ_BYTES }, () => randomBytes(SOCKET_READ_BYTES));
  const { client, served, io } = await session(t, 0, { chunks, ended: false });
  const more = randomBytes(MiB);
  client.write(more);
  await delay(200);
  t.equal(served.bytesRead, 0, 'nothing more is read from the socket while the held bytes fill the queue');
  const taken: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) taken.push((await next(io)) as Uint8Array);
  await eventually(() => served.bytesRead > 0, 'once the session has taken enough, the socket is read again');
  client.end();
  const { bytes, signal } = await readToSignal(io);
  t.ok(Buffer.concat([...taken, bytes]).equals(Buffer.concat([...chunks, more])), 'every byte, held first, in order');
  t.equal(signal, 'eof');
});

t.test('a client that resets the connection aborts a waiting read, and bytes still queued are dropped', async (t) => {
  const { client, io } = await session(t);
  const waiting = next(io);
  client.resetAndDestroy();
  t.equal(await waiting, 'abort');

  const other = await session(t);
  other.client.write('PUT a 10\r\n');
  await eventually(() => other.served.bytesRead > 0, 'the request reached the server');
  other.client.resetAndDestroy();
  await new Promise((resolve) => other.served.once('close', resolve));
  t.equal(await next(other.io), 'abort', 'a broken connection is not served further');
});

t.test('the server stopping reaches a waiting read once, and the session goes on reading; abort ends it, and its 421 still goes out', async (t) => {
  const { client, served, io } = await session(t);
  const all = readAll(client);
  const waiting = next(io);
  io.signal('shutdown');
  t.equal(await waiting, 'shutdown');
  client.write('QUIT\r\n');
  t.same(Buffer.from((await next(io)) as Uint8Array).toString(), 'QUIT\r\n', 'the next read is the client again');
  const aborted = next(io);
  io.signal('abort');
  t.equal(await aborted, 'abort');
  io.write(Buffer.from('421 shutting down\r\n')); // what the session says when the grace time is over
  io.flush();
  served.end();
  t.equal((await all).toString(), '421 shutting down\r\n', 'a client that reads is told why');
});

t.test('a client that ends after the server aborted its session does not undo the abort: its queued requests are not served', async (t) => {
  const { client, served, io } = await session(t);
  client.write('LIST\r\n');
  await eventually(() => served.bytesRead > 0, 'the request reached the server');
  io.signal('abort'); // the grace time is over while the session is busy elsewhere
  const ended = new Promise((resolve) => served.once('end', resolve));
  client.end();
  await ended;
  t.equal(await next(io), 'abort', 'the session stops; it does not read the queued LIST');
  t.equal(await next(io), 'abort', 'and stays stopped');
});

t.test('a waiting read ends with idle-timeout after the idle time without a byte, not before', async (t) => {
  const idleMs = 400;
  const { client, io } = await session(t, idleMs);
  const started = performance.now();
  t.equal(await next(io), 'idle-timeout');
  t.ok(performance.now() - started >= idleMs - 50, 'not before the idle time');
  // The verdict is for that wait only: a session that reads on gets the client's next bytes.
  const input = next(io);
  client.write('PING\r\n');
  t.same(await input, Buffer.from('PING\r\n'), 'the next wait is a new one');
});

t.test('a client that keeps sending is never idle', async (t) => {
  const idleMs = 400;
  const { client, io } = await session(t, idleMs);
  const ticker = setInterval(() => client.write('.'), idleMs / 4);
  t.teardown(() => clearInterval(ticker));
  let received = 0;
  const until = performance.now() + 3 * idleMs;
  while (performance.now() < until) {
    const input = await next(io);
    if (typeof input === 'string') {
      t.fail(`got ${input} from a client that sends every ${idleMs / 4} ms`);
      return;
    }
    received += input.length;
  }
  t.ok(received > 0);
});

/** What a read returned, as text: the bytes, or the signal's name. */
function asText(input: ClientInput): string {
  return typeof input === 'string' ? input : Buffer.from(input).toString();
}

/**
 * The client sends PING a quarter of the idle time into a wait, while the server's thread is busy until the
 * idle time is long past (the timer comes due before the poll that brings the bytes), then LIST. Both must
 * be read as requests, whether the session waits again at once, before the late look at the timer, or
 * only later, after it (busy with the request, a commit say).
 */
async function clientKeptUpWhileServerWasBusy(t: Tap, readAgain: 'at once' | 'later'): Promise<void> {
  const idleMs = 200;
  const { client, io } = await session(t, idleMs);
  const waiting = next(io);
  await delay(idleMs / 4);
  await busyPastTimers(2 * idleMs, () => client.write('PING\r\n'));
  t.same(asText(await waiting), 'PING\r\n', 'the waiting read gets the bytes');
  let following: Promise<ClientInput>;
  if (readAgain === 'at once') {
    following = next(io); // the late look must not end this new wait
    await delay(idleMs / 4);
  } else {
    await delay(idleMs / 4);
    following = next(io);
  }
  client.write('LIST\r\n');
  t.same(asText(await following), 'LIST\r\n', 'its next read gets the next request');
}

t.test('bytes the client sent while the server\'s thread was busy past the idle time are read, not taken for idleness', (t) =>
  clientKeptUpWhileServerWasBusy(t, 'at once'),
);

t.test('no idle timeout (0): a wait for input never ends on its own', async (t) => {
  const { client, io } = await session(t, 0);
  const waiting = next(io);
  await delay(300);
  client.write('PING\r\n');
  t.same(Buffer.from((await waiting) as Uint8Array).toString(), 'PING\r\n', 'the bytes, not idle-timeout');
});

t.test('a wait that begins after the idle timer was set is timed from its own start, not a whole timer later', async (t) => {
  const idleMs = 400;
  const { client, io } = await session(t, idleMs);
  const first = next(io); // arms the timer, due at idleMs
  await delay(idleMs / 4);
  client.write('PING\r\n');
  t.type(await first, Uint8Array);
  await delay(idleMs / 4);
  const began = performance.now();
  t.equal(await next(io), 'idle-timeout', 'the second wait, silent, times out');
  const took = performance.now() - began;
  t.ok(took >= idleMs - 50, `after its idle time (${Math.round(took)} ms)`);
  t.ok(took < 1.5 * idleMs, `and not much later (${Math.round(took)} ms, not up to ${2 * idleMs})`);
});

t.test('bytes that came as the idle timer went off are not an idle timeout, even when the session reads again only later', (t) =>
  clientKeptUpWhileServerWasBusy(t, 'later'),
);

t.test('time the server spends busy is not idle time: the client gets the whole idle time from the next wait', async (t) => {
  const idleMs = 300;
  const { client, io } = await session(t, idleMs);
  client.write('PUT big 1 mode=append\r\n');
  t.type(await next(io), Uint8Array);
  await delay(3 * idleMs); // a long append: the idle timer goes off while the client waits for us
  const waitStarted = performance.now();
  const waiting = next(io);
  await delay(idleMs / 3);
  client.write('PING\r\n');
  t.same(Buffer.from((await waiting) as Uint8Array).toString(), 'PING\r\n', 'the next request is read, not cut off as idle');

  const again = performance.now();
  t.equal(await next(io), 'idle-timeout', 'a client that then goes quiet is still timed out');
  t.ok(performance.now() - again >= idleMs - 50, 'after a whole idle time');
  t.ok(waitStarted < again);
});

t.test('a client that goes quiet right after a long server operation is still timed out', async (t) => {
  const idleMs = 300;
  const { client, io } = await session(t, idleMs);
  client.write('PUT big 1 mode=append\r\n');
  t.type(await next(io), Uint8Array);
  await delay(3 * idleMs);
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const input = await Promise.race([next(io), new Promise((resolve) => (timer = setTimeout(() => resolve('still waiting'), 10 * idleMs)))]);
  clearTimeout(timer);
  t.equal(input, 'idle-timeout', 'the idle timer counts again from this wait');
  t.ok(performance.now() - started >= idleMs - 50, 'after a whole idle time');
});

t.test('replies queue until flush and leave in order, together; a large one leaves without waiting for flush', async (t) => {
  const { client, served, io } = await session(t);
  const received: Buffer[] = [];
  client.on('data', (chunk: Buffer) => received.push(chunk));
  t.equal(io.write(Buffer.from('200 a\r\n')), undefined);
  t.equal(io.write(Buffer.from('200 b\r\n')), undefined);
  // Replies to pipelined requests go out in one system call when the session has read all it had.
  t.equal(served.bytesWritten, 0, 'nothing is handed to the socket before the flush');
  io.flush();
  t.equal(served.bytesWritten, 14, 'the flush hands both replies to the socket');
  await eventually(() => Buffer.concat(received).length === 14, 'the flushed replies arrive');
  t.equal(Buffer.concat(received).toString(), '200 a\r\n200 b\r\n');

  // Replies that reach the batch size (a GET's 64 KiB chunk) are handed over at once, without a flush.
  const large = randomBytes(WRITE_BATCH_BYTES);
  const wait = io.write(large);
  t.equal(served.bytesWritten, 14 + large.length, 'a GET-sized write is handed to the socket without a flush');
  if (wait !== undefined) await wait;
  await eventually(() => Buffer.concat(received).length === 14 + large.length, 'and arrives');
  t.ok(Buffer.concat(received).subarray(14).equals(large));
});

t.test('a session that reads request after request arms one idle timer, not one per read', async (t) => {
  const idleMs = 5000;
  const { client, io } = await session(t, idleMs);
  let armed = 0;
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = ((callback: () => void, ms?: number) => {
    if (ms === idleMs) armed++;
    return realSetTimeout(callback, ms);
  }) as unknown as typeof setTimeout;
  t.teardown(() => {
    globalThis.setTimeout = realSetTimeout;
  });
  for (let request = 0; request < 20; request++) {
    const input = next(io); // waits: nothing is queued
    client.write('PING\r\n');
    t.same(await input, Buffer.from('PING\r\n'));
  }
  globalThis.setTimeout = realSetTimeout;
  // One timer looks at the wait once per idle time (socket-io.ts): re-arming it for every read would cost more than the read.
  t.equal(armed, 1, 'one idle timer for twenty waits');
});

t.test('a client that stays connected but stops reading is cut off after the stall time; the server holds a bounded amount meanwhile', async (t) => {
  const stallMs = 400;
  const { client, served, io } = await session(t, stallMs);
  client.pause();
  const closed = new Promise<void>((resolve) => served.once('close', () => resolve()));
  const { written, error } = await writeAsAGet(io, 256 * MiB);
  t.equal(codeOf(error), ErrorCodes.WRITE_STALLED, 'the write fails as a stalled client');
  t.ok(written < 64 * MiB, `the session stopped writing once the socket was behind (${written} bytes written)`);
  await closed;
  t.ok(served.destroyed, 'and the connection is closed: the client cannot read a 421 anyway');
  t.throws(() => io.write(Buffer.from('421 x\r\n')), { code: ErrorCodes.CONNECTION_CLOSED }, 'a later write fails at once');
});

t.test('a client that streams small requests and never reads is cut off too; the replies held for it stay bounded', async (t) => {
  // Each request is answered with a reply well under a write batch, and the
  // session keeps up, so no single write is large: the session must still
  // notice that the client is behind rather than queue replies for ever.
  const stallMs = 400;
  const { client, served, io } = await session(t, stallMs);
  client.pause();
  // Paced, so that the session has read everything and waits for the client between its replies.
  const requests = Buffer.alloc(32 * KiB, 0x61);
  // 48 MiB of them ask for 12 MiB of replies, more than the kernel's buffers hold.
  let sent = 0;
  const streaming = setInterval(() => {
    if (sent >= 48 * MiB || !client.writable) return clearInterval(streaming);
    client.write(requests);
    sent += requests.length;
  }, 2);
  t.teardown(() => clearInterval(streaming));
  let mostHeld = 0;
  const outcome = await (async () => {
    for (;;) {
      const input = await next(io);
      if (typeof input === 'string') return input;
      const wait = io.write(Buffer.alloc(input.length >> 2, 0x62));
      mostHeld = Math.max(mostHeld, served.writableLength);
      if (wait !== undefined) await wait;
      mostHeld = Math.max(mostHeld, served.writableLength);
    }
  })().catch((error: unknown) => codeOf(error) ?? error);
  clearInterval(streaming);
  t.equal(outcome, ErrorCodes.WRITE_STALLED, 'cut off as a client that stopped reading');
  t.ok(mostHeld < MiB, `the server held at most a few replies for it (${mostHeld} bytes)`);
});

t.test('a client that leaves while a write waits for it ends the write as CONNECTION_CLOSED', async (t) => {
  const { client, io } = await session(t, 0);
  client.pause();
  const writing = writeAsAGet(io, 256 * MiB);
  await delay(300);
  client.resetAndDestroy();
  const { written, error } = await writing;
  t.equal(codeOf(error), ErrorCodes.CONNECTION_CLOSED);
  t.ok(written < 256 * MiB);
});

t.test('the server aborting a session that waits for a slow reader ends the write at once', async (t) => {
  const { client, io } = await session(t, 0); // no stall time: only the abort can end this wait
  client.pause();
  const writing = writeAsAGet(io, 256 * MiB);
  await delay(300);
  io.signal('abort');
  const { error } = await writing;
  t.equal(codeOf(error), ErrorCodes.CONNECTION_CLOSED);
  t.equal(await next(io), 'abort');
});

t.test('a reply to a client that already got its whole answer and left is not sent', async (t) => {
  const { client, served, io } = await session(t);
  const all = readAll(client);
  io.write(Buffer.from('221 bye\r\n'));
  io.flush();
  served.end();
  t.equal((await all).toString(), '221 bye\r\n');
  t.throws(() => io.write(Buffer.from('200 late\r\n')), { code: ErrorCodes.CONNECTION_CLOSED });
});
