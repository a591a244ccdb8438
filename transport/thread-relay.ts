/**
 * A socket owned by the main thread, read and written as *blocking* calls by a
 * worker thread.
 *
 * On Node 20 a socket cannot move to another thread, so the main thread
 * relays. The cheapest relay Node allows is shared memory: one
 * SharedArrayBuffer per connection holds two byte rings, client → worker and
 * worker → client, and a few counters. Nothing is posted or cloned:
 *
 * - The main thread copies socket bytes into the input ring and rings the
 *   worker's bell (Atomics.notify). The worker sleeps in Atomics.wait, like
 *   the seed's Python `recv()`, and takes what the ring holds in one read (up
 *   to a quarter of the ring, read in place): what arrived while it was busy
 *   comes as one batch.
 * - The worker copies replies into the output ring (batched until it next
 *   waits) and rings the main thread's bell. The main thread waits for that
 *   bell with Atomics.waitAsync, so a sleeping event loop wakes only when there
 *   is something to send.
 *
 * Flow control is the rings' size: a full input ring pauses the socket (TCP
 * then pushes back on the client), a full output ring makes the worker wait.
 * A client that stops reading is cut off after the stall time (drain.ts), which
 * wakes the worker with the socket closed.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { afterPendingIO, clientGone, drained, stalledWriteError } from './drain.js';
import { NOTHING_HELD, type BlockingSessionIO, type ClientInput, type HeldInput } from './session-io.js';
import { copyIntoRing, copyOutOfRing, ringBell, sleepWhile } from './shared-ring.js';

/** Int32 slots at the start of the shared buffer. Counters are byte counts that wrap at 2^32. */
const Slot = {
  /** Bytes the main thread put into the input ring. */
  IN_WRITTEN: 0,
  /**
   * Bytes the worker gave back: their room is the main thread's again. It
   * trails what the worker took by up to two reads (BlockingRelayIO.take).
   */
  IN_READ: 1,
  /** Bytes the worker put into the output ring. */
  OUT_WRITTEN: 2,
  /** Bytes the main thread took from it. */
  OUT_READ: 3,
  /** The main thread bumps and notifies this to wake the worker. */
  WORKER_BELL: 4,
  /** The worker bumps and notifies this to wake the main thread. */
  MAIN_BELL: 5,
  /** Bits of Flag, set with Atomics.or. */
  FLAGS: 6,
  /**
   * 1 while the worker sleeps (or is about to) on WORKER_BELL: during an
   * upload the main thread relays a socket chunk every few microseconds to a
   * worker that is mostly busy, and rings the bell every time but only wakes
   * a sleeper (shared-ring.ts says why no wake-up is lost).
   */
  WORKER_ASLEEP: 7,
  /**
   * While the worker waits for client bytes, the number of that wait (never
   * 0); 0 otherwise. The main thread times the idle timeout: see
   * SocketRelay.checkIdle.
   */
  INPUT_WAIT: 8,
  /** main → worker: the number of the input wait that the idle timeout ended. */
  IDLE_ENDED: 9,
} as const;
/** Float64 slots, past the Int32 ones (index 5 is bytes 40-47; Slot ends at byte 40). */
const Time = {
  /** The channel's idle timeout in ms (0: none), set when it is created. */
  IDLE_TIMEOUT_MS: 5,
  /** Date.now() when the input wait INPUT_WAIT began. */
  INPUT_WAIT_SINCE: 6,
} as const;
const HEADER_BYTES = 64;

/** Bits of the FLAGS slot (exported for the tests, which stage races with them). */
export const Flag = {
  /** main → worker: the client closed its side. */
  EOF: 1 << 0,
  /** main → worker: stop now (socket gone, or the grace time is over). */
  ABORT: 1 << 1,
  /** main → worker: the server is stopping; finish what is under way. */
  SHUTDOWN: 1 << 2,
  /** main → worker: the socket is gone; writes fail at once. */
  SOCKET_CLOSED: 1 << 3,
  /** main: the socket is paused because the input ring is full; the worker rings after giving room back. */
  INPUT_PAUSED: 1 << 4,
  /** worker: waiting for room in the output ring; the main thread rings after taking bytes. */
  OUTPUT_WAITING: 1 << 5,
  /** worker: the session started (the socket is read only from now on, like a backlog). */
  STARTED: 1 << 6,
  /** worker: the session is over; everything it wrote is in the output ring. */
  DONE: 1 << 7,
  /** main → worker: the socket was closed because the client took none of our bytes for the stall time. */
  STALLED: 1 << 8,
} as const;

