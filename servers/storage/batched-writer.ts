/**
 * Bulk bytes into a file without holding the event loop: chunks as they come
 * off a socket (64 KiB each) are gathered into large positional writes
 * (`writev`, one system call for a whole batch, no copy), several of them in
 * flight on libuv's thread pool at once, so the disk works while the loop goes
 * back to reading the socket. Past a bound in flight, `write` returns a
 * promise: the caller stops reading, and TCP pushes back on the client.
 *
 * Data already written is flushed to the disk in the background every few
 * MiB (fdatasync), so the fsync a commit needs finds little left to do.
 */
import { datasyncFile, writevAt } from './fs-calls.js';

export interface BatchedWriterOptions {
  /** Bytes gathered before one writev. */
  readonly batchBytes?: number;
  /** Bytes written but not yet on their way to the disk, past which `write` waits. */
  readonly maxInFlightBytes?: number;
  /** Every this many bytes written, an fdatasync runs in the background (0: never). */
  readonly syncEveryBytes?: number;
}

/**
 * An upload's written pages start for the disk every this many bytes, in the
 * background (here, and background-flush.ts for the blocking flavour), so that its commit's
 * fsync finds little left to do.
 */
export const BACKGROUND_FLUSH_BYTES = 32 * 1024 * 1024;

const DEFAULTS = { batchBytes: 1024 * 1024, maxInFlightBytes: 8 * 1024 * 1024, syncEveryBytes: BACKGROUND_FLUSH_BYTES } as const;

export class BatchedFileWriter {
  private readonly batchBytes: number;
  private readonly maxInFlightBytes: number;
  private readonly syncEveryBytes: number;
  private batch: Uint8Array[] = [];
  private batchedBytes = 0;
  /** Where the next batch goes in the file. */
  private position: number;
  private inFlightBytes = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private sinceSync = 0;
  private backgroundSync: Promise<void> | null = null;
  private failure: { readonly error: unknown } | null = null;
  private roomWaiters: (() => void)[] = [];

  constructor(
    /** An open descriptor, closed by the caller once `settle` or `discard` is done. */
    private readonly fd: number,
    startAt = 0,
    options: BatchedWriterOptions = {},
  ) {
    this.position = startAt;
    this.batchBytes = options.batchBytes ?? DEFAULTS.batchBytes;
    this.maxInFlightBytes = options.maxInFlightBytes ?? DEFAULTS.maxInFlightBytes;
    this.syncEveryBytes = options.syncEveryBytes ?? DEFAULTS.syncEveryBytes;
  }

  /** Queues `bytes` (kept, not copied, until written). A promise when the caller should wait before the next. */
  write(bytes: Uint8Array): void | Promise<void> {
    if (this.failure !== null) throw this.failure.error;
    if (bytes.length === 0) return;
    this.batch.push(bytes);
    this.batchedBytes += bytes.length;
    if (this.batchedBytes >= this.batchBytes) this.startBatch();
    if (this.inFlightBytes > this.maxInFlightBytes) return this.room();
  }

  /** Writes what is queued and waits for every write (and background flush); throws the first failure. */
  async settle(): Promise<void> {
    this.startBatch();
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    if (this.backgroundSync !== null) await this.backgroundSync;
    if (this.failure !== null) throw this.failure.error;
  }

  /** Drops what is queued and waits for what is in flight, reporting nothing (an abort, before the file is closed). */
  async discard(): Promise<void> {
    this.batch = [];
    this.batchedBytes = 0;
    await this.quiesce();
  }

  /** Waits for what is in flight without reporting failures. */
  async quiesce(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (this.backgroundSync !== null) await this.backgroundSync.catch(() => {});
  }

  private startBatch(): void {
    if (this.batchedBytes === 0) return;
    const buffers = this.batch;
    const bytes = this.batchedBytes;
    const position = this.position;
    this.batch = [];
    this.batchedBytes = 0;
    this.position += bytes;
    this.inFlightBytes += bytes;
    const written = writevFully(this.fd, buffers, position).then(
      () => {
        this.inFlightBytes -= bytes;
        this.sinceSync += bytes;
        if (this.syncEveryBytes > 0 && this.sinceSync >= this.syncEveryBytes && this.backgroundSync === null) this.syncInBackground();
      },
      (error: unknown) => {
        this.inFlightBytes -= bytes;
        this.failure ??= { error };
      },
    );
    this.inFlight.add(written);
    void written.then(() => {
      this.inFlight.delete(written);
      this.wakeIfRoom();
    });
  }

  private syncInBackground(): void {
    this.sinceSync = 0;
    this.backgroundSync = datasyncFile(this.fd).then(
      () => {
        this.backgroundSync = null;
      },
      (error: unknown) => {
        this.backgroundSync = null;
        this.failure ??= { error };
      },
    );
  }

  private room(): Promise<void> {
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private wakeIfRoom(): void {
    if (this.inFlightBytes > this.maxInFlightBytes && this.failure === null) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** writev that goes on after a short write (rare for regular files, but allowed). */
async function writevFully(fd: number, buffers: Uint8Array[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  for (;;) {
    const bytesWritten = await writevAt(fd, pending, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
    if (rest.length === 0) return;
    pending = rest;
  }
}
