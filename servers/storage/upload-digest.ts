/**
 * The running sha256 of an upload. Small uploads are hashed where they are
 * received. A large one is hashed on a thread of its own (sha256-thread.ts)
 * where the machine has a core to spare for it: its bytes are copied into a
 * shared ring (hash-ring.ts), a copy that costs a tenth of hashing them, and
 * the receiving thread goes back to the socket while another core hashes.
 * The digest is the same either way; the commit waits for it before it
 * checks it and before the 226.
 *
 * Two flavours, like the storage: the blocking one (sequential and workers)
 * waits for room in the ring with Atomics.wait, the event-loop one (async)
 * keeps what does not fit yet and lets the caller wait on a promise.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { isMainThread, Worker } from 'node:worker_threads';
import { ErrorCodes, StorageError } from '../../protocol/errors.js';
import { copyIntoRing, ringBell, sleepWhile, sleepWhileAsync } from '../../transport/shared-ring.js';
import { createHashRing, HasherState, Slot, viewHashRing, type HashRing } from './hash-ring.js';

/** A digest in a thread that may block. */
export interface BlockingDigest {
  /** Takes the next bytes of the upload (the caller may reuse them afterwards). */
  take(bytes: Uint8Array): void;
  /** The hex digest of everything taken. */
  finish(): string;
  /** Drops the digest (an aborted upload); safe to call more than once, and after finish. */
  abandon(): void;
  /** True when a hasher thread computes it, false when the caller's thread does (a small upload, or no free hasher). */
  readonly onThread: boolean;
}

/** A digest on an event loop: `take` keeps bytes it cannot copy yet, and returns a promise to wait on before more. */
export interface EventLoopDigest {
  take(bytes: Uint8Array): void | Promise<void>;
  finish(): string | Promise<string>;
  abandon(): void;
  readonly onThread: boolean;
}

/** Below this, a thread hop costs more than the hashing it saves. */
export const OFF_THREAD_MIN_BYTES = 8 * 1024 * 1024;
/**
 * Room for the hasher falling behind for a moment (a few ms at full speed).
 * The first upload also waits here while its hasher thread starts, once.
 */
const RING_BYTES = 4 * 1024 * 1024;
/**
 * Hasher threads per thread that receives uploads: on the event loop, one per
 * core (uploads from several clients at once); in a worker thread, which
 * serves one connection at a time, one.
 */
const MAX_HASHERS = isMainThread ? os.availableParallelism() : 1;
/**
 * Whether a server starts hasher threads. Only with more than two cores: one
 * upload over loopback already keeps two busy (the sender and the kernel's
 * side of the copy, the receiving thread, libuv's writes), so on two a hasher
 * thread only adds its hand-offs and its copy. Measured on two cores, one
 * 256 MiB upload to async, inline against on a thread, alternating in one
 * run: 628 against 607 MiB/s, 2.24 against 2.72 CPU s per GiB; workers in
 * `put-throughput.js` runs: 3.60 against 4.52 CPU s per GiB. Again once the
 * ring copy was one memcpy (shared-ring.ts), three runs each: async 886–991
 * against 890–934 MiB/s inline, 1.56–1.68 against 1.44–1.48 CPU s per GiB;
 * workers 588–631 against 648–679. The receiving thread spends 60% of its
 * time hashing inline, but the other core is already busy with the sender
 * and the writes.
 */
export const STARTS_HASHERS = os.availableParallelism() > 2;
/**
 * A sleeping hasher is woken once this much waits in the ring (or at the end):
 * far below the ring's size, so that a full ring always has the hasher awake.
 */
const WAKE_HASHER_BYTES = 1024 * 1024;
/** No progress from a hasher thread for this long means it is gone (it never blocks on anything else). */
const HASHER_STALL_MS = 30_000;

export function blockingDigest(size: number): BlockingDigest {
  const hasher = size >= OFF_THREAD_MIN_BYTES ? acquireHasher() : null;
  return hasher === null ? inlineDigest() : new BlockingThreadDigest(hasher);
}

export function eventLoopDigest(size: number): EventLoopDigest {
  const hasher = size >= OFF_THREAD_MIN_BYTES ? acquireHasher() : null;
  return hasher === null ? inlineDigest() : new EventLoopThreadDigest(hasher);
}

function inlineDigest(): BlockingDigest {
  const hash = createHash('sha256');
  return {
    take: (bytes) => void hash.update(bytes),
    finish: () => hash.digest('hex'),
    abandon: () => {},
    onThread: false,
  };
}

/**
 * A hasher thread and its ring, for one job at a time; the ring's state word
 * says whether it is free. The thread is unref'd: an idle hasher never keeps
 * a process alive.
 */
class HasherThread {
  readonly ring: HashRing;
  /** The ring's data as a Buffer, for copyIntoRing (shared-ring.ts, which says how it copies). */
  readonly dataBuffer: Buffer;
  private readonly worker: Worker;
  private waiters = 0;