/**
 * Ring sizes: powers of two, so a wrapping counter maps to a position with a
 * mask. The input ring is the larger: during an upload the worker hashes and
 * writes what it takes in one go, and how much it can take sets its pace
 * (BlockingRelayIO.take: a quarter of this). Only connections in a thread
 * have a channel, so this is memory per thread, not per client.
 */
export const RING_BYTES = { input: 8 * 1024 * 1024, output: 256 * 1024 } as const;
/** Replies queue in the worker until it waits, or until this many are queued (a GET's data). */
const WRITE_BATCH_BYTES = 64 * 1024;

/**
 * One connection's shared memory: header, input ring, output ring. A worker
 * waiting for the client's bytes for `idleTimeoutMs` (0: never) reads
 * 'idle-timeout'; the time counts from the start of that wait, not while the
 * worker is busy.
 */
export function createRelayChannel(idleTimeoutMs = 0): SharedArrayBuffer {
  return setUpHeader(new SharedArrayBuffer(HEADER_BYTES + RING_BYTES.input + RING_BYTES.output), idleTimeoutMs);
}

/**
 * The header of a channel no session has used: every counter and flag is in
 * it, so zeroing it makes a used channel new (the rings' old bytes lie beyond
 * the counters).
 */
function setUpHeader(channel: SharedArrayBuffer, idleTimeoutMs: number): SharedArrayBuffer {
  const { header, times } = viewsOf(channel);
  header.fill(0);
  times[Time.IDLE_TIMEOUT_MS] = idleTimeoutMs;
  return channel;
}

/**
 * Channels handed from one connection to the next. Shared memory is freed
 * only once every thread that held it has collected it, and a worker thread,
 * which allocates little, collects rarely: a crowd of a thousand short
 * connections to `workers --threads 4` left 760 MB resident after three runs,
 * growing from run to run. A channel comes back here once its session is
 * over on both sides (the thread's task has returned and the relay is
 * closed), so there are never more channels than sessions at once.
 */
export class RelayChannelPool {
  private readonly free: SharedArrayBuffer[] = [];

  constructor(private readonly idleTimeoutMs: number) {}

  take(): SharedArrayBuffer {
    const channel = this.free.pop();
    return channel === undefined ? createRelayChannel(this.idleTimeoutMs) : setUpHeader(channel, this.idleTimeoutMs);
  }

  /** Only once neither side can touch `channel` again. */
  give(channel: SharedArrayBuffer): void {
    this.free.push(channel);
  }

  /** Channels waiting for their next connection. */
  get idle(): number {
    return this.free.length;
  }
}

/** The rings as Buffers, for copyIntoRing and copyOutOfRing (shared-ring.ts, which says how they copy). */
interface Views {
  readonly header: Int32Array;
  readonly times: Float64Array;
  readonly input: Buffer;
  readonly output: Buffer;
}

function viewsOf(channel: SharedArrayBuffer): Views {
  return {
    header: new Int32Array(channel, 0, HEADER_BYTES / 4),
    times: new Float64Array(channel, 0, HEADER_BYTES / 8),
    input: Buffer.from(channel, HEADER_BYTES, RING_BYTES.input),
    output: Buffer.from(channel, HEADER_BYTES + RING_BYTES.input, RING_BYTES.output),
  };
}

function ring(header: Int32Array, slot: number): void {
  Atomics.add(header, slot, 1);
  Atomics.notify(header, slot);
}

/** Rings the worker's bell, waking it only if it sleeps (see WORKER_ASLEEP). */
function ringWorker(header: Int32Array): void {
  ringBell(header, Slot.WORKER_BELL, Slot.WORKER_ASLEEP);
}

