/**
 * The storage root with promises, for the async server: node:fs's callback
 * calls as promises on raw descriptors (fs-calls.ts, which says why not
 * fs/promises' FileHandle), never a ...Sync call, so no call ever blocks the
 * event loop. Same semantics as SyncStorage
 * (sync.ts); the shared decisions live in common.ts, so this file is only the
 * order of the file-system calls.
 */
import fsp from 'node:fs/promises';
import fs, { type Stats } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { BatchedFileWriter } from './batched-writer.js';
import { closeFile, linkPath, openFile, readAt, readText, renamePath, statFile, syncFile, truncateFile, unlinkPath, writeAt } from './fs-calls.js';
import { afterPendingIO } from '../../transport/drain.js';
import { ErrorCodes, StorageError, type ListEntry } from '../../protocol/index.js';
import {
  APPEND_FLAGS,
  CHUNK_BYTES,
  FILE_MODE,
  INTENT_POLL_MS,
  INTENT_WAIT_MS,
  NO_HARD_LINKS,
  READ_FLAGS,
  TEMP_CREATE_FLAGS,
  ReadState,
  UploadState,
  appendBusy,
  bytesNeededForUpload,
  checkPlan,
  commitLockKey,
  copyMismatch,
  decodeIntent,
  encodeIntent,
  entryPath,
  fileExists,
  fileIdentity,
  FreeSpaceEstimate,
  hasErrnoCode,
  intentFileName,
  isAbandonedRecord,
  isDirectorySyncUnsupported,
  isIntentName,
  isListableName,
  isMissing,
  isMissingOrNotRegular,
  isTempName,
  listEntry,
  noSpace,
  notFound,
  notRegular,
  overQuota,
  parseTempName,
  pathInRoot,
  pendingUploads,
  promisesOf,
  quotaOf,
  refuseIfFileWouldPassLimit,
  regularSizeOrNull,
  sortedForListing,
  tempFileName,
  toStorageError,
  wouldExceedQuota,
  type AppendIntent,
  type PendingUpload,
  type SpaceReading,
} from './common.js';
import { isOwnerAlive, SELF_OWNER } from './owners.js';
import { eventLoopDigest, type EventLoopDigest } from './upload-digest.js';
import type {
  AsyncNameLock,
  AsyncStorageOps,
  FileDigest,
  FileSlotLimits,
  OpenStorageOptions,
  ProbedName,
  ReadHandle,
  UploadHandle,
  UploadPlan,
} from './types.js';

/** An upload as this flavour holds it: an open descriptor and a digest that may make it wait. */
type AsyncUpload = UploadState<number, EventLoopDigest>;

/**
 * The default lock: one queue per name, so commits to a name run one after
 * the other, in call order. A name's entry is dropped when its queue drains,
 * so the map holds only names with a commit in progress. Taking a free name
 * costs no promise of its own: every upload of a crowd takes two names' locks.
 */
export class NameQueueLock implements AsyncNameLock {
  /** For each name held: the callers waiting for it, first come first served. */
  private readonly waiting = new Map<string, (() => void)[]>();

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const queue = this.waiting.get(name);
    if (queue === undefined) {
      this.waiting.set(name, []);
      return this.holding(name, fn);
    }
    return new Promise<void>((resolve) => queue.push(resolve)).then(() => this.holding(name, fn));
  }

  private holding<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let running: Promise<T>;
    try {
      running = fn();
    } catch (error) {
      this.release(name);
      return Promise.reject(error);
    }
    // Released whichever way fn ends, so one failure never blocks the rest.
    return running.finally(() => this.release(name));
  }

  private release(name: string): void {
    const queue = this.waiting.get(name);
    const next = queue?.shift();
    if (next !== undefined) next();
    else this.waiting.delete(name);
  }
}

interface OpenRegularFile {
  readonly file: number;
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
const DEFAULT_FILE_SLOTS: FileSlotLimits = { count: MAX_OPEN_FILES, waitMs: SLOT_WAIT_MS };

class FileSlots {
  private free: number;
  private readonly waiting = new Set<() => void>();

