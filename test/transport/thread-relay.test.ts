/**
 * transport/thread-relay.ts over a real TCP connection and a real worker
 * thread (relay-worker.ts): bytes both ways, flow control both ways, a client
 * that goes away waking a worker blocked in a read or a write, a client
 * that stops reading being cut off after the stall time, and a channel
 * handed to the next connection only once its relay is closed.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { ErrorCodes } from '../../protocol/index.js';
import { BlockingRelayIO, createRelayChannel, Flag, RelayChannelPool, RING_BYTES, SocketRelay } from '../../transport/thread-relay.js';
import { acceptedPair, busyPastTimers, readAll, settled, SOCKET_READ_BYTES, spinFor } from '../helpers/socket-pair.js';
import { delay, eventually } from '../helpers/wire-fixture.js';
import type { ClientInput, HeldInput } from '../../transport/session-io.js';
import type { RelayWorkerReport, RelayWorkerScript } from './relay-worker.js';
import type { Tap } from '../helpers/tap.js';

type Script = Partial<Omit<RelayWorkerScript, 'channel'>>;

const MiB = 1024 * 1024;
/** The channel's header, before its input ring (thread-relay.ts's HEADER_BYTES). */
const HEADER_BYTES = 64;
/** Int32 slots of the channel's header (thread-relay.ts's Slot). */
const Slot = { IN_WRITTEN: 0, IN_READ: 1, OUT_WRITTEN: 2, WORKER_BELL: 4, FLAGS: 6, WORKER_ASLEEP: 7, INPUT_WAIT: 8, IDLE_ENDED: 9 } as const;
/** Float64 slots of the same header (thread-relay.ts's Time): each covers Int32 slots 2 × index and 2 × index + 1. */
const Time = { IDLE_TIMEOUT_MS: 5, INPUT_WAIT_SINCE: 6 } as const;

/** Resolves with `promise`'s value, or with 'hung' if it takes longer than `ms`. */
function within<Value>(promise: Promise<Value>, ms: number): Promise<Value | 'hung'> {
  return Promise.race([promise, delay(ms).then(() => 'hung' as const)]);
}