/** The worker sleeps until its bell is no longer `seen`. */
function sleepWorker(header: Int32Array, seen: number): void {
  sleepWhile(header, Slot.WORKER_BELL, seen, Slot.WORKER_ASLEEP);
}

/** Main-thread half: relays one socket to one worker through a channel. */
export class SocketRelay {
  private readonly header: Int32Array;
  private readonly times: Float64Array;
  private readonly inputRing: Buffer;
  private readonly outputRing: Buffer;
  private inWritten = 0;
  private outRead = 0;
  /** Socket bytes that did not fit in the input ring; the socket is paused while there are any. */
  private readonly overflow: Uint8Array[] = [];
  /**
   * The client's end of input came while bytes still waited in `overflow`: a
   * socket emits 'end' right after its last 'data' even when that handler paused
   * it, so EOF is raised only once those bytes are in the ring, or the worker
   * would see EOF first and lose them.
   */
  private endAfterOverflow = false;
  private started = false;
  private stopped = false;
  private awaitingDrain = false;
  private idleCheck: NodeJS.Timeout | undefined;
  private relayedAll: () => void = () => {};
  /** Resolves once the worker is done and all it wrote is in the socket. */
  readonly finished = new Promise<void>((resolve) => {
    this.relayedAll = resolve;
  });

  constructor(
    private readonly socket: Socket,
    channel: SharedArrayBuffer,
    /** A client that takes none of our bytes for this long is cut off (0: never). */
    private readonly stallMs: number,
    private readonly onStarted: () => void,
    /** What the client sent while it waited for a thread: relayed first. */
    private readonly held: HeldInput = NOTHING_HELD,
  ) {
    ({ header: this.header, times: this.times, input: this.inputRing, output: this.outputRing } = viewsOf(channel));
    this.listen();
  }

  /** Tells the worker's session to finish up or stop (also wakes a blocked read). */
  signal(signal: 'shutdown' | 'abort'): void {
    this.raise(signal === 'shutdown' ? Flag.SHUTDOWN : Flag.ABORT);
    if (signal === 'abort' && this.awaitingDrain) this.socket.destroy();
  }

  /**
   * Stops relaying (the worker's task is over, whatever its outcome). From
   * here on the relay never touches the channel, whatever the socket still
   * does: the channel may already carry the next connection (RelayChannelPool).
   */
  close(): void {
    this.stopped = true;
    clearTimeout(this.idleCheck);
    this.relayedAll(); // a second close (the worker's DONE, then the task's end) changes nothing
    // Releases our own pending waitAsync, which would otherwise wait on this buffer for ever.
    ring(this.header, Slot.MAIN_BELL);
  }

  private readonly listen = (): void => {
    for (;;) {
      if (this.stopped) return;
      const seen = Atomics.load(this.header, Slot.MAIN_BELL);
      this.service();
      if (this.stopped) return;
      const waiting = Atomics.waitAsync(this.header, Slot.MAIN_BELL, seen);
      if (waiting.async) {
        void waiting.value.then(this.listen);
        return;
      }
      // The worker rang between our look and the wait: look again.
    }
  };

  /** Everything the worker may have asked for since the last look. */
  private service(): void {
    if (this.stopped) return;
    const flags = Atomics.load(this.header, Slot.FLAGS);
    if (!this.started && (flags & Flag.STARTED) !== 0) {
      this.started = true;
      this.checkIdleIn(this.times[Time.IDLE_TIMEOUT_MS]!);
      this.relaySocket();
      this.onStarted();
    }
    this.sendOutput();
    if (this.overflow.length > 0) this.refillInput();
    if ((flags & Flag.DONE) !== 0 && !this.awaitingDrain && Atomics.load(this.header, Slot.OUT_WRITTEN) === this.outRead) this.close();
  }