  constructor() {
    const buffer = createHashRing(RING_BYTES);
    this.ring = viewHashRing(buffer);
    this.dataBuffer = Buffer.from(buffer, this.ring.data.byteOffset, this.ring.data.length);
    Atomics.store(this.ring.control, Slot.State, HasherState.Starting);
    const worker = new Worker(new URL('./sha256-thread.js', import.meta.url), { workerData: { ring: buffer } });
    worker.unref();
    this.worker = worker;
    const broken = () => {
      Atomics.store(this.ring.control, Slot.State, HasherState.Broken);
      Atomics.notify(this.ring.control, Slot.State);
      Atomics.notify(this.ring.control, Slot.Consumed);
    };
    worker.on('error', broken);
    worker.on('exit', broken);
  }

  /**
   * An Atomics.waitAsync does not keep the event loop alive; while one waits
   * on this hasher, the hasher's worker does (then nothing else needs to).
   */
  async waitOn(slot: number, seen: number, timeoutMs: number): Promise<'ok' | 'not-equal' | 'timed-out'> {
    const waiting = Atomics.waitAsync(this.ring.control, slot, seen, timeoutMs);
    if (!waiting.async) return waiting.value;
    if (this.waiters++ === 0) this.worker.ref();
    try {
      return await waiting.value;
    } finally {
      if (--this.waiters === 0) this.worker.unref();
    }
  }

  get free(): boolean {
    return Atomics.load(this.ring.control, Slot.State) === HasherState.Idle;
  }

  start(): void {
    const { control } = this.ring;
    Atomics.store(control, Slot.Written, 0);
    Atomics.store(control, Slot.Consumed, 0);
    Atomics.store(control, Slot.State, HasherState.Hashing);
    Atomics.notify(control, Slot.State);
  }
}

/** Hasher threads of this thread (each worker thread of the workers server has its own). */
const hashers: HasherThread[] = [];

/**
 * A free hasher thread, or null: then the digest is computed inline. A
 * thread that is still starting is not free: an upload never waits for a
 * thread to boot (tens of ms, more on a busy machine), which would also
 * delay the session's reaction to a client that has gone, and so the end of
 * that upload's reservation. Without a free thread, one more is started for
 * later uploads while there are fewer than MAX_HASHERS (if STARTS_HASHERS).
 */
function acquireHasher(): HasherThread | null {
  const hasher = hashers.find((candidate) => candidate.free);
  if (hasher === undefined) {
    if (STARTS_HASHERS) startHasher();
    return null;
  }
  hasher.start();
  return hasher;
}

function startHasher(): void {
  if (hashers.length >= MAX_HASHERS) return;
  try {
    hashers.push(new HasherThread());
  } catch {
    // No thread to be had (resource limits): hashing inline is slower, not wrong.
  }
}

/**
 * Starts this thread's first hasher, resolving once it takes jobs, so that
 * even the first large upload is hashed beside the receiving, on any
 * machine. The servers do not call it: an idle server keeps the threads the
 * lab guide counts, and their first large upload is hashed inline. The tests
 * do, to know that what they test went through a thread.
 */
export async function warmUpHasher(): Promise<void> {
  if (hashers.length === 0) startHasher();
  const hasher = hashers[0];
  if (hasher === undefined) return; // no thread to be had: uploads are hashed inline
  await hasher.waitOn(Slot.State, HasherState.Starting, HASHER_STALL_MS);
}

function abandonedBeforeChecksum(): StorageError {
  return new StorageError(ErrorCodes.STORAGE_FAILED, 'the upload was abandoned before its checksum was complete');
}

function hasherStopped(): StorageError {
  return new StorageError(ErrorCodes.STORAGE_FAILED, 'the thread computing the upload checksum stopped');
}

/** What both threaded flavours share: copying into the ring, and handing the hasher back. */
abstract class ThreadDigest {
  /** Bytes put in the ring so far (mod 2^32), the value of Slot.Written. */
  private written = 0;
  protected settled = false;
  readonly onThread = true;

  constructor(protected readonly hasher: HasherThread) {}

  abandon(): void {
    if (this.settled) return;
    this.settled = true;
    const { control } = this.hasher.ring;
    for (;;) {
      const state = Atomics.load(control, Slot.State);
      if (state === HasherState.Digested) {
        Atomics.store(control, Slot.State, HasherState.Idle);
        return;
      }
      if (state !== HasherState.Hashing && state !== HasherState.Finished) return;
      // The hasher goes back to Idle itself once it has seen this, so nobody reuses it while it still reads the ring.
      if (Atomics.compareExchange(control, Slot.State, state, HasherState.Abandoned) === state) {
        this.ringDoorbell();
        return;
      }
    }
  }

  /** Copies as much of `bytes` as the ring has room for; returns how many. */
  protected copyIn(bytes: Uint8Array): number {
    const { control, mask } = this.hasher.ring;
    const room = mask + 1 - ((this.written - Atomics.load(control, Slot.Consumed)) | 0);
    const count = Math.min(room, bytes.length);
    if (count === 0) return 0;
    copyIntoRing(this.hasher.dataBuffer, this.written, bytes, 0, count);
    this.written = (this.written + count) | 0;
    Atomics.store(control, Slot.Written, this.written);
    // A sleeping hasher is woken for a batch, not for every socket chunk: a wake-up is a system call.
    this.ringDoorbell(((this.written - Atomics.load(control, Slot.Consumed)) | 0) >= WAKE_HASHER_BYTES);
    return count;
  }

