/**
 * fdatasync in the background for the blocking flavour (sync.ts): a large
 * upload's written pages go to the disk while the upload goes on, so the
 * fsync its commit needs finds little left to do. The async flavour gets this
 * from libuv's pool (batched-writer.ts), but blocking code cannot wait for a
 * callback: a workers thread's event loop does not turn during a session, nor
 * between sessions (piscina waits for tasks in Atomics.wait). So a thread of
 * its own does the flushing and says when it is done in shared memory.
 *
 * It flushes through a descriptor of the upload's own opened for this, never
 * the one the upload writes and commits with: Linux reports a write-back error
 * once per open file description, so a flush on the upload's descriptor could
 * take the error that the commit's fsync must see. The flush's own outcome is
 * ignored for the same reason: the commit's fsync makes the upload durable, or
 * fails it. One flush at a time; asked while busy, it lets that one go (the
 * next comes a few MiB later, or the commit does the rest).
 *
 * The thread starts when the first upload large enough to need a flush
 * begins writing in a thread (so that it is up by the first flush), runs
 * only fdatasync, and is unref'd: it never keeps a process alive.
 */
import { Worker } from 'node:worker_threads';

/** Words of the shared state. */
export const FlushWord = {
  State: 0,
  /** Counts requests; the thread flushes when it differs from Done. */
  Requested: 1,
  /** The last request the thread finished. */
  Done: 2,
  /** The descriptor of the last request. */
  Fd: 3,
} as const;

export const FlusherState = {
  Starting: 0,
  Ready: 1,
  Broken: 2,
} as const;

/** No answer from a flush for this long: the disk is stuck, or the thread gone; the caller stops waiting for it. */
const FLUSH_STALL_MS = 60_000;

export class BackgroundFlusher {
  private static ofThread: BackgroundFlusher | null = null;

  /** This thread's flusher, started at the first call. */
  static forThisThread(): BackgroundFlusher {
    BackgroundFlusher.ofThread ??= new BackgroundFlusher();
    return BackgroundFlusher.ofThread;
  }

  private readonly words = new Int32Array(new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT));

  private constructor() {
    try {
      const worker = new Worker(new URL('./flush-thread.js', import.meta.url), { workerData: { words: this.words.buffer } });
      worker.unref();
      // Heard only where the event loop turns (not in a workers session): the state word covers the rest.
      const broken = () => Atomics.store(this.words, FlushWord.State, FlusherState.Broken);
      worker.on('error', broken);
      worker.on('exit', broken);
    } catch {
      Atomics.store(this.words, FlushWord.State, FlusherState.Broken);
    }
  }

  /** Whether the thread is up: flushes asked for before are let go. */
  get ready(): boolean {
    return Atomics.load(this.words, FlushWord.State) === FlusherState.Ready;
  }

  /** Flushes finished since the thread started. */
  get flushesDone(): number {
    return Atomics.load(this.words, FlushWord.Done);
  }

  /** Starts flushing `fd`'s written pages, unless the thread is not up yet, or busy: then nothing (it is only ever a head start). */
  flush(fd: number): void {
    if (Atomics.load(this.words, FlushWord.State) !== FlusherState.Ready) return;
    const requested = Atomics.load(this.words, FlushWord.Requested);
    if (Atomics.load(this.words, FlushWord.Done) !== requested) return;
    Atomics.store(this.words, FlushWord.Fd, fd);
    Atomics.store(this.words, FlushWord.Requested, (requested + 1) | 0);
    Atomics.notify(this.words, FlushWord.Requested);
  }

  /**
   * Returns once no flush of `fd` is waiting or running, so that `fd` may be
   * closed: a flush that ran later would find its number, maybe given to
   * another file by then.
   */
  finish(fd: number): void {
    const since = performance.now();
    for (;;) {
      const done = Atomics.load(this.words, FlushWord.Done);
      if (done === Atomics.load(this.words, FlushWord.Requested) || Atomics.load(this.words, FlushWord.Fd) !== fd) return;
      if (Atomics.load(this.words, FlushWord.State) !== FlusherState.Ready) return;
      const left = FLUSH_STALL_MS - (performance.now() - since);
      if (left <= 0) return;
      Atomics.wait(this.words, FlushWord.Done, done, left);
    }
  }
}