  private readonly count: number;
  private readonly waitMs: number;

  constructor({ count, waitMs }: FileSlotLimits) {
    this.count = count;
    this.waitMs = waitMs;
    this.free = count;
  }

  /** Nothing when a slot was free (taken at once), else a promise of one. */
  acquire(): void | Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    return new Promise<void>((resolve, reject) => {
      const granted = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        // Due timers run before the poll: a slot that a finished close frees in this very turn shows only after it.
        afterPendingIO(() => {
          if (!this.waiting.delete(granted)) return; // a slot came in time
          reject(new StorageError(ErrorCodes.BUSY, `all ${this.count} file slots stayed in use for ${this.waitMs / 1000} s`));
        });
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
  private readonly slots: FileSlots;
  /** Read and upload handles that hold a slot, released exactly once. */
  private readonly slotHolders = new WeakSet<object>();

  private constructor(
    /** Absolute, so that a later chdir cannot move the storage. */
    readonly root: string,
    private readonly lock: AsyncNameLock,
    /** --max-root-size in bytes, or null for no quota. */
    private readonly quota: number | null,
    slotLimits: FileSlotLimits,
  ) {
    this.slots = new FileSlots(slotLimits);
  }

  private async withSlot<T extends object>(open: () => Promise<T>): Promise<T> {
    const waitForSlot = this.slots.acquire();
    if (waitForSlot !== undefined) await waitForSlot;
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

  /** Creates `root` if missing, undoes the appends a crashed server left unfinished and deletes the temporary files no live server owns. */
  static async open(root: string, options: OpenStorageOptions<AsyncNameLock> = {}): Promise<AsyncStorage> {
    const storage = AsyncStorage.attach(root, options);
    try {
      await fsp.mkdir(storage.root, { recursive: true });
    } catch (error) {
      throw toStorageError(error, 'creating the storage root', 'failure');
    }
    await storage.recoverFromCrashes();
    return storage;
  }

  /** A storage over a root that is already open elsewhere: no clean-up, no I/O (see OpenStorageOptions). */
  static attach(root: string, options: OpenStorageOptions<AsyncNameLock> = {}): AsyncStorage {
    return new AsyncStorage(path.resolve(root), options.lock ?? new NameQueueLock(), quotaOf(options.maxRootSize), options.fileSlots ?? DEFAULT_FILE_SLOTS);
  }

  async list(): Promise<ListEntry[]> {
    return sortedForListing(await this.listedEntries());
  }

  /** LIST's entries in directory order (null: a name that is not a regular file, or vanished). */
  private async listedEntries(entries?: readonly string[]): Promise<(ListEntry | null)[]> {
    const names = entries ?? (await this.readRoot());
    return Promise.all(
      names.filter(isListableName).map(async (name) => {
        const stats = await this.lstatOrNull(entryPath(this.root, name));
        return stats === null ? null : listEntry(name, stats);
      }),
    );
  }

  probe(name: string): Promise<number | null> {
    let filePath: string;
    try {
      filePath = pathInRoot(this.root, name);
    } catch (error) {
      return Promise.reject(error); // this flavour's failures are rejections, like every other call's
    }
    return this.lstatThen(filePath, (stats) => regularSizeOrNull(name, stats));
  }

  async stat(name: string): Promise<FileDigest> {
    const reading = await this.openRead(name);
    try {
      const hash = createHash('sha256');
      for (let chunk = await this.readChunk(reading, CHUNK_BYTES); chunk !== null; chunk = await this.readChunk(reading, CHUNK_BYTES)) hash.update(chunk);
      return { size: reading.size, sha256: hash.digest('hex') };
    } finally {
      await this.closeRead(reading);
    }
  }

  /** Opens under the name's lock, so that the size is a committed one, never an append's half. */
  async openRead(name: string): Promise<ReadHandle> {
    const filePath = pathInRoot(this.root, name);
    return this.withSlot(async () => {
      const opened = await this.lock.withLock(commitLockKey(name, this.quota), () => this.openRegularOrNull(filePath));
      if (opened === null) throw notFound();
      return new ReadState<number>(this, opened.file, opened.size);
    });
  }

  async readChunk(handle: ReadHandle, maxBytes: number): Promise<Uint8Array | null> {
    const reading = ReadState.of<number>(handle, this);
    const file = reading.openFile();
    const { position, length } = reading.nextRead(maxBytes);
    if (length === 0) return null;
    const chunk = new Uint8Array(length);
    let bytesRead: number;
    try {
      bytesRead = await readAt(file, chunk, 0, length, position);
    } catch (error) {
      throw toStorageError(error, 'reading a file', 'failure');
    }
    reading.advance(bytesRead, length);
    return bytesRead === length ? chunk : chunk.subarray(0, bytesRead);
  }

  async closeRead(handle: ReadHandle): Promise<void> {
    const reading = ReadState.of<number>(handle, this);
    const file = reading.file;
    reading.file = null;
    if (file !== null) await closeQuietly(file);
    this.releaseSlot(reading);
  }

  beginUpload(plan: UploadPlan, probed?: ProbedName): Promise<UploadHandle> {
    return this.withSlot(() => this.createUpload(plan, probed));
  }

  private async createUpload(plan: UploadPlan, probed: ProbedName | undefined): Promise<AsyncUpload> {
    checkPlan(plan);
    const target = pathInRoot(this.root, plan.name);
    // Checking the limits and creating the temporary file that reserves room is one step for the others.
    return this.lock.withLock(commitLockKey(plan.name, this.quota), async () => {
      const currentSize = probed === undefined ? regularSizeOrNull(plan.name, await this.lstatOrNull(target)) : probed.size;
      if (plan.mode === 'new' && currentSize !== null) throw fileExists(plan.name);
      const tempPath = entryPath(this.root, tempFileName(SELF_OWNER, plan));
      let file: number;
      try {
        file = await openFile(tempPath, TEMP_CREATE_FLAGS, FILE_MODE);
      } catch (error) {
        throw toStorageError(error, 'creating a temporary file', 'failure');
      }
      // The reservation first, then the limits against everyone's, then the free space (see SyncStorage.beginUpload).
      try {
        const limitsChecked = this.refuseIfPastLimits(plan, currentSize, tempPath);
        if (limitsChecked !== undefined) await limitsChecked;
        const roomChecked = this.refuseIfVisiblyFull(plan, currentSize, tempPath);
        if (roomChecked !== undefined) await roomChecked;
      } catch (error) {
        await closeQuietly(file);
        await removeQuietly(tempPath);
        throw error;
      }
      return new UploadState<number, EventLoopDigest>(this, plan, tempPath, file, eventLoopDigest(plan.size));
    });
  }

  /**
   * Write-behind: bytes are gathered into large writes that run on libuv's
   * thread pool while the session goes back to reading the socket
   * (batched-writer.ts); past a bound in flight the call waits, which bounds
   * memory per upload and pushes back on the client through TCP.
   */
  writeUpload(handle: UploadHandle, bytes: Uint8Array): void | Promise<void> {
    let upload: AsyncUpload;
    let file: number;
    let digesting: void | Promise<void>;
    try {
      upload = UploadState.of<number, EventLoopDigest>(handle, this);
      ({ file, digesting } = upload.reserveWrite(bytes));
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
    if (digesting === undefined) return wait;
    if (wait === undefined) return digesting;
    return Promise.all([wait, digesting]).then(() => {});
  }

  private async failWrite(upload: AsyncUpload, error: unknown): Promise<never> {
    await this.uploadWriters.get(upload)?.discard();
    throw await this.discard(upload, toStorageError(error, 'writing the upload', 'failure'));
  }

  async commitUpload(handle: UploadHandle): Promise<FileDigest> {
    const upload = UploadState.of<number, EventLoopDigest>(handle, this);
    // The upload's writes in flight land first; the first one that failed discards the upload.
    const writer = this.uploadWriters.get(upload);
    if (writer !== undefined) {
      try {
        await writer.settle();
      } catch (error) {
        return this.failWrite(upload, error);
      }
    }
    const file = upload.startCommit();
    try {
      let size: number;
      let uploadSha256: string;
      let closing: Promise<void> | null = null;
      try {
        // An append's data is fsync'd where it lands (see install); the rest is renamed as it is.
        const digest = upload.finishDigest();
        if (typeof digest === 'string') {
          uploadSha256 = upload.verifiedSha256(digest);
          if (upload.mode !== 'append') await syncFile(file);
        } else {
          // The flush to disk and the end of the hashing on its thread (a large upload) overlap.
          const [finished] = await Promise.all([digest, upload.mode !== 'append' ? syncFile(file) : undefined]);
          uploadSha256 = upload.verifiedSha256(finished);
        }
        // Its data is on disk and a rename needs no descriptor: closing it overlaps the install.
        if (upload.mode !== 'append') closing = closeQuietly(file);
        size = await this.lock.withLock(commitLockKey(upload.name, this.quota), () => this.install(upload, file));
      } finally {
        await (closing ?? closeQuietly(file));
      }
      upload.committed();
      this.releaseSlot(upload);
      return { size, sha256: uploadSha256 };
    } catch (error) {
      throw await this.discard(upload, toStorageError(error, 'committing the upload', 'failure', 'failure'));
    }
  }

  async abortUpload(handle: UploadHandle): Promise<void> {
    // Never rejects, so that it is safe in any cleanup path: a foreign handle has nothing of ours to remove.
    if (!(handle instanceof UploadState) || handle.owner !== this) return;
    const upload = handle as AsyncUpload;
    // Closing the file under writes still in flight would fail them; let them land first.
    await this.uploadWriters.get(upload)?.discard();
    this.uploadWriters.delete(upload);
    if (upload.claimForAbort()) await this.removeUploadFiles(upload);
  }

  /** Under the name's lock: puts the upload in place, durably, and returns the file's new size. */
  private async install(upload: AsyncUpload, file: number): Promise<number> {
    const target = entryPath(this.root, upload.name);
    const currentSize = await this.lstatThen(target, (stats) => regularSizeOrNull(upload.name, stats));
    if (upload.mode === 'new' && currentSize !== null) throw fileExists(upload.name);
    // Again at the commit: the root may have changed behind the server's back since beginUpload.
    const limitsChecked = this.refuseIfPastLimits(upload.plan, currentSize, upload.tempPath);
    if (limitsChecked !== undefined) await limitsChecked;
    if (upload.mode === 'append' && currentSize !== null) return this.appendInPlace(upload, target);
    if (upload.mode === 'overwrite') {
      await renamePath(upload.tempPath, target);
    } else if (!(await this.linkIntoPlace(upload, file, target))) {
      // Another server process created the name since the lstat (this server's own uploads wait for the name's lock).
      if (upload.mode === 'new') throw fileExists(upload.name);
      return this.appendInPlace(upload, target);
    }
    await this.syncRoot();
    return upload.received;
  }

  /** 'new', or an append to an absent name: linked, never renamed, into place (see SyncStorage.linkIntoPlace, in sync.ts). */
  private async linkIntoPlace(upload: AsyncUpload, file: number, target: string): Promise<boolean> {
    if (upload.mode === 'append') await syncFile(file);
    try {
      await linkPath(upload.tempPath, target);
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) return false;
      if (!hasErrnoCode(error, ...NO_HARD_LINKS)) throw error;
      await renamePath(upload.tempPath, target);
      return true;
    }
    await removeQuietly(upload.tempPath);
    return true;
  }

  /**
   * `append` to an existing file: the received bytes go at its end, so the cost
   * is theirs, not the file's. Atomic across a crash thanks to the intent
   * record, durable before the record goes: a start-up that finds the record
   * truncates the file back to its old size.
   */
  private async appendInPlace(upload: AsyncUpload, target: string): Promise<number> {
    let file: number;
    try {
      file = await openFile(target, APPEND_FLAGS);
    } catch (error) {
      if (isMissingOrNotRegular(error)) throw notRegular(upload.name); // replaced by a link, a socket or a directory since the lstat
      throw error;
    }
    try {
      const { intent, recorded, oldSize } = await this.takeIntentAtEnd(file, upload.name);
      try {
        const received = await openFile(upload.tempPath, READ_FLAGS);
        let newBytes: number;
        try {
          newBytes = await copyToEnd(received, file, Buffer.allocUnsafe(CHUNK_BYTES), oldSize);
        } finally {
          await closeQuietly(received);
        }
        if (newBytes !== upload.received) throw copyMismatch(newBytes, upload.received);
        await syncFile(file);
      } catch (error) {
        // Undo now; if even that fails, the intent record stays and the next start-up undoes it.
        await truncateFile(file, oldSize);
        await syncFile(file);
        await this.dropIntent(intent);
        throw error;
      }
      await this.acknowledgeAppend(intent, recorded, file, oldSize, oldSize + upload.received);
      await removeQuietly(upload.tempPath);
      return oldSize + upload.received;
    } finally {
      await closeQuietly(file);
    }
  }

  /**
   * Takes the name's intent record, then records in it the size `file` has,
   * read only once the record is ours (see SyncStorage.takeIntentAtEnd, in sync.ts).
   */
  private async takeIntentAtEnd(file: number, name: string): Promise<{ readonly intent: string; readonly recorded: AppendIntent; readonly oldSize: number }> {
    const stats = await statFile(file, { bigint: true });
    if (!stats.isFile()) throw notRegular(name);
    const taken: AppendIntent = { owner: SELF_OWNER, name, file: fileIdentity(stats), size: null };
    const intent = await this.takeIntent(taken);
    try {
      const oldSize = Number((await statFile(file, { bigint: true })).size);
      const recorded = { ...taken, size: oldSize };
      await this.recordIntent(intent, recorded);
      return { intent, recorded, oldSize };
    } catch (error) {
      await this.dropIntent(intent);
      throw error;
    }
  }

  /** Takes the name's intent record, the lock on appends to the name across server processes (see SyncStorage.takeIntent). */
  private async takeIntent(intent: AppendIntent): Promise<string> {
    const intentPath = entryPath(this.root, intentFileName(intent.name));
    const staging = await this.stageIntent(intent, false);
    try {
      const deadline = performance.now() + INTENT_WAIT_MS;
      for (;;) {
        if (await this.placeRecord(staging, intentPath, intent)) break;
        if (!(await this.recoverIntentIfOrphaned(path.basename(intentPath)))) {
          if (performance.now() > deadline) throw appendBusy(intent.name);
          await new Promise((resolve) => setTimeout(resolve, INTENT_POLL_MS));
        }
      }
    } finally {
      await removeQuietly(staging);
    }
    return intentPath;
  }

  /** Puts the record at `intentPath` unless one is there (false); see SyncStorage.placeRecord. */
  private async placeRecord(staging: string, intentPath: string, intent: AppendIntent): Promise<boolean> {
    try {
      await linkPath(staging, intentPath);
      return true;
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) return false;
      if (!hasErrnoCode(error, ...NO_HARD_LINKS)) throw error;
    }
    try {
      await this.writeRecord(intentPath, intent, false);
      return true;
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) return false;
      throw error;
    }
  }

  /** Replaces the held record by `intent`, durably, before the first byte is appended (see SyncStorage.recordIntent). */
  private async recordIntent(intentPath: string, intent: AppendIntent): Promise<void> {
    const staging = await this.stageIntent(intent, true);
    try {
      await renamePath(staging, intentPath);
    } catch (error) {
      await removeQuietly(staging);
      throw error;
    }
    await this.syncRoot();
  }

  /** `intent`, written whole into a new temporary file beside the records (and fsync'd if `durable`). */
  private async stageIntent(intent: AppendIntent, durable: boolean): Promise<string> {
    const staging = entryPath(this.root, tempFileName(SELF_OWNER, { name: intent.name, mode: 'append', size: 0 }));
    await this.writeRecord(staging, intent, durable);
    return staging;
  }

  /** Creates `filePath` (EEXIST if something is there) holding `intent`, fsync'd if `durable`; removed again if the write fails. */
  private async writeRecord(filePath: string, intent: AppendIntent, durable: boolean): Promise<void> {
    const file = await openFile(filePath, TEMP_CREATE_FLAGS, FILE_MODE);
    try {
      await writeFully(file, Buffer.from(encodeIntent(intent)), 0);
      if (durable) await syncFile(file);
    } catch (error) {
      await closeQuietly(file);
      await removeQuietly(filePath);
      throw error;
    }
    await closeQuietly(file);
  }

  /** Removes the append's record, which acknowledges it; undoes the append if that is not durable (see SyncStorage.acknowledgeAppend). */
  private async acknowledgeAppend(intentPath: string, recorded: AppendIntent, file: number, oldSize: number, newSize: number): Promise<void> {
    let removed = false;
    try {
      await unlinkPath(intentPath);
      removed = true;
      await this.syncRoot();
    } catch (error) {
      try {
        if (!removed || (await this.retakeIntent(intentPath, { ...recorded, size: null }))) {
          if ((await statFile(file)).size === newSize) {
            await truncateFile(file, oldSize);
            await syncFile(file);
          }
          await this.dropIntent(intentPath);
        }
      } catch {
        // The disk fails the undo too: a record still in place stays, and the next start-up deals with it.
      }
      throw error;
    }
  }

  /** One try at putting `intent` at `intentPath`: false if another server's record is there. */
  private async retakeIntent(intentPath: string, intent: AppendIntent): Promise<boolean> {
    const staging = await this.stageIntent(intent, false);
    try {
      return await this.placeRecord(staging, intentPath, intent);
    } finally {
      await removeQuietly(staging);
    }
  }

  private async dropIntent(intentPath: string): Promise<void> {
    await unlinkPath(intentPath);
    await this.syncRoot();
  }

  /**
   * An intent record whose server is gone: undoes its append (the file back to
   * its old size, if it is still that file) and removes the record. Returns
   * false, leaving it, while its server lives; true when it is gone.
   */
  private async recoverIntentIfOrphaned(intentName: string): Promise<boolean> {
    const intentPath = entryPath(this.root, intentName);
    let intent: AppendIntent | null;
    let changedAtMs = 0;
    try {
      const file = await openFile(intentPath, READ_FLAGS);
      try {
        intent = decodeIntent(await readText(file));
        if (intent === null) changedAtMs = (await statFile(file)).mtimeMs;
      } finally {
        await closeQuietly(file);
      }
    } catch (error) {
      if (isMissing(error)) return true;
      throw error;
    }
    // A record that does not decode may be one another server is writing where there are no hard links.
    if (intent === null ? !isAbandonedRecord(changedAtMs, Date.now()) : isOwnerAlive(intent.owner)) return false;
    if (intent !== null) await this.undoAppend(intent);
    await removeQuietly(intentPath);
    await this.syncRoot();
    return true;
  }

  private async undoAppend(intent: AppendIntent): Promise<void> {
    const oldSize = intent.size;
    if (oldSize === null) return; // taken, its size never recorded: nothing was appended
    let file: number;
    try {
      file = await openFile(entryPath(this.root, intent.name), APPEND_FLAGS);
    } catch (error) {
      if (isMissingOrNotRegular(error)) return; // gone, or something else holds the name now (a directory too): nothing of the append is left
      throw error;
    }
    try {
      const stats = await statFile(file, { bigint: true });
      if (stats.isFile() && fileIdentity(stats) === intent.file && stats.size > BigInt(oldSize)) {
        await truncateFile(file, oldSize);
        await syncFile(file);
      }
    } finally {
      await closeQuietly(file);
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
    let directory: number | null = null;
    try {
      directory = await openFile(this.root, 'r');
      await syncFile(directory);
    } catch (error) {
      if (!isDirectorySyncUnsupported(error)) throw error;
    } finally {
      if (directory !== null) await closeQuietly(directory);
    }
  }

  private readonly uploadWriters = new WeakMap<AsyncUpload, BatchedFileWriter>();

  private writerOf(upload: AsyncUpload, file: number): BatchedFileWriter {
    let writer = this.uploadWriters.get(upload);
    if (writer === undefined) {
      writer = new BatchedFileWriter(file);
      this.uploadWriters.set(upload, writer);
    }
    return writer;
  }

  /** Removes an upload's temporary file and returns `error`, now recorded as why the upload is gone. */
  private async discard(upload: AsyncUpload, error: unknown): Promise<unknown> {
    await this.removeUploadFiles(upload);
    return upload.failed(error);
  }

  private async removeUploadFiles(upload: AsyncUpload): Promise<void> {
    const file = upload.file;
    upload.file = null;
    if (file !== null) await closeQuietly(file);
    await removeQuietly(upload.tempPath);
    this.releaseSlot(upload);
  }

  private readonly freeSpace = new FreeSpaceEstimate();
  /** The reading with upper bounds under way, shared by the uploads that begin meanwhile (it can only admit, never refuse). */
  private roughReading: Promise<boolean> | null = null;

  /**
   * Nothing when the estimate admits the upload at once, else a promise that
   * checks a fresh reading. After the upload's temporary file is made: then of
   * two uploads checking at once, at least one sees the other.
   */
  private refuseIfVisiblyFull(plan: UploadPlan, currentSize: number | null, tempPath: string): void | Promise<void> {
    const needed = bytesNeededForUpload(plan, currentSize);
    const own = path.basename(tempPath);
    if (this.freeSpace.admit(own, needed, performance.now())) return;
    return this.refuseIfFull(own, needed);
  }

  /**
   * A fresh reading with the promises as upper bounds (a readdir alone), shared
   * with the uploads that begin meanwhile; if that is too tight, a precise one
   * of this upload's own, started after its temporary file was made, so that a
   * refusal never rests on upper bounds or on a look from before.
   */
  private async refuseIfFull(own: string, needed: number): Promise<void> {
    this.roughReading ??= this.readSpace(false).finally(() => {
      this.roughReading = null;
    });
    if (!(await this.roughReading)) return; // Cannot tell: the writes will find out.
    if (this.freeSpace.admit(own, needed, performance.now())) return;
    const start = this.freeSpace.startReading(performance.now());
    if (!(await this.readSpace(true, start))) return;
    if (!this.freeSpace.admit(own, needed, start.at, true)) throw noSpace();
  }

  /** A fresh reading into the estimate; false if the file system cannot tell. */
  private async readSpace(precise: boolean, start = this.freeSpace.startReading(performance.now())): Promise<boolean> {
    try {
      this.freeSpace.record(await this.takeSpaceReading(precise), start);
      return true;
    } catch {
      return false;
    }
  }

  /** The statfs last: then every byte counted as written, and every upload gone since the readdir, is in its figure (see SpaceReading). */
  private async takeSpaceReading(precise: boolean): Promise<SpaceReading> {
    const pending = pendingUploads(await this.readRoot());
    const written = precise ? await Promise.all(pending.map(async (upload) => (await this.lstatOrNull(entryPath(this.root, upload.fileName)))?.size ?? null)) : null;
    return { stats: await fsp.statfs(this.root), promised: promisesOf(pending, written) };
  }

  /**
   * --max-file-size for appends and --max-root-size, counting the uploads in
   * progress (but the one at `ownTempPath`, a commit's own): the files LIST shows,
   * with this upload committed, must fit in the quota.
   */
  private refuseIfPastLimits(plan: UploadPlan, currentSize: number | null, ownTempPath: string | null): void | Promise<void> {
    const needsPending = this.quota !== null || (plan.mode === 'append' && plan.maxFileSize !== undefined);
    if (!needsPending) return;
    return this.refuseIfPendingPastLimits(plan, currentSize, ownTempPath);
  }

  private async refuseIfPendingPastLimits(plan: UploadPlan, currentSize: number | null, ownTempPath: string | null): Promise<void> {
    const entries = await this.readRoot();
    const pending: PendingUpload[] = pendingUploads(entries, ownTempPath);
    refuseIfFileWouldPassLimit(plan, currentSize, pending);
    if (this.quota !== null && wouldExceedQuota(this.quota, await this.listedEntries(entries), pending, plan)) throw overQuota(this.quota);
  }

  /** At open: undoes the appends of servers that are gone, then removes every temporary file no live server owns. */
  private async recoverFromCrashes(): Promise<void> {
    const entries = (await this.readRoot()).filter(isTempName);
    for (const name of entries.filter(isIntentName)) await this.recoverIntentIfOrphaned(name);
    const stale = entries.filter((name) => {
      if (isIntentName(name)) return false;
      const upload = parseTempName(name);
      return upload === null || !isOwnerAlive(upload.owner);
    });
    await Promise.all(stale.map((name) => removeQuietly(entryPath(this.root, name))));
  }

  private async readRoot(): Promise<string[]> {
    try {
      return await fsp.readdir(this.root);
    } catch (error) {
      throw toStorageError(error, 'listing the storage root', 'failure');
    }
  }

  /** lstat, which never follows a link; null when nothing is there (or it vanished since readdir). */
  private lstatOrNull(filePath: string): Promise<Stats | null> {
    return this.lstatThen(filePath, (stats) => stats);
  }

  /** lstatOrNull's result through `use`, in the lstat's own callback: no further promise or tick per lookup. */
  private lstatThen<T>(filePath: string, use: (stats: Stats | null) => T): Promise<T> {
    // The callback form: fs/promises captures a stack for the Error of a missing name and throws it through
    // the async frames, several times the cost of the lstat itself, and every new upload meets a missing name twice.
    return new Promise((resolve, reject) => {
      fs.lstat(filePath, (error, stats) => {
        try {
          if (error === null) resolve(use(stats));
          else if (isMissing(error)) resolve(use(null));
          else reject(toStorageError(error, 'looking up a file', 'failure'));
        } catch (thrown) {
          reject(thrown);
        }
      });
    });
  }

  /** Opens a regular file without following links; null if absent, a link, a directory or anything else (decided by lstat before opening). */
  private async openRegularOrNull(filePath: string): Promise<OpenRegularFile | null> {
    if (!(await this.lstatOrNull(filePath))?.isFile()) return null;
    let file: number;
    try {
      file = await openFile(filePath, READ_FLAGS);
    } catch (error) {
      if (isMissing(error)) return null;
      throw toStorageError(error, 'opening a file', 'failure');
    }
    try {
      const stats = await statFile(file);
      if (stats.isFile()) return { file, size: stats.size };
    } catch (error) {
      await closeQuietly(file);
      throw toStorageError(error, 'opening a file', 'failure');
    }
    await closeQuietly(file);
    return null;
  }
}

async function writeFully(file: number, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const bytesWritten = await writeAt(file, bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

/** Copies `from` (from its start) to `to` at `position`; returns the bytes copied. */
async function copyToEnd(from: number, to: number, buffer: Buffer, position: number): Promise<number> {
  let copied = 0;
  for (;;) {
    const bytesRead = await readAt(from, buffer, 0, buffer.length, copied);
    if (bytesRead === 0) return copied;
    await writeFully(to, buffer.subarray(0, bytesRead), position + copied);
    copied += bytesRead;
  }
}

/** Cleanup after the fact: a failure here must not hide the error being reported. */
function closeQuietly(file: number): Promise<void> {
  // Nothing useful to do on failure: the descriptor is gone either way.
  return closeFile(file).then(undefined, ignore);
}

function removeQuietly(filePath: string): Promise<void> {
  // On failure the file was already gone, or is not removable: a leftover temporary file is removed at the next start.
  return unlinkPath(filePath).then(undefined, ignore);
}

function ignore(): void {}
