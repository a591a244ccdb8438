/**
 * The storage root with promises, for the async server: node:fs/promises only,
 * so no call ever blocks the event loop. Same semantics as SyncStorage
 * (sync.ts); the shared decisions live in common.ts, so this file is only the
 * order of the file-system calls.
 */
import fsp, { type FileHandle } from 'node:fs/promises';
import type { Stats, StatsFs } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BatchedFileWriter } from './batched-writer.js';
import { ErrorCodes, StorageError, type ListEntry } from '../../protocol/index.js';
import {
  CHUNK_BYTES,
  FILE_MODE,
  READ_FLAGS,
  TEMP_CREATE_FLAGS,
  ReadState,
  UploadState,
  bytesNeededForUpload,
  checkPlan,
  commitLockKey,
  copyMismatch,
  fileExists,
  isDirectorySyncUnsupported,
  isListableName,
  isMissing,
  isTempName,
  listEntry,
  newTempPath,
  noSpace,
  notFound,
  overQuota,
  pathInRoot,
  quotaOf,
  sortedForListing,
  toStorageError,
  visiblyLacksSpace,
  wouldExceedQuota,
} from './common.js';
import type {
  AsyncNameLock,
  AsyncStorageOps,
  FileDigest,
  OpenStorageOptions,
  ReadHandle,
  UploadHandle,
  UploadPlan,
} from './types.js';


/**
 * The default lock: one promise chain per name, so commits to a name run one
 * after the other, in call order. A name's entry is dropped when its chain
 * drains, so the map holds only names with a commit in progress.
 */
export class PromiseChainNameLock implements AsyncNameLock {
  private readonly tails = new Map<string, Promise<void>>();

  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name);
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    // Chained promises only ever resolve (release is called in finally), so one failure never blocks the rest.
    const tail = previous === undefined ? done : previous.then(() => done);
    this.tails.set(name, tail);
    try {
      if (previous !== undefined) await previous;
      return await fn();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

interface OpenRegularFile {
  readonly file: FileHandle;
  readonly size: number;
}

/**
 * Files the async server may hold open at once for reads and uploads. One
 * event loop can carry ten thousand sessions, but not ten thousand open files
 * on top of their sockets (the process's descriptor limit): past this, a
 * session waits for a free slot before its `150`, instead of failing with EMFILE.
 */
export const MAX_OPEN_FILES = 1024;
/**
 * How long a session waits for a slot before it is told `450 busy` (it may
 * retry): never silently without bound, even when every slot is held by
 * clients that trickle (they are cut off by the minimum upload rate).
 */
export const SLOT_WAIT_MS = 10_000;

class FileSlots {
  private free: number;
  private readonly waiting = new Set<() => void>();

  constructor(
    limit: number,
    private readonly waitMs: number,
  ) {
    this.free = limit;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const granted = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.delete(granted);
        reject(new StorageError(ErrorCodes.BUSY, `all ${MAX_OPEN_FILES} file slots stayed in use for ${this.waitMs / 1000} s`));
      }, this.waitMs);
      this.waiting.add(granted);
    });
  }

  release(): void {
    for (const next of this.waiting) {
      this.waiting.delete(next);
      next();
      return;
    }
    this.free++;
  }
}

export class AsyncStorage implements AsyncStorageOps {
  private readonly slots = new FileSlots(MAX_OPEN_FILES, SLOT_WAIT_MS);
  /** Read and upload handles that hold a slot, released exactly once. */
  private readonly slotHolders = new WeakSet<object>();

  private constructor(
    /** Absolute, so that a later chdir cannot move the storage. */
    readonly root: string,
    private readonly lock: AsyncNameLock,
    /** --max-root-size in bytes, or null for no quota. */
    private readonly quota: number | null,
  ) {}

  private async withSlot<T extends object>(open: () => Promise<T>): Promise<T> {
    await this.slots.acquire();
    try {
      const handle = await open();
      this.slotHolders.add(handle);
      return handle;
    } catch (error) {
      this.slots.release();
      throw error;
    }
  }

  private releaseSlot(handle: object): void {
    if (this.slotHolders.delete(handle)) this.slots.release();
  }

  /** Creates `root` if missing and deletes the temporary files a crashed server left in it. */
  static async open(root: string, options: OpenStorageOptions<AsyncNameLock> = {}): Promise<AsyncStorage> {
    const storage = AsyncStorage.attach(root, options);
    try {
      await fsp.mkdir(storage.root, { recursive: true });
    } catch (error) {
      throw toStorageError(error, 'creating the storage root', 'failure');
    }
    await storage.removeStaleTempFiles();
    return storage;
  }