  private sendOutput(): void {
    if (this.awaitingDrain) return;
    const available = (Atomics.load(this.header, Slot.OUT_WRITTEN) - this.outRead) | 0;
    if (available === 0) return;
    const bytes = copyOutOfRing(this.outputRing, this.outRead, available);
    this.outRead = (this.outRead + available) | 0;
    Atomics.store(this.header, Slot.OUT_READ, this.outRead);
    if ((Atomics.load(this.header, Slot.FLAGS) & Flag.OUTPUT_WAITING) !== 0) ringWorker(this.header);
    // A socket already gone: the worker learns it from SOCKET_CLOSED; its bytes go nowhere.
    if (!this.socket.writable || this.socket.write(bytes)) return;
    this.awaitingDrain = true;
    drained(this.socket, this.stallMs, () => this.raise(Flag.STALLED)).then(
      () => {
        this.awaitingDrain = false;
        this.service();
      },
      () => {
        // Stalled or closed: 'close' has told the worker; what is left goes nowhere.
        this.awaitingDrain = false;
        this.service();
      },
    );
  }

  private relaySocket(): void {
    for (const chunk of this.held.chunks) this.relay(chunk);
    if (this.held.ended) this.endOfInput();
    this.socket.on('data', (chunk: Buffer) => this.relay(chunk));
    this.socket.on('end', () => this.endOfInput());
    this.socket.on('close', () => this.raise(Flag.ABORT | Flag.SOCKET_CLOSED));
    if (this.overflow.length === 0) this.socket.resume();
  }

  /** The client will send nothing more: EOF for the worker once every byte before it is in the ring. */
  private endOfInput(): void {
    if (this.stopped) return;
    if (this.overflow.length > 0) this.endAfterOverflow = true;
    else this.raise(Flag.EOF);
  }

  /** `chunk` may be overwritten once this returns (accepted-reads.ts: withSharedReadBuffer): what the ring has no room for is copied. */
  private relay(chunk: Uint8Array): void {
    if (this.stopped) return;
    if (this.overflow.length > 0) this.overflow.push(Buffer.from(chunk));
    else {
      const taken = this.fillInput(chunk);
      if (taken < chunk.length) {
        this.overflow.push(Buffer.from(chunk.subarray(taken)));
        this.socket.pause();
        // The worker may have emptied the ring meanwhile and gone to sleep: the bell makes it look at INPUT_PAUSED.
        this.raise(Flag.INPUT_PAUSED);
      }
    }
    ringWorker(this.header);
  }

  /** Copies as much of `bytes` as the input ring has room for; returns how much. */
  private fillInput(bytes: Uint8Array): number {
    const room = RING_BYTES.input - ((this.inWritten - Atomics.load(this.header, Slot.IN_READ)) | 0);
    const count = Math.min(room, bytes.length); // 0 when the ring is full: nothing moves
    copyIntoRing(this.inputRing, this.inWritten, bytes, 0, count);
    this.inWritten = (this.inWritten + count) | 0;
    Atomics.store(this.header, Slot.IN_WRITTEN, this.inWritten);
    return count;
  }

  private refillInput(): void {
    while (this.overflow.length > 0) {
      const head = this.overflow[0]!;
      const taken = this.fillInput(head);
      if (taken < head.length) {
        this.overflow[0] = head.subarray(taken);
        break;
      }
      this.overflow.shift();
    }
    // Wakes the worker only if it sleeps (ringWorker); one woken with nothing new looks and sleeps again.
    ringWorker(this.header);
    if (this.overflow.length === 0) {
      Atomics.and(this.header, Slot.FLAGS, ~Flag.INPUT_PAUSED);
      if (this.endAfterOverflow) {
        this.endAfterOverflow = false;
        this.raise(Flag.EOF);
      } else this.socket.resume(); // a no-op on a socket already gone
    }
  }

  private raise(flags: number): void {
    if (this.stopped) return;
    Atomics.or(this.header, Slot.FLAGS, flags);
    ringWorker(this.header);
  }

  private checkIdleIn(ms: number): void {
    if (ms > 0 && !this.stopped) this.idleCheck = setTimeout(this.checkIdle, ms).unref();
  }

