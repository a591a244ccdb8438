/**
 * fdatasync in the background for the blocking flavour (sync.ts): a large
 * upload's written pages go to the disk while the upload goes on, so the
 * fsync its commit needs finds little left to do. The async flavour gets this
 * from libuv's pool (batched-writer.ts), but blocking code cannot wait for a
 * callback: a workers thread's event loop does not turn during a session, nor
 * between sessions (piscina waits for tasks in Atomics.wait). So a thread of
 * its own does the flushing and says how it went in shared memory.
 *
 * It flushes through a descriptor of the upload's own opened for this, never
 * the one the upload writes and commits with, so that the commit's fsync
 * reports a write-back error even where the kernel reports one once per
 * descriptor; and a flush that failed fails the commit too, wherever it
 * reports. One flush at a time; asked while busy, it lets that one go (the
 * next comes a few MiB later, or the commit does the rest).
 *
 * A descriptor being flushed is never closed under the thread: a flush that
 * ran later would find its number given to another file by then, maybe
 * another upload's, and take that file's write-back error. The commit waits
 * for the flush; an abort hands the descriptor over and the thread closes it
 * when done, so that an abort never waits for the disk.
 *
 * The thread starts when the first upload large enough to need a flush
 * begins writing in a thread (so that it is up by the first flush), runs
 * only fdatasync and close, and is unref'd: it never keeps a process alive.
 */
import { Worker } from 'node:worker_threads';

/** Words of the shared state. */
export const FlushWord = {
  State: 0,
  /** The job: Job flags, 0 when the thread is idle. */
  Job: 1,
  /** The descriptor of the job (of the last one, once done). */
  Fd: 2,
  /** The errno of the last job's fdatasync, 0 if it succeeded. */
  Errno: 3,
  /** Jobs done since the thread started. */
  Done: 4,
} as const;

export const FlushJob = {
  /** Set by the owner to start a job, cleared by the thread when it is done. */
  Running: 1,
  /** Set by the owner while the job runs: the thread closes the descriptor when done. */
  CloseAfter: 2,
} as const;

export const FlusherState = {
  Starting: 0,
  Ready: 1,
  Broken: 2,
} as const;

const WORDS = 5;
/** A flush unfinished after this long: the disk is stuck. The commit stops waiting and hands the descriptor over. */
const FLUSH_STALL_MS = 60_000;

export class BackgroundFlusher {
  private static ofThread: BackgroundFlusher | null = null;

  /** This thread's flusher, started at the first call. */
  static forThisThread(): BackgroundFlusher {
    BackgroundFlusher.ofThread ??= new BackgroundFlusher();
    return BackgroundFlusher.ofThread;
  }

  private readonly words = new Int32Array(new SharedArrayBuffer(WORDS * Int32Array.BYTES_PER_ELEMENT));
  /** Failed flushes of descriptors still open, by descriptor: their errno. */
  private readonly failures = new Map<number, number>();
  /** The last job's descriptor was handed over: its outcome concerns nobody (its number may be another file's by now). */
  private lastJobHandedOver = false;

  private constructor() {
    try {
      const worker = new Worker(new URL('./flush-thread.js', import.meta.url), { workerData: { words: this.words.buffer } });
      worker.unref();
      // Heard only where the event loop turns (not in a workers session).
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

  /**
   * Flushes finished since the thread started. Counted just before the job
   * word is cleared: a count that went up does not yet mean the thread is
   * idle (see `idle`).
   */
  get flushesDone(): number {
    return Atomics.load(this.words, FlushWord.Done);
  }

  /** Whether no flush is under way (the thread has let go of the last job's descriptor, or closed it if it was handed over). */
  get idle(): boolean {
    return (Atomics.load(this.words, FlushWord.Job) & FlushJob.Running) === 0;
  }

  /** Starts flushing `fd`'s written pages, unless the thread is not up yet, or busy: then nothing (it is only ever a head start). */
  flush(fd: number): void {
    if (!this.ready || Atomics.load(this.words, FlushWord.Job) !== 0) return;
    this.noteLastJob();
    this.lastJobHandedOver = false;
    Atomics.store(this.words, FlushWord.Fd, fd);
    Atomics.store(this.words, FlushWord.Job, FlushJob.Running);
    Atomics.notify(this.words, FlushWord.Job);
  }

  /**
   * For a commit, before it closes `fd`: waits for a flush of it under way,
   * then says whether any flush of it failed (`errno`, else 0). `handedOver`:
   * the flush is stuck; the thread closes `fd` when it is done, and the
   * caller must not.
   */
  finish(fd: number): { readonly errno: number; readonly handedOver: boolean } {
    const since = performance.now();
    for (;;) {
      const job = Atomics.load(this.words, FlushWord.Job);
      if ((job & FlushJob.Running) === 0 || Atomics.load(this.words, FlushWord.Fd) !== fd || this.broken) break;
      const left = FLUSH_STALL_MS - (performance.now() - since);
      if (left <= 0 && this.handOverRunningJob()) {
        this.lastJobHandedOver = true;
        return { errno: this.takeFailure(fd), handedOver: true };
      }
      Atomics.wait(this.words, FlushWord.Job, job, Math.max(left, 10));
    }
    this.noteLastJob();
    return { errno: this.takeFailure(fd), handedOver: false };
  }

  /**
   * For an abort, instead of closing `fd`: true if a flush of it is under
   * way, which then closes it when done; false if the caller must close it.
   * Either way what its flushes came to concerns nobody any more.
   */
  handOver(fd: number): boolean {
    this.failures.delete(fd);
    if (Atomics.load(this.words, FlushWord.Fd) !== fd) return false;
    // Whatever happens below, the last job was this descriptor's: its outcome must not reach whoever gets its number next.
    this.lastJobHandedOver = true;
    // A broken thread will not touch the descriptor again: the caller closes it.
    if (this.broken) return false;
    return this.handOverRunningJob();
  }

  /** Asks the thread to close the job's descriptor when done: true if the job was still running, false if done (then nothing changes). */
  private handOverRunningJob(): boolean {
    const before = Atomics.or(this.words, FlushWord.Job, FlushJob.CloseAfter);
    if ((before & FlushJob.Running) !== 0) return true;
    // Done already (only this thread starts jobs, so none started in between).
    Atomics.and(this.words, FlushWord.Job, ~FlushJob.CloseAfter);
    return false;
  }

  /** The errno of a failed flush of `fd` noted so far, else 0; forgotten once told. */
  private takeFailure(fd: number): number {
    const errno = this.failures.get(fd) ?? 0;
    this.failures.delete(fd);
    return errno;
  }

  private get broken(): boolean {
    return Atomics.load(this.words, FlushWord.State) === FlusherState.Broken;
  }

  /**
   * Keeps the last job's failure, if it failed, for its descriptor's commit.
   * Only with the thread idle (only this thread starts jobs, so it stays so):
   * a job under way may still write its errno.
   */
  private noteLastJob(): void {
    if ((Atomics.load(this.words, FlushWord.Job) & FlushJob.Running) !== 0) return;
    const errno = Atomics.exchange(this.words, FlushWord.Errno, 0);
    if (errno !== 0 && !this.lastJobHandedOver) this.failures.set(Atomics.load(this.words, FlushWord.Fd), errno);
  }
}