function startWorker(channel: SharedArrayBuffer, script: Script): { report: Promise<RelayWorkerReport>; worker: Worker } {
  const workerData: RelayWorkerScript = { idleTimeoutMs: 0, sleepBeforeReadingMs: 0, sleepAfterBytesMs: 0, echo: false, writeFirstBytes: 0, lastWords: '', ...script, channel };
  const worker = new Worker(new URL('./relay-worker.js', import.meta.url), { workerData });
  const report = new Promise<RelayWorkerReport>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the worker exited (${code}) without a report`)));
  });
  return { report, worker };
}

interface Bridged {
  readonly client: net.Socket;
  /** The server's end of the connection, the one the relay carries. */
  readonly served: net.Socket;
  readonly report: Promise<RelayWorkerReport>;
  /** Ends the server's side once every write of the worker's is in the socket, as the workers server does. */
  endWhenRelayed(): Promise<void>;
  /** Bytes the relay has read from the socket so far. */
  relayed(): number;
  readonly relay: SocketRelay;
  /** The channel's Int32 header (thread-relay.ts's Slot), to watch or stage a race. */
  readonly header: Int32Array;
}

/** A connection whose server end is relayed to a worker thread running `script`; everything is torn down with `t`. */
async function bridged(t: Tap, script: Script, stallMs = 0): Promise<Bridged> {
  const { client, served } = await acceptedPair();
  let relayed = 0;
  served.on('data', (chunk: Buffer) => (relayed += chunk.length));
  const channel = createRelayChannel(script.idleTimeoutMs ?? 0);
  let announced = () => {};
  const started = new Promise<void>((resolve) => (announced = resolve));
  const relay = new SocketRelay(served, channel, stallMs, () => announced());
  const { report, worker } = startWorker(channel, script);
  t.teardown(async () => {
    client.destroy();
    served.destroy();
    relay.close();
    await worker.terminate();
  });
  await started; // from here on the relay reads the socket
  const endWhenRelayed = async () => {
    await relay.finished;
    served.end();
  };
  return { client, served, report, endWhenRelayed, relayed: () => relayed, relay, header: new Int32Array(channel, 0, 16) };
}

t.test("the worker's replies go into the output ring together: at its next wait (flush), or once they reach a GET's 64 KiB chunk", (t) => {
  // No socket and no second thread: the worker's half on its own, and the ring's write counter.
  const channel = createRelayChannel();
  const io = new BlockingRelayIO(channel);
  const header = new Int32Array(channel, 0, 16);
  const inRing = () => Atomics.load(header, Slot.OUT_WRITTEN);
  io.write(Buffer.from('200 a\r\n'));
  io.write(Buffer.from('200 b\r\n'));
  t.equal(inRing(), 0, 'small replies wait for the flush');
  io.flush();
  t.equal(inRing(), 14, 'the flush puts them in the ring');
  io.write(Buffer.alloc(64 * 1024 - 1));
  t.equal(inRing(), 14, 'one byte short of the batch size: still waiting');
  io.write(Buffer.alloc(1));
  t.equal(inRing(), 14 + 64 * 1024, 'at the batch size: in the ring without a flush');
  io.write(Buffer.from('221 bye\r\n'));
  io.done();
  t.equal(inRing(), 14 + 64 * 1024 + 9, "a session's end puts its last reply in the ring");
  t.not(Atomics.load(header, Slot.FLAGS) & Flag.DONE, 0, 'and says it is done');
  t.end();
});

t.test('bytes go both ways unchanged and in order; the end of input reaches the worker as eof', async (t) => {
  const { client, report, endWhenRelayed } = await bridged(t, { echo: true });
  const sent = randomBytes(3 * MiB);
  const echoed = readAll(client);
  client.end(sent);
  const seen = await report;
  await endWhenRelayed();
  t.same(seen, { received: sent.length, signals: ['eof'], written: sent.length, writeErrorCode: null });
  t.ok((await echoed).equals(sent), 'the client got back exactly what it sent');
});

t.test('a worker that falls behind pauses the socket, and catching up resumes it, without losing a byte', async (t) => {
  const size = 16 * MiB;
  const data = randomBytes(size);
  // The worker's nap is long enough that the check below sees the first pause, not a later one, even on a busy machine.
  const { client, served, report, relayed } = await bridged(t, { sleepBeforeReadingMs: 1500 });
  client.end(data);
  await eventually(() => relayed() > 0 && served.isPaused(), 'the socket is paused while the worker sleeps');
  t.ok(relayed() <= RING_BYTES.input + SOCKET_READ_BYTES, `at most the input window is held for the worker (${relayed()} bytes)`);
  const seen = await report;
  t.same(seen.signals, ['eof']);
  t.equal(seen.received, size, 'every byte reached the worker');
});

/**
 * The session's side of a channel, run in this very thread: a test reads only
 * when `untaken()` says the ring holds bytes, so no read blocks here. The
 * bytes not yet taken are counted from the reads themselves, because IN_READ
 * trails them (a read's room is given back a read late); the counters of a
 * new channel start at 0.
 */
class SessionHere {
  readonly io: BlockingRelayIO;
  readonly header: Int32Array;
  taken = 0;

  constructor(channel: SharedArrayBuffer) {
    this.io = new BlockingRelayIO(channel);
    this.header = new Int32Array(channel, 0, 16);
  }

  untaken(): number {
    return (Atomics.load(this.header, Slot.IN_WRITTEN) - this.taken) | 0;
  }

  read(): ClientInput {
    const got = this.io.read();
    if (got instanceof Uint8Array) this.taken += got.length;
    return got;
  }

  /** The next read, which must be bytes. */
  readBytes(): Uint8Array {
    const got = this.read();
    if (!(got instanceof Uint8Array)) throw new Error(`read ${String(got)}`);
    return got;
  }
}

/**
 * A connection relayed over `channel` to a session in this very thread
 * (SessionHere). Resolves once the session has started and the relay reads
 * the socket.
 */
async function relayedHere(t: Tap, channel: SharedArrayBuffer): Promise<{ client: net.Socket; served: net.Socket; relay: SocketRelay; session: SessionHere }> {
  const { client, served } = await acceptedPair();
  const relay = new SocketRelay(served, channel, 0, () => {});
  t.teardown(() => {
    client.destroy();
    served.destroy();
    relay.close();
  });
  const session = new SessionHere(channel);
  await eventually(() => !served.isPaused(), 'the relay reads the socket once the session starts');
  return { client, served, relay, session };
}

t.test('a worker that empties the ring while the socket is paused rings the main thread, which resumes the socket', async (t) => {
  // Staged: the main thread has paused the socket with bytes left over; the
  // worker takes what the ring holds and must say so, or the socket stays paused for good.
  const channel = createRelayChannel();
  const { client, served, session } = await relayedHere(t, channel);
  client.write(randomBytes(RING_BYTES.input + 4 * SOCKET_READ_BYTES));
  await eventually(() => served.isPaused(), 'a full ring pauses the socket');
  const flags = () => Atomics.load(session.header, Slot.FLAGS);
  t.not(flags() & Flag.INPUT_PAUSED, 0, 'and says so in the flags');
  while (session.taken < RING_BYTES.input + 4 * SOCKET_READ_BYTES) {
    await eventually(() => session.untaken() > 0, 'the relay refills the ring once the worker took bytes');
    session.read();
  }
  t.equal(session.taken, RING_BYTES.input + 4 * SOCKET_READ_BYTES, 'every byte reached the worker');
  await eventually(() => !served.isPaused() && (flags() & Flag.INPUT_PAUSED) === 0, 'the socket flows again');
});

t.test("a read is a view of the ring itself; its bytes stay put until the read after the next one, which gives their room back", async (t) => {
  const channel = createRelayChannel();
  const { client, session } = await relayedHere(t, channel);
  const readPiece = async (fill: number, length: number): Promise<Uint8Array> => {
    client.write(Buffer.alloc(length, fill));
    await eventually(() => session.untaken() === length, 'the piece is in the ring');
    return session.readBytes();
  };
  const released = () => Atomics.load(session.header, Slot.IN_READ);
  const first = await readPiece(0x61, 1000);
  t.equal(first.buffer, channel, 'no copy: the read is a view of the channel');
  t.equal(released(), 0, 'its room is still held');
  const second = await readPiece(0x62, 2000);
  t.ok(first.every((byte) => byte === 0x61) && first.length === 1000, 'the first read is intact after the second');
  t.equal(released(), 0, "the first read's room is held while the second is read");
  const third = await readPiece(0x63, 3000);
  t.ok(second.every((byte) => byte === 0x62) && second.length === 2000, 'the second read is intact after the third');
  t.ok(third.every((byte) => byte === 0x63) && third.length === 3000);
  t.equal(released(), 1000, "the third read gives the first read's room back, and only that");
});

t.test('a read takes at most a quarter of the ring and never across its end: the rest comes at the next read, in order', async (t) => {
  const channel = createRelayChannel();
  const { client, session } = await relayedHere(t, channel);
  const sent = randomBytes(RING_BYTES.input + RING_BYTES.input / 4);
  const reads: Buffer[] = [];
  client.write(sent);
  while (session.taken < sent.length) {
    await eventually(() => session.untaken() > 0, 'the relay puts bytes in the ring');
    const got = session.readBytes();
    t.ok(got.length <= RING_BYTES.input / 4, `at most a quarter of the ring (${got.length} bytes)`);
    const inRing = got.byteOffset - HEADER_BYTES;
    t.ok(inRing >= 0 && inRing + got.length <= RING_BYTES.input, `within the input ring (bytes ${inRing} to ${inRing + got.length})`);
    reads.push(Buffer.from(got));
  }
  t.ok(Buffer.concat(reads).equals(sent), 'every byte, in order, across the end of the ring');
});

t.test('a worker that finds the ring empty while the socket is paused rings the main thread, even when its release missed the pause', async (t) => {
  // Staged race: the main thread pauses the socket (ring full, bytes left
  // over) and raises INPUT_PAUSED just *after* the worker's release() looked at
  // the flags, so release() did not ring. The worker's next read finds the ring
  // empty with the flag up: only its bell can make the main thread refill.
  const size = 2 * RING_BYTES.input;
  // The worker naps after taking bytes, so the flag can come back before its next read looks.
  const { client, served, report, header } = await bridged(t, { sleepBeforeReadingMs: 1500, sleepAfterBytesMs: 200 });
  client.end(randomBytes(size));
  await eventually(() => served.isPaused() && (Atomics.load(header, Slot.FLAGS) & Flag.INPUT_PAUSED) !== 0, 'a full ring pauses the socket');
  Atomics.and(header, Slot.FLAGS, ~Flag.INPUT_PAUSED); // hidden from the worker's release()
  // A read keeps its bytes until the read after it, so the worker has taken the whole ring once it sleeps
  // holding only its last read (at most a quarter of the ring): the ring is empty to it, with the flag hidden.
  await eventually(
    () => Atomics.load(header, Slot.WORKER_ASLEEP) === 1 && ((Atomics.load(header, Slot.IN_WRITTEN) - Atomics.load(header, Slot.IN_READ)) | 0) <= RING_BYTES.input / 4,
    'the worker takes the whole ring and sleeps',
  );
  // What SocketRelay.raise(INPUT_PAUSED) does, arriving late.
  Atomics.or(header, Slot.FLAGS, Flag.INPUT_PAUSED);
  Atomics.add(header, Slot.WORKER_BELL, 1);
  Atomics.notify(header, Slot.WORKER_BELL);
  const seen = await within(report, 10_000);
  if (seen === 'hung') {
    t.fail('the worker and the main thread both wait for ever');
    return;
  }
  t.equal(seen.received, size, 'every byte reached the worker');
  t.same(seen.signals, ['eof']);
});

t.test('a client that does not read holds the worker at a full output ring; the main thread never buffers the whole output', async (t) => {
  const size = 32 * MiB;
  const { client, served, report, endWhenRelayed } = await bridged(t, { writeFirstBytes: size });
  client.pause();
  await settled(() => served.bytesWritten);
  t.ok(served.writableLength <= RING_BYTES.output + SOCKET_READ_BYTES, `at most the output window waits in the main thread (${served.writableLength} bytes)`);
  t.ok(served.bytesWritten < size, 'the worker is held back, not done'); // bytesWritten counts what is buffered too
  const received = readAll(client);
  client.resume();
  client.end();
  const seen = await report;
  await endWhenRelayed();
  t.equal(seen.written, size);
  t.equal((await received).length, size, 'every byte reached the client once it read');
});

t.test('a client that goes away wakes a worker blocked in a read', async (t) => {
  const { client, report } = await bridged(t, { idleTimeoutMs: 0 });
  await delay(100); // the worker is asleep in read(), with no timeout
  client.resetAndDestroy();
  t.same((await report).signals, ['abort']);
});

t.test('a client that goes away wakes a worker blocked on the output window, and its write fails as CONNECTION_CLOSED', async (t) => {
  const size = 256 * MiB;
  const { client, served, report } = await bridged(t, { writeFirstBytes: size });
  client.pause();
  await settled(() => served.bytesWritten);
  client.resetAndDestroy();
  const seen = await report;
  t.equal(seen.writeErrorCode, ErrorCodes.CONNECTION_CLOSED);
  t.ok(seen.written < size, 'the write stopped part-way');
  t.same(seen.signals, ['abort'], 'and the next read says why');
});

t.test('a client that stays connected but stops reading is cut off after the stall time, and the worker write fails', async (t) => {
  const size = 64 * MiB;
  const { client, served, report } = await bridged(t, { writeFirstBytes: size }, 600);
  client.pause();
  const closed = new Promise<void>((resolve) => served.once('close', () => resolve()));
  await closed;
  const seen = await report;
  t.equal(seen.writeErrorCode, ErrorCodes.WRITE_STALLED, 'the worker learns why: its client stopped reading');
  t.ok(seen.written < size, 'the write stopped part-way');
});

t.test('bytes a client sends before its thread starts wait in the socket for it: none is lost', async (t) => {
  const { client, served } = await acceptedPair();
  const channel = createRelayChannel();
  let announced = () => {};
  const started = new Promise<void>((resolve) => (announced = resolve));
  const relay = new SocketRelay(served, channel, 0, () => announced());
  t.teardown(() => {
    client.destroy();
    served.destroy();
    relay.close();
  });
  const sent = randomBytes(100 * 1024);
  client.write(sent);
  await delay(200); // every thread busy: the session has not started, its client has already sent
  t.equal(served.bytesRead, 0, 'the socket is not read before the session starts');
  const { report, worker } = startWorker(channel, {});
  t.teardown(() => worker.terminate());
  await started;
  client.end();
  const seen = await report;
  t.same(seen, { received: sent.length, signals: ['eof'], written: 0, writeErrorCode: null }, 'the session gets every byte, then the end');
});

/** A relay that starts with what its client sent while it queued, and the session's side of it in this thread. */
async function relayHolding(t: Tap, held: HeldInput) {
  const { client, served } = await acceptedPair();
  const channel = createRelayChannel();
  const relay = new SocketRelay(served, channel, 0, () => {}, held);
  t.teardown(() => {
    client.destroy();
    served.destroy();
    relay.close();
  });
  const session = new SessionHere(channel);
  const { header } = session;
  const inRing = () => session.untaken();
  /**
   * Takes `length` bytes as the relay puts them in the ring; `beforeRead` looks at the ring before each
   * take, `afterRead` after it. Null (and a failure) if a read returns a signal instead.
   */
  const takeAll = async (length: number, hooks: { beforeRead?: (total: number) => void; afterRead?: (total: number) => Promise<void> } = {}): Promise<Buffer | null> => {
    const taken: Buffer[] = [];
    let total = 0;
    while (total < length) {
      await eventually(() => inRing() > 0, 'the relay refills the ring from what it held back');
      hooks.beforeRead?.(total);
      const got = session.read();
      if (!(got instanceof Uint8Array)) {
        t.fail(`read ${got}`);
        return null;
      }
      taken.push(Buffer.from(got));
      total += got.length;
      await hooks.afterRead?.(total);
    }
    return Buffer.concat(taken);
  };
  return { client, served, session, header, inRing, takeAll };
}

t.test('what a client sent while it queued, more than the ring holds, reaches the session in order; each refill wakes it', async (t) => {
  const held = randomBytes(4 * RING_BYTES.input + 1000);
  const { client, session, header, inRing, takeAll } = await relayHolding(t, { chunks: [held.subarray(0, 1000), held.subarray(1000)], ended: false });
  /** The worker's bell: a worker asleep on an empty ring wakes only when it rings. */
  const bell = () => Atomics.load(header, Slot.WORKER_BELL);
  const taken = await takeAll(held.length, {
    afterRead: async (total) => {
      // Still synchronous with the read: the relay, on this thread's event loop, has not refilled since.
      if (total === held.length || inRing() > 0) return;
      const rung = bell();
      await eventually(() => bell() !== rung, 'the relay rings the worker once it has put bytes back in the ring');
    },
  });
  t.ok(taken?.equals(held), 'every held byte, in order');
  client.end('QUIT\r\n');
  await eventually(() => inRing() > 0, 'then the socket is read');
  t.equal(Buffer.from(session.readBytes()).toString(), 'QUIT\r\n');
});

t.test('a client that sent more than the ring holds and its end while it queued: the end comes after every held byte', async (t) => {
  // `cat commands.txt | nc -N host port` to a busy pool: the session must see all of it and then the end, at
  // once, not wait for more input until its idle timeout.
  const held = randomBytes(2 * RING_BYTES.input + 1000);
  const { session, header, inRing, takeAll } = await relayHolding(t, { chunks: [held], ended: true });
  const endSignalled = () => (Atomics.load(header, Slot.FLAGS) & Flag.EOF) !== 0;
  const taken = await takeAll(held.length, {
    // The end may be signalled once every byte before it is in the ring (the worker takes bytes before it looks at the end).
    beforeRead: (total) => {
      if (total + inRing() < held.length) t.notOk(endSignalled(), 'no end while held bytes are still to come to the ring');
    },
  });
  t.ok(taken?.equals(held), 'every held byte, in order');
  await eventually(endSignalled, 'then the end of the input');
  t.equal(session.read(), 'eof');
});

t.test('a client that sent more than the ring holds while it queued, and keeps sending, is not read further until its session takes', async (t) => {
  // What the relay holds for a worker is bounded by the ring and what came before the worker started: a
  // client flooding a connection that waits in the pool must not fill the server's memory.
  const { client, served, header } = await relayHolding(t, { chunks: [randomBytes(2 * RING_BYTES.input)], ended: false });
  await eventually(() => Atomics.load(header, Slot.IN_WRITTEN) === RING_BYTES.input, 'the relay fills the ring from what it held');
  client.write(randomBytes(16 * MiB));
  const read = await settled(() => served.bytesRead, 300);
  t.ok(read <= 4 * SOCKET_READ_BYTES, `the socket stays paused while held bytes wait for the session (${read} bytes read from it)`);
});

t.test('a worker waiting for room in the output ring is woken as the client reads, and sends everything', async (t) => {
  const size = 8 * MiB;
  const { client, report, endWhenRelayed } = await bridged(t, { writeFirstBytes: size });
  let received = 0;
  client.on('data', (chunk: Buffer) => (received += chunk.length));
  // The client only reads: nothing it sends can wake the worker, only the relay's bell.
  await eventually(() => received === size, 'the client gets all the worker wrote', 20_000);
  client.end();
  const seen = await report;
  await endWhenRelayed();
  t.equal(seen.written, size);
});

t.test('the server stopping wakes a worker blocked in a read once; the session goes on until its client ends', async (t) => {
  const { client, report, relay } = await bridged(t, {});
  await delay(100); // the worker is asleep in read()
  relay.signal('shutdown');
  await delay(100);
  client.end('QUIT\r\n');
  const seen = await report;
  t.same(seen.signals, ['shutdown', 'eof']);
  t.equal(seen.received, 6, 'what the client sent after the signal still reaches the session');
});

t.test('the server stopping leaves a slow reader its bytes; only an abort cuts off a client the relay waits for', async (t) => {
  const size = 8 * MiB;
  const slow = await bridged(t, { writeFirstBytes: size });
  slow.client.pause();
  await settled(() => slow.served.bytesWritten);
  t.ok(slow.served.writableNeedDrain, 'the relay waits for the client to read');
  slow.relay.signal('shutdown');
  await delay(100);
  t.notOk(slow.served.destroyed, 'shutdown does not close the connection');
  const received = readAll(slow.client);
  slow.client.resume();
  slow.client.end();
  const seen = await slow.report;
  await slow.endWhenRelayed();
  t.equal((await received).length, size, 'the slow reader gets every byte');
  t.same(seen.signals, ['shutdown', 'eof']);

  const stuck = await bridged(t, { writeFirstBytes: 256 * MiB }); // no stall time: only the abort can end this wait
  stuck.client.pause();
  await settled(() => stuck.served.bytesWritten);
  stuck.relay.signal('abort');
  const aborted = await within(stuck.report, 10_000);
  if (aborted === 'hung') {
    t.fail('the worker still waits for a client the server gave up on');
    return;
  }
  t.ok(stuck.served.destroyed, 'abort closes the connection');
  t.equal(aborted.writeErrorCode, ErrorCodes.CONNECTION_CLOSED, 'the write waiting for the client fails');
  t.same(aborted.signals, ['abort']);
});

t.test('an abort with nothing waiting to be sent keeps the connection: the session\'s 421 still reaches the client', async (t) => {
  const { client, report, relay, endWhenRelayed } = await bridged(t, { lastWords: '421 shutting down\r\n' });
  const all = readAll(client);
  await delay(100); // the worker is asleep in read()
  relay.signal('abort');
  t.same((await report).signals, ['abort']);
  await endWhenRelayed();
  t.equal((await all).toString(), '421 shutting down\r\n', 'a client that reads is told why');
});

t.test('a worker waiting for a silent client gives up after the idle time, counted from when it started waiting', async (t) => {
  const idleMs = 300;
  // The worker is busy for twice the idle time before its first read: that is not the client's idle time.
  const { client, report } = await bridged(t, { idleTimeoutMs: idleMs, sleepBeforeReadingMs: 2 * idleMs });
  const started = performance.now();
  await delay(2 * idleMs + idleMs / 3);
  client.write('PING\r\n');
  const seen = await report;
  t.equal(seen.received, 6, 'the request sent within the idle time of the wait is read');
  t.same(seen.signals, ['idle-timeout'], 'then a silent client times out');
  t.ok(performance.now() - started >= 2 * idleMs + idleMs, 'a whole idle time after the wait for more began');
});

t.test('the idle time runs from the client\'s last byte: a wait is ended one idle time after it began, not sooner nor a whole check later', async (t) => {
  // The main thread looks at the worker's wait once per idle time. A byte a
  // third of the way through makes a new wait; the look that comes first is
  // too early to end it, and must come back when the rest of it is over.
  const idleMs = 1000;
  const { client, report } = await bridged(t, { idleTimeoutMs: idleMs });
  await delay(idleMs / 3);
  const lastByteAt = performance.now();
  client.write('PING\r\n');
  const seen = await report;
  const idle = performance.now() - lastByteAt;
  t.equal(seen.received, 6);
  t.same(seen.signals, ['idle-timeout']);
  t.ok(idle >= idleMs, `not before a whole idle time without a byte (${Math.round(idle)} ms)`);
  // Generous for a busy machine; a relay that waited for its next regular look would take 1.67 idle times here.
  t.ok(idle < 1.4 * idleMs, `nor a good part of another one later (${Math.round(idle)} ms)`);
});

t.test('bytes the client sent while the main thread was busy past the idle time reach the worker, not an idle timeout', async (t) => {
  const idleMs = 300;
  const { client, report, header } = await bridged(t, { idleTimeoutMs: idleMs });
  await eventually(() => Atomics.load(header, Slot.INPUT_WAIT) !== 0, 'the worker waits for the client');
  await delay(idleMs / 4);
  // Due during the busy time below, and after the relay's look at the wait: it holds the main thread between its due
  // timers and its poll of the socket, time enough for a worker woken by a verdict that did not wait for that poll.
  setTimeout(() => spinFor(100), idleMs);
  // The client sends within the idle time; the main thread, which relays it, is busy until the idle time is long past.
  await busyPastTimers(2 * idleMs, () => client.write('PING\r\n'));
  const seen = await report;
  t.equal(seen.received, 6, 'the worker reads the request');
  t.same(seen.signals, ['idle-timeout'], 'and only its next wait, a silent one, times out');
});

t.test('an idle timeout that ends a wait just as the client\'s bytes arrive does not end the next wait: the active client stays', async (t) => {
  // Staged race: the main thread's look ends the worker's wait (IDLE_ENDED)
  // at the moment a request arrives; the worker wakes for the request, which
  // it sees first. Its next read is a new wait, which that old verdict must not end.
  const { client, report, header } = await bridged(t, { idleTimeoutMs: 60_000 });
  await eventually(() => Atomics.load(header, Slot.INPUT_WAIT) !== 0 && Atomics.load(header, Slot.WORKER_ASLEEP) === 1, 'the worker waits for the client');
  const firstWait = Atomics.load(header, Slot.INPUT_WAIT);
  Atomics.store(header, Slot.IDLE_ENDED, firstWait); // the look's verdict, its bell not yet rung
  client.write('PING\r\n');
  // A read's room is given back a read late (IN_READ), so the wait's number says the request was taken.
  const waitsAgain = () => ![0, firstWait].includes(Atomics.load(header, Slot.INPUT_WAIT)) && Atomics.load(header, Slot.WORKER_ASLEEP) === 1;
  await eventually(waitsAgain, 'the worker takes the request and waits again');
  Atomics.add(header, Slot.WORKER_BELL, 1); // the late bell of that verdict
  Atomics.notify(header, Slot.WORKER_BELL);
  await delay(100);
  client.end();
  const seen = await report;
  t.equal(seen.received, 6);
  t.same(seen.signals, ['eof'], 'the session ends when its client does, not with a stale idle timeout');
});

t.test('a bell with nothing for a waiting worker neither ends its wait nor restarts its idle time', async (t) => {
  // A bell can come with nothing new: the relay rang for bytes the worker had already taken.
  const idleMs = 1000;
  const { report, header } = await bridged(t, { idleTimeoutMs: idleMs });
  await eventually(() => Atomics.load(header, Slot.INPUT_WAIT) !== 0, 'the worker waits for the client');
  const waitSeenAt = performance.now();
  await delay(0.6 * idleMs);
  Atomics.add(header, Slot.WORKER_BELL, 1);
  Atomics.notify(header, Slot.WORKER_BELL);
  const seen = await report;
  const waited = performance.now() - waitSeenAt;
  t.same(seen.signals, ['idle-timeout']);
  // The wait was seen up to a poll after it began, hence 0.9.
  t.ok(waited >= 0.9 * idleMs, `the bell did not end the wait (${Math.round(waited)} ms)`);
  t.ok(waited < 1.4 * idleMs, `nor restart its idle time, which would take 1.6 idle times (${Math.round(waited)} ms)`);
});

t.test('a channel given back to the pool serves the next connection, and the closed relay never touches it again', async (t) => {
  const pool = new RelayChannelPool(5000);
  const channel = pool.take();
  const { client, served, relay, session } = await relayedHere(t, channel);
  const { header } = session;
  client.write(randomBytes(1000));
  await eventually(() => Atomics.load(header, Slot.IN_WRITTEN) === 1000, 'the first connection\'s bytes reach the ring');
  t.ok(session.read() instanceof Uint8Array, 'and the session takes them');

  relay.close();
  pool.give(channel);
  t.equal(pool.idle, 1, 'one channel waits for the next connection');
  const next = pool.take();
  t.equal(next, channel, 'the same memory, not a new allocation');
  t.equal(pool.idle, 0);
  const timeoutSlots = [2 * Time.IDLE_TIMEOUT_MS, 2 * Time.IDLE_TIMEOUT_MS + 1];
  t.same([...header], new Array(16).fill(0).map((zero, slot) => (timeoutSlots.includes(slot) ? header[slot] : zero)), 'every counter and flag is back to zero');
  t.equal(new Float64Array(channel, 0, 8)[Time.IDLE_TIMEOUT_MS], 5000, 'with the pool\'s idle timeout');

  // The first connection carries on after its relay closed: more bytes, its end, its close.
  const ended = new Promise((resolve) => served.once('end', resolve));
  client.end(randomBytes(1000));
  await ended;
  const closed = new Promise((resolve) => served.once('close', resolve));
  served.destroy();
  await closed;
  await delay(20);
  t.equal(Atomics.load(header, Slot.IN_WRITTEN), 0, 'no byte of the old connection lands in the next one\'s ring');
  t.equal(Atomics.load(header, Slot.FLAGS), 0, 'and no EOF or ABORT of its reaches the next session');
});

t.test('an idle verdict already on its way when the relay closes does not reach the connection that reuses the channel', async (t) => {
  // Staged: the idle check found the wait over and put its verdict after the
  // poll; in that same turn the session ended, its channel went back to the
  // pool and the next connection's session began its first wait, numbered 1
  // as the old one's was.
  const pool = new RelayChannelPool(50);
  const channel = pool.take();
  const { relay } = await relayedHere(t, channel);
  const header = new Int32Array(channel, 0, 16);
  const times = new Float64Array(channel, 0, 8);
  Atomics.store(header, Slot.INPUT_WAIT, 1);
  times[Time.INPUT_WAIT_SINCE] = Date.now() - 1000; // the wait began a second ago, past the 50 ms idle time
  (relay as unknown as { checkIdle: () => void }).checkIdle();
  relay.close();
  pool.give(channel);
  t.equal(pool.take(), channel);
  Atomics.store(header, Slot.INPUT_WAIT, 1);
  times[Time.INPUT_WAIT_SINCE] = Date.now();
  await delay(20);
  t.equal(Atomics.load(header, Slot.IDLE_ENDED), 0, 'the next session\'s first wait is not ended by the old verdict');
});