  /** Throws if the hasher thread broke: nothing would ever wake a wait on it. */
  protected checkHasher(): void {
    if (Atomics.load(this.hasher.ring.control, Slot.State) === HasherState.Broken) throw hasherStopped();
  }

  protected markFinished(): void {
    // Abandoned while finish() still waited for its bytes to reach the ring: the hasher has gone back to
    // Idle (or to another upload), and marking it Finished now would take it from everyone for good.
    if (this.settled) throw abandonedBeforeChecksum();
    this.checkHasher();
    Atomics.store(this.hasher.ring.control, Slot.State, HasherState.Finished);
    this.ringDoorbell();
  }

  /** The digest once the hasher has written it, handing the hasher back; null while it has not. */
  protected takeDigest(): string | null {
    const { control, digest } = this.hasher.ring;
    // Abandoned while its digest was awaited (the commit failed beside it): the hasher is no longer ours,
    // and waiting for a Digested that will never come would spin.
    if (this.settled) throw abandonedBeforeChecksum();
    const state = Atomics.load(control, Slot.State);
    if (state === HasherState.Broken) throw hasherStopped();
    if (state !== HasherState.Digested) return null;
    const hex = Buffer.from(digest).toString('hex');
    this.settled = true;
    Atomics.store(control, Slot.State, HasherState.Idle);
    return hex;
  }

  private ringDoorbell(wake = true): void {
    ringBell(this.hasher.ring.control, Slot.Doorbell, Slot.HasherAsleep, wake);
  }
}

class BlockingThreadDigest extends ThreadDigest implements BlockingDigest {
  take(bytes: Uint8Array): void {
    const { control } = this.hasher.ring;
    // `seen` is read before each copy: if the hasher makes room in between, the wait returns at once.
    for (let seen = Atomics.load(control, Slot.Consumed), done = this.copyIn(bytes); done < bytes.length; done += this.copyIn(bytes.subarray(done))) {
      this.wait(Slot.Consumed, seen);
      seen = Atomics.load(control, Slot.Consumed);
    }
  }

  finish(): string {
    this.markFinished();
    for (;;) {
      const hex = this.takeDigest();
      if (hex !== null) return hex;
      this.wait(Slot.State, HasherState.Finished);
    }
  }

  /** Sleeps until the word at `slot` is no longer `seen`. */
  private wait(slot: number, seen: number): void {
    this.checkHasher();
    const woken = sleepWhile(this.hasher.ring.control, slot, seen, Slot.ProducerAsleep, HASHER_STALL_MS);
    if (woken === 'timed-out') throw hasherStopped();
  }
}

class EventLoopThreadDigest extends ThreadDigest implements EventLoopDigest {
  /** Bytes taken but not yet in the ring, in order (kept by reference, as the batched writer keeps them). */
  private pending: Uint8Array[] = [];
  /**
   * True from the start of drainPending until its loop ends, set and cleared
   * synchronously: a drain can end within the call that starts it (the hasher
   * made room meanwhile), and a promise or a null check could not tell a
   * finished drain from a running one. Bytes pending with no drain running
   * would never reach the hasher, and the digest would be wrong.
   */
  private draining = false;
  private drained: Promise<void> = Promise.resolve();

  take(bytes: Uint8Array): void | Promise<void> {
    if (this.pending.length === 0) {
      const copied = this.copyIn(bytes);
      if (copied === bytes.length) return;
      this.pending.push(bytes.subarray(copied));
    } else {
      this.pending.push(bytes);
    }
    if (!this.draining) this.drained = this.drainPending();
    return this.drained;
  }

  async finish(): Promise<string> {
    while (this.draining) await this.drained;
    this.markFinished();
    for (;;) {
      const hex = this.takeDigest();
      if (hex !== null) return hex;
      await this.wait(Slot.State, HasherState.Finished);
    }
  }

  override abandon(): void {
    this.pending = [];
    super.abandon();
    // A drain waiting for room would wait for ever now that the hasher has dropped the job: wake it to see that.
    Atomics.notify(this.hasher.ring.control, Slot.Consumed);
  }

  private async drainPending(): Promise<void> {
    this.draining = true;
    try {
      for (let next = this.pending[0]; next !== undefined && !this.settled; next = this.pending[0]) {
        // Read before the copy: if the hasher makes room in between, the wait returns at once.
        const seen = Atomics.load(this.hasher.ring.control, Slot.Consumed);
        const copied = this.copyIn(next);
        if (copied === next.length) this.pending.shift();
        else {
          this.pending[0] = next.subarray(copied);
          await this.wait(Slot.Consumed, seen);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async wait(slot: number, seen: number): Promise<void> {
    this.checkHasher();
    const woken = await sleepWhileAsync(this.hasher.ring.control, Slot.ProducerAsleep, () => this.hasher.waitOn(slot, seen, HASHER_STALL_MS));
    if (woken === 'timed-out') throw hasherStopped();
  }
}