  /** A storage over a root that is already open elsewhere: no clean-up, no I/O (see OpenStorageOptions). */
  static attach(root: string, options: OpenStorageOptions<AsyncNameLock> = {}): AsyncStorage {
    return new AsyncStorage(path.resolve(root), options.lock ?? new PromiseChainNameLock(), quotaOf(options.maxRootSize));
  }

  async list(): Promise<ListEntry[]> {
    return sortedForListing(await this.listedEntries());
  }

  /** LIST's entries in directory order (null: a name that is not a regular file, or vanished). */
  private async listedEntries(): Promise<(ListEntry | null)[]> {
    const names = await this.readRoot();
    return Promise.all(
      names.filter(isListableName).map(async (name) => {
        const stats = await this.lstatOrNull(path.join(this.root, name));
        return stats === null ? null : listEntry(name, stats);
      }),
    );
  }

  async probe(name: string): Promise<number | null> {
    const stats = await this.lstatOrNull(pathInRoot(this.root, name));
    return stats?.isFile() ? stats.size : null;
  }

  async stat(name: string): Promise<FileDigest> {
    await this.slots.acquire();
    try {
      return await this.digest(name);
    } finally {
      this.slots.release();
    }
  }

  private async digest(name: string): Promise<FileDigest> {
    const opened = await this.openRegularOrNull(pathInRoot(this.root, name));
    if (opened === null) throw notFound();
    try {
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      let size = 0;
      for (;;) {
        const { bytesRead } = await opened.file.read(buffer, 0, buffer.length, size);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        size += bytesRead;
      }
      return { size, sha256: hash.digest('hex') };
    } catch (error) {
      throw toStorageError(error, 'reading a file', 'failure');
    } finally {
      await closeQuietly(opened.file);
    }
  }

  async openRead(name: string): Promise<ReadHandle> {
    return this.withSlot(async () => {
      const opened = await this.openRegularOrNull(pathInRoot(this.root, name));
      if (opened === null) throw notFound();
      return new ReadState<FileHandle>(this, opened.file, opened.size);
    });
  }