  /**
   * The idle timeout is timed here, not by the worker, so that the worker
   * waits for a request as the bare relay's does: untimed, with no clock read
   * (a timed Atomics.wait arms and cancels a kernel timer every time). The
   * worker only notes when a wait for input starts; one timer per connection
   * looks at it once per idle time, and ends a wait that has lasted that long.
   */
  private readonly checkIdle = (): void => {
    this.idleCheck = undefined;
    if (this.stopped) return;
    const idleMs = this.times[Time.IDLE_TIMEOUT_MS]!;
    let next = idleMs;
    const wait = Atomics.load(this.header, Slot.INPUT_WAIT);
    const since = this.times[Time.INPUT_WAIT_SINCE]!;
    // Read again: if the worker began another wait meanwhile, `since` may be that one's, and this one is over.
    if (wait !== 0 && Atomics.load(this.header, Slot.INPUT_WAIT) === wait) {
      const left = since + idleMs - Date.now();
      if (left <= 0) {
        // Bytes the client sent while this thread was busy are relayed by the next poll, and the worker
        // takes bytes before it looks at IDLE_ENDED: so the verdict after that poll spares a client that kept up.
        afterPendingIO(() => {
          // Closed meanwhile: the channel may carry the next connection now, whose first wait has the same number.
          if (this.stopped || Atomics.load(this.header, Slot.INPUT_WAIT) !== wait) return;
          Atomics.store(this.header, Slot.IDLE_ENDED, wait);
          ringWorker(this.header);
        });
      } else next = left;
    }
    this.checkIdleIn(next);
  };
}

/** Worker-thread half: the session's blocking reads and writes. */
export class BlockingRelayIO implements BlockingSessionIO {
  private readonly header: Int32Array;
  private readonly inputRing: Buffer;
  private readonly outputRing: Buffer;
  private readonly times: Float64Array;
  private inRead = 0;
  private outWritten = 0;
  private shutdownSeen = false;
  /** The number of this worker's last wait for input (INPUT_WAIT). */
  private inputWaits = 0;
  private readonly unsent: Uint8Array[] = [];
  private unsentBytes = 0;
  /**
   * Bytes handed to the session: a read returns a view of the ring itself
   * (no copy on this thread, which is the busy one during an upload), so the
   * ring's room is given back to the main thread (IN_READ) a read late: a
   * read's bytes stay put until the read after the next (BlockingSessionIO.read).
   */
  private inTaken = 0;
  /** Where the last read's bytes start in the ring: what lies before is released at the next read. */
  private lastTakeStart = 0;

  /** The channel's (createRelayChannel). */
  private readonly idleTimeoutMs: number;

  constructor(channel: SharedArrayBuffer) {
    ({ header: this.header, times: this.times, input: this.inputRing, output: this.outputRing } = viewsOf(channel));
    this.idleTimeoutMs = this.times[Time.IDLE_TIMEOUT_MS]!;
    Atomics.or(this.header, Slot.FLAGS, Flag.STARTED);
    ring(this.header, Slot.MAIN_BELL);
  }

  read(): ClientInput {
    this.release(this.lastTakeStart);
    let waiting = false;
    try {
      for (;;) {
        // Load the bell *before* looking: a change after the look makes the wait return at once.
        const seen = Atomics.load(this.header, Slot.WORKER_BELL);
        const flags = Atomics.load(this.header, Slot.FLAGS);
        if ((flags & Flag.ABORT) !== 0) return 'abort';
        if ((flags & Flag.SHUTDOWN) !== 0 && !this.shutdownSeen) {
          this.shutdownSeen = true;
          return 'shutdown';
        }
        const available = (Atomics.load(this.header, Slot.IN_WRITTEN) - this.inTaken) | 0;
        if (available > 0) return this.take(available);
        if ((flags & Flag.EOF) !== 0) return 'eof';
        if (waiting && Atomics.load(this.header, Slot.IDLE_ENDED) === this.inputWaits) return 'idle-timeout';
        // An empty ring while the main thread holds bytes back: it paused after our last release() looked
        // at INPUT_PAUSED, so nobody has told it there is room. Without this bell both sides wait for ever.
        if ((flags & Flag.INPUT_PAUSED) !== 0) ring(this.header, Slot.MAIN_BELL);
        this.flush();
        if (!waiting && this.idleTimeoutMs > 0) {
          // Idle time counts only while waiting for the client, from the first wait of this read.
          waiting = true;
          this.inputWaits = (this.inputWaits + 1) | 0 || 1;
          this.times[Time.INPUT_WAIT_SINCE] = Date.now();
          Atomics.store(this.header, Slot.INPUT_WAIT, this.inputWaits);
        }
        sleepWorker(this.header, seen);
      }
    } finally {
      if (waiting) Atomics.store(this.header, Slot.INPUT_WAIT, 0);
    }
  }