  async readChunk(handle: ReadHandle, maxBytes: number): Promise<Uint8Array | null> {
    const reading = ReadState.of<FileHandle>(handle, this);
    const file = reading.openFile();
    const { position, length } = reading.nextRead(maxBytes);
    if (length === 0) return null;
    const chunk = new Uint8Array(length);
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.read(chunk, 0, length, position));
    } catch (error) {
      throw toStorageError(error, 'reading a file', 'failure');
    }
    reading.advance(bytesRead, length);
    return bytesRead === length ? chunk : chunk.subarray(0, bytesRead);
  }

  async closeRead(handle: ReadHandle): Promise<void> {
    const reading = ReadState.of<FileHandle>(handle, this);
    const file = reading.file;
    reading.file = null;
    if (file !== null) await closeQuietly(file);
    this.releaseSlot(reading);
  }

  async beginUpload(plan: UploadPlan): Promise<UploadHandle> {
    return this.withSlot(() => this.createUpload(plan));
  }

  private async createUpload(plan: UploadPlan): Promise<UploadState<FileHandle>> {
    checkPlan(plan);
    const target = pathInRoot(this.root, plan.name);
    await this.refuseIfVisiblyFull(plan, target);
    await this.refuseIfOverQuota(plan);
    const tempPath = newTempPath(this.root);
    let file: FileHandle;
    try {
      file = await fsp.open(tempPath, TEMP_CREATE_FLAGS, FILE_MODE);
    } catch (error) {
      throw toStorageError(error, 'creating a temporary file', 'failure');
    }
    return new UploadState<FileHandle>(this, plan, tempPath, file);
  }

  /**
   * Write-behind: bytes are gathered into large writes that run on libuv's
   * thread pool while the session goes back to reading the socket
   * (batched-writer.ts); past a bound in flight the call waits, which bounds
   * memory per upload and pushes back on the client through TCP.
   */
  writeUpload(handle: UploadHandle, bytes: Uint8Array): void | Promise<void> {
    let upload: UploadState<FileHandle>;
    let file: FileHandle;
    try {
      upload = UploadState.of<FileHandle>(handle, this);
      ({ file } = upload.reserveWrite(bytes));
    } catch (error) {
      return Promise.reject(error); // this flavour's failures are rejections, like every other call's
    }
    const writer = this.writerOf(upload, file);
    let wait: void | Promise<void>;
    try {
      wait = writer.write(bytes);
    } catch (error) {
      return this.failWrite(upload, error);
    }
    if (wait !== undefined) return wait;
  }

  private async failWrite(upload: UploadState<FileHandle>, error: unknown): Promise<never> {
    await this.writerOf(upload, null)?.discard();
    throw await this.discard(upload, toStorageError(error, 'writing the upload', 'failure'));
  }

  async commitUpload(handle: UploadHandle): Promise<FileDigest> {
    const upload = UploadState.of<FileHandle>(handle, this);
    await this.settleWrites(upload);
    const file = upload.startCommit();
    try {
      let uploadSha256: string;
      try {
        uploadSha256 = upload.verifiedSha256();
        await file.sync();
      } finally {
        await closeQuietly(file);
      }
      const size = await this.lock.withLock(commitLockKey(upload.name, this.quota), () => this.install(upload));
      upload.committed();
      this.releaseSlot(upload);
      return { size, sha256: uploadSha256 };
    } catch (error) {
      throw await this.discard(upload, toStorageError(error, 'committing the upload', 'failure'));
    }
  }

  async abortUpload(handle: UploadHandle): Promise<void> {
    // Never rejects, so that it is safe in any cleanup path: a foreign handle has nothing of ours to remove.
    if (!(handle instanceof UploadState) || handle.owner !== this) return;
    const upload = handle as UploadState<FileHandle>;
    // Closing the file under writes still in flight would fail them; let them land first.
    await this.uploadWriters.get(upload)?.discard();
    this.uploadWriters.delete(upload);
    if (upload.claimForAbort()) await this.removeUploadFiles(upload);
  }

  /** Under the name's lock: puts the fsync'd upload in place and returns the file's new size. */
  private async install(upload: UploadState<FileHandle>): Promise<number> {
    const target = path.join(this.root, upload.name);
    if (upload.mode === 'new' && (await this.lstatOrNull(target)) !== null) throw fileExists(upload.name);
    // Again at the commit: the root may have grown since beginUpload (the lock key makes this check and the rename one step).
    await this.refuseIfOverQuota(upload.plan);
    // Only a regular file has content to append to; a link or anything else is replaced like an absent name.
    const existing = upload.mode === 'append' ? await this.openRegularOrNull(target) : null;
    let size: number;
    if (existing === null) {
      await fsp.rename(upload.tempPath, target);
      size = upload.received;
    } else {
      try {
        size = await this.installCombined(existing, upload, target);
      } finally {
        await closeQuietly(existing.file);
      }
    }
    await this.syncRoot();
    return size;
  }

  /**
   * `append`: old content + received data in a second temporary file, renamed
   * over the target, so that a crash at any instant leaves the old file or the
   * whole new one, never a half-appended one.
   */
  private async installCombined(
    existing: OpenRegularFile,
    upload: UploadState<FileHandle>,
    target: string,
  ): Promise<number> {
    const combinedPath = newTempPath(this.root);
    let combined: FileHandle | null = await fsp.open(combinedPath, TEMP_CREATE_FLAGS, FILE_MODE);
    let renamed = false;
    try {
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      const oldBytes = await copyToEnd(existing.file, combined, buffer, 0);
      const received = await fsp.open(upload.tempPath, READ_FLAGS);
      let newBytes: number;
      try {
        newBytes = await copyToEnd(received, combined, buffer, oldBytes);
      } finally {
        await closeQuietly(received);
      }
      if (newBytes !== upload.received) throw copyMismatch(newBytes, upload.received);
      await combined.sync();
      await combined.close();
      combined = null;
      await fsp.rename(combinedPath, target);
      renamed = true;
      await removeQuietly(upload.tempPath);
      return oldBytes + newBytes;
    } finally {
      if (combined !== null) await closeQuietly(combined);
      if (!renamed) await removeQuietly(combinedPath);
    }
  }

  /** The directory fsync under way, and the one queued behind it. */
  private rootSync: { running: Promise<void> | null; queued: Promise<void> | null } = { running: null, queued: null };

  /**
   * Makes a rename durable: the new directory entry is on disk only once a
   * directory fsync that *started after the rename* has completed. Commits
   * arriving together share one (group commit): a rename made while an fsync
   * runs joins the single fsync queued behind it, so a crowd of uploads costs
   * a few directory fsyncs, not one each.
   */
  private syncRoot(): Promise<void> {
    const { running } = this.rootSync;
    if (running === null) return this.startRootSync();
    const next = () => {
      this.rootSync.queued = null;
      return this.startRootSync();
    };
    this.rootSync.queued ??= running.then(next, next);
    return this.rootSync.queued;
  }

  private startRootSync(): Promise<void> {
    const run: Promise<void> = this.fsyncRoot().finally(() => {
      if (this.rootSync.running === run) this.rootSync.running = null;
    });
    this.rootSync.running = run;
    return run;
  }

  private async fsyncRoot(): Promise<void> {
    let directory: FileHandle | null = null;
    try {
      directory = await fsp.open(this.root, 'r');
      await directory.sync();
    } catch (error) {
      if (!isDirectorySyncUnsupported(error)) throw error;
    } finally {
      if (directory !== null) await closeQuietly(directory);
    }
  }

  private readonly uploadWriters = new WeakMap<UploadState<FileHandle>, BatchedFileWriter>();

  private writerOf(upload: UploadState<FileHandle>, file: FileHandle): BatchedFileWriter;
  private writerOf(upload: UploadState<FileHandle>, file: null): BatchedFileWriter | undefined;
  private writerOf(upload: UploadState<FileHandle>, file: FileHandle | null): BatchedFileWriter | undefined {
    let writer = this.uploadWriters.get(upload);
    if (writer === undefined && file !== null) {
      writer = new BatchedFileWriter(file);
      this.uploadWriters.set(upload, writer);
    }
    return writer;
  }

  /** Waits for the upload's writes in flight; the first one that failed discards the upload. */
  private async settleWrites(upload: UploadState<FileHandle>): Promise<void> {
    const writer = this.uploadWriters.get(upload);
    if (writer === undefined) return;
    try {
      await writer.settle();
    } catch (error) {
      await writer.discard();
      throw await this.discard(upload, toStorageError(error, 'writing the upload', 'failure'));
    }
  }

  /** Removes an upload's temporary file and returns `error`, now recorded as why the upload is gone. */
  private async discard(upload: UploadState<FileHandle>, error: unknown): Promise<unknown> {
    await this.removeUploadFiles(upload);
    return upload.failed(error);
  }

  private async removeUploadFiles(upload: UploadState<FileHandle>): Promise<void> {
    const file = upload.file;
    upload.file = null;
    if (file !== null) await closeQuietly(file);
    await removeQuietly(upload.tempPath);
    this.releaseSlot(upload);
  }

  private async refuseIfVisiblyFull(plan: UploadPlan, target: string): Promise<void> {
    let space: StatsFs;
    try {
      space = await fsp.statfs(this.root);
    } catch {
      return; // Cannot tell: the writes will find out.
    }
    const current = plan.mode === 'append' ? await this.lstatOrNull(target) : null;
    const currentSize = current?.isFile() ? current.size : null;
    if (visiblyLacksSpace(space, bytesNeededForUpload(plan, currentSize))) throw noSpace();
  }

  /** --max-root-size: the files LIST shows, with this upload committed, must fit in the quota. */
  private async refuseIfOverQuota(plan: UploadPlan): Promise<void> {
    if (this.quota !== null && wouldExceedQuota(this.quota, await this.listedEntries(), plan)) throw overQuota(this.quota);
  }

  private async removeStaleTempFiles(): Promise<void> {
    const names = await this.readRoot();
    await Promise.all(names.filter(isTempName).map((name) => removeQuietly(path.join(this.root, name))));
  }

  private async readRoot(): Promise<string[]> {
    try {
      return await fsp.readdir(this.root);
    } catch (error) {
      throw toStorageError(error, 'listing the storage root', 'failure');
    }
  }

  /** lstat, which never follows a link; null when nothing is there (or it vanished since readdir). */
  private async lstatOrNull(filePath: string): Promise<Stats | null> {
    try {
      return await fsp.lstat(filePath);
    } catch (error) {
      if (isMissing(error)) return null;
      throw toStorageError(error, 'looking up a file', 'failure');
    }
  }

  /** Opens a regular file without following links; null if absent, a link, a directory or anything else. */
  private async openRegularOrNull(filePath: string): Promise<OpenRegularFile | null> {
    let file: FileHandle;
    try {
      file = await fsp.open(filePath, READ_FLAGS);
    } catch (error) {
      if (isMissing(error)) return null;
      throw toStorageError(error, 'opening a file', 'failure');
    }
    try {
      const stats = await file.stat();
      if (stats.isFile()) return { file, size: stats.size };
    } catch (error) {
      await closeQuietly(file);
      throw toStorageError(error, 'opening a file', 'failure');
    }
    await closeQuietly(file);
    return null;
  }
}

async function writeFully(file: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await file.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

/** Copies `from` (from its start) to `to` at `position`; returns the bytes copied. */
async function copyToEnd(from: FileHandle, to: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let copied = 0;
  for (;;) {
    const { bytesRead } = await from.read(buffer, 0, buffer.length, copied);
    if (bytesRead === 0) return copied;
    await writeFully(to, buffer.subarray(0, bytesRead), position + copied);
    copied += bytesRead;
  }
}

/** Cleanup after the fact: a failure here must not hide the error being reported. */
async function closeQuietly(file: FileHandle): Promise<void> {
  try {
    await file.close();
  } catch {
    // Nothing useful to do: the descriptor is gone either way.
  }
}

async function removeQuietly(filePath: string): Promise<void> {
  try {
    await fsp.unlink(filePath);
  } catch {
    // Already gone, or not removable: a leftover temporary file is removed at the next start.
  }
}