  write(bytes: Uint8Array): void {
    if ((Atomics.load(this.header, Slot.FLAGS) & Flag.SOCKET_CLOSED) !== 0) throw this.whyClosed();
    this.unsent.push(bytes);
    this.unsentBytes += bytes.length;
    if (this.unsentBytes >= WRITE_BATCH_BYTES) this.flush();
  }

  flush(): void {
    if (this.unsent.length === 0) return;
    // Taken first: if the client is gone halfway, what is left goes nowhere, and a later flush must not resend.
    const batch = this.unsent.splice(0);
    this.unsentBytes = 0;
    for (const bytes of batch) {
      for (let from = 0; from < bytes.length; ) {
        const room = RING_BYTES.output - ((this.outWritten - Atomics.load(this.header, Slot.OUT_READ)) | 0);
        if (room === 0) {
          this.awaitOutputRoom();
          continue;
        }
        const count = Math.min(room, bytes.length - from);
        copyIntoRing(this.outputRing, this.outWritten, bytes, from, count);
        from += count;
        this.outWritten = (this.outWritten + count) | 0;
        Atomics.store(this.header, Slot.OUT_WRITTEN, this.outWritten);
      }
    }
    ring(this.header, Slot.MAIN_BELL);
  }

  /** Last call of a session: everything written is in the ring; the main thread may close the socket once it is sent. */
  done(): void {
    try {
      this.flush();
    } catch {
      // The client is gone: nothing left to send.
    }
    Atomics.or(this.header, Slot.FLAGS, Flag.DONE);
    ring(this.header, Slot.MAIN_BELL);
  }

  /**
   * A view of the ring itself, never across its end (the rest comes at the
   * next read), and of at most a quarter of it: the session holds this read
   * and the one before, so the main thread still has room for what the
   * client sends while the session hashes and writes them. The size matters:
   * over a 256 MiB upload, reads capped at 256 KiB, 1 MiB, 2 MiB and 4 MiB
   * ran at about 0.66, 0.73, 0.82 and 0.64 of a native copy (rings of 4 and 8
   * MiB; with a 1 MiB ring, copying each read out of it, 0.61-0.72).
   */
  private take(available: number): Uint8Array {
    const position = this.inTaken & (RING_BYTES.input - 1);
    const count = Math.min(available, RING_BYTES.input / 4, RING_BYTES.input - position);
    this.lastTakeStart = this.inTaken;
    this.inTaken = (this.inTaken + count) | 0;
    return this.inputRing.subarray(position, position + count);
  }

  /** Gives the ring up to counter `upTo` back to the main thread, which waits for room if it paused the socket. */
  private release(upTo: number): void {
    if (upTo === this.inRead) return;
    this.inRead = upTo;
    Atomics.store(this.header, Slot.IN_READ, this.inRead);
    if ((Atomics.load(this.header, Slot.FLAGS) & Flag.INPUT_PAUSED) !== 0) ring(this.header, Slot.MAIN_BELL);
  }

  private whyClosed(): Error {
    return (Atomics.load(this.header, Slot.FLAGS) & Flag.STALLED) !== 0 ? stalledWriteError(this.idleTimeoutMs) : clientGone();
  }

  private awaitOutputRoom(): void {
    ring(this.header, Slot.MAIN_BELL); // what is in the ring must go out before room can appear
    Atomics.or(this.header, Slot.FLAGS, Flag.OUTPUT_WAITING);
    try {
      for (;;) {
        const seen = Atomics.load(this.header, Slot.WORKER_BELL);
        if ((Atomics.load(this.header, Slot.FLAGS) & Flag.SOCKET_CLOSED) !== 0) throw this.whyClosed();
        if (((this.outWritten - Atomics.load(this.header, Slot.OUT_READ)) | 0) < RING_BYTES.output) return;
        sleepWorker(this.header, seen);
      }
    } finally {
      Atomics.and(this.header, Slot.FLAGS, ~Flag.OUTPUT_WAITING);
    }
  }
}
