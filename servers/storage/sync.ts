/**
 * The storage root with blocking calls, for the sequential and workers
 * servers. Same semantics as AsyncStorage (async.ts); the shared decisions live
 * in common.ts, so this file is only the order of the file-system calls.
 */
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { createHash } from 'node:crypto';
import { InvalidStateError } from '../../protocol/errors.js';
import type { ListEntry } from '../../protocol/index.js';
import { BackgroundFlusher } from './background-flush.js';
import { BACKGROUND_FLUSH_BYTES } from './batched-writer.js';
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
import { blockingDigest } from './upload-digest.js';
import type {
  AdmissionLedger,
  FileDigest,
  OpenStorageOptions,
  ProbedName,
  ReadHandle,
  StorageOps,
  SyncNameLock,
  UploadHandle,
  UploadPlan,
} from './types.js';

/**
 * The default lock: blocking code in one thread never interleaves, so there is
 * never anyone to wait for. It still refuses a nested take of the same name,
 * which SharedNameLock would deadlock on, so such a bug shows up here first.
 */
export class InThreadNameLock implements SyncNameLock {
  private readonly held = new Set<string>();

  withLock<T>(name: string, fn: () => T): T {
    if (this.held.has(name)) throw new InvalidStateError(`the lock on ${name} is already held by this thread`);
    this.held.add(name);
    try {
      return fn();
    } finally {
      this.held.delete(name);
    }
  }
}

interface OpenRegularFile {
  readonly fd: number;
  readonly size: number;
}

export class SyncStorage implements StorageOps {
  private constructor(
    /** Absolute, so that a later chdir cannot move the storage. */
    readonly root: string,
    private readonly lock: SyncNameLock,
    /** --max-root-size in bytes, or null for no quota. */
    private readonly quota: number | null,
    admissions: AdmissionLedger | null,
  ) {
    this.freeSpace = new FreeSpaceEstimate(admissions);
  }

  /** Creates `root` if missing, undoes the appends a crashed server left unfinished and deletes the temporary files no live server owns. */
  static open(root: string, options: OpenStorageOptions<SyncNameLock> = {}): SyncStorage {
    const storage = SyncStorage.attach(root, options);
    try {
      fs.mkdirSync(storage.root, { recursive: true });
    } catch (error) {
      throw toStorageError(error, 'creating the storage root', 'failure');
    }
    storage.recoverFromCrashes();
    return storage;
  }

  /** A storage over a root that is already open elsewhere: no clean-up, no I/O (see OpenStorageOptions). */
  static attach(root: string, options: OpenStorageOptions<SyncNameLock> = {}): SyncStorage {
    return new SyncStorage(path.resolve(root), options.lock ?? new InThreadNameLock(), quotaOf(options.maxRootSize), options.admissions ?? null);
  }

  list(): ListEntry[] {
    return sortedForListing(this.listedEntries());
  }

  /** LIST's entries in directory order (null: a name that is not a regular file, or vanished). */
  private listedEntries(entries: readonly string[] = this.readRoot()): (ListEntry | null)[] {
    return entries
      .filter(isListableName)
      .map((name) => {
        const stats = this.lstatOrNull(entryPath(this.root, name));
        return stats === null ? null : listEntry(name, stats);
      });
  }

  probe(name: string): number | null {
    return regularSizeOrNull(name, this.lstatOrNull(pathInRoot(this.root, name)));
  }

  stat(name: string): FileDigest {
    const reading = this.openRead(name);
    try {
      const hash = createHash('sha256');
      for (let chunk = this.readChunk(reading, CHUNK_BYTES); chunk !== null; chunk = this.readChunk(reading, CHUNK_BYTES)) hash.update(chunk);
      return { size: reading.size, sha256: hash.digest('hex') };
    } finally {
      this.closeRead(reading);
    }
  }

  /** Opens under the name's lock, so that the size is a committed one, never an append's half. */
  openRead(name: string): ReadHandle {
    const filePath = pathInRoot(this.root, name);
    const file = this.lock.withLock(commitLockKey(name, this.quota), () => this.openRegularOrNull(filePath));
    if (file === null) throw notFound();
    return new ReadState<number>(this, file.fd, file.size);
  }

  readChunk(handle: ReadHandle, maxBytes: number): Uint8Array | null {
    const reading = ReadState.of<number>(handle, this);
    const fd = reading.openFile();
    const { position, length } = reading.nextRead(maxBytes);
    if (length === 0) return null;
    const chunk = new Uint8Array(length);
    let bytesRead: number;
    try {
      bytesRead = fs.readSync(fd, chunk, 0, length, position);
    } catch (error) {
      throw toStorageError(error, 'reading a file', 'failure');
    }
    reading.advance(bytesRead, length);
    return bytesRead === length ? chunk : chunk.subarray(0, bytesRead);
  }

  closeRead(handle: ReadHandle): void {
    const reading = ReadState.of<number>(handle, this);
    const fd = reading.file;
    reading.file = null;
    if (fd !== null) closeQuietly(fd);
  }

  beginUpload(plan: UploadPlan, probed?: ProbedName): UploadHandle {
    checkPlan(plan);
    const target = pathInRoot(this.root, plan.name);
    // Checking the limits and creating the temporary file that reserves room is one step for the others.
    return this.lock.withLock(commitLockKey(plan.name, this.quota), () => {
      const currentSize = probed === undefined ? regularSizeOrNull(plan.name, this.lstatOrNull(target)) : probed.size;
      if (plan.mode === 'new' && currentSize !== null) throw fileExists(plan.name);
      const tempPath = entryPath(this.root, tempFileName(SELF_OWNER, plan));
      let fd: number;
      try {
        fd = fs.openSync(tempPath, TEMP_CREATE_FLAGS, FILE_MODE);
      } catch (error) {
        throw toStorageError(error, 'creating a temporary file', 'failure');
      }
      // The temporary file is the reservation every server on the root sees: made first, then the limits are
      // checked against everyone's, so of two servers reserving at once, at least one sees the other.
      try {
        // The limits first, right after the reservation is made: the free-space check may read the folder, and two
        // servers reserving at once should not spend that long both holding theirs, or each refuses for the other.
        this.refuseIfPastLimits(plan, currentSize, tempPath);
        this.refuseIfVisiblyFull(plan, currentSize, tempPath);
      } catch (error) {
        closeQuietly(fd);
        removeQuietly(tempPath);
        throw error;
      }
      return new UploadState<number>(this, plan, tempPath, fd, blockingDigest(plan.size));
    });
  }

  writeUpload(handle: UploadHandle, bytes: Uint8Array): void {
    const upload = UploadState.of<number>(handle, this);
    const { file: fd, position } = upload.reserveWrite(bytes);
    try {
      writeFully(fd, bytes, position);
    } catch (error) {
      throw this.discard(upload, toStorageError(error, 'writing the upload', 'failure'));
    }
    if (upload.mode !== 'append') this.flushInBackground(upload, bytes.length);
  }

  /**
   * Every BACKGROUND_FLUSH_BYTES written, the pages so far start for the disk
   * on the flusher thread (background-flush.ts), through a descriptor of the
   * upload's own. Not for an append: its data is written again in place, and
   * only that copy is made durable.
   */
  private flushInBackground(upload: UploadState<number>, written: number): void {
    // Checked before the map: every write of every upload comes here, and most never need a flush.
    if (upload.plan.size <= BACKGROUND_FLUSH_BYTES) return;
    let flushing = this.flushing.get(upload);
    if (flushing === undefined) {
      // Started now, the thread is up by the first flush.
      BackgroundFlusher.forThisThread();
      flushing = { fd: null, unflushed: 0 };
      this.flushing.set(upload, flushing);
    }
    flushing.unflushed += written;
    if (flushing.unflushed < BACKGROUND_FLUSH_BYTES) return;
    flushing.unflushed = 0;
    try {
      flushing.fd ??= fs.openSync(upload.tempPath, READ_FLAGS);
    } catch {
      return; // A head start only (out of descriptors, say): the commit's fsync does it all.
    }
    BackgroundFlusher.forThisThread().flush(flushing.fd);
  }

  /**
   * At the commit, after its fsync: the upload's flushing descriptor goes,
   * once a flush under way on it is done; if any flush of it failed, so does
   * the commit.
   */
  private finishFlushing(upload: UploadState<number>): void {
    const fd = this.takeFlushingFd(upload);
    if (fd === null) return;
    const { errno, handedOver } = BackgroundFlusher.forThisThread().finish(fd);
    if (!handedOver) closeQuietly(fd);
    if (errno !== 0) throw Object.assign(new Error(`${util.getSystemErrorName(errno)}: flushing the upload to disk`), { errno, code: util.getSystemErrorName(errno), syscall: 'fdatasync' });
  }

  /** Any other end of an upload: its flushing descriptor goes now, or, if a flush of it is under way, when that is done. */
  private stopFlushing(upload: UploadState<number>): void {
    const fd = this.takeFlushingFd(upload);
    if (fd !== null && !BackgroundFlusher.forThisThread().handOver(fd)) closeQuietly(fd);
  }

  /** The upload's flushing descriptor, if it opened one, now the caller's to close or hand over. */
  private takeFlushingFd(upload: UploadState<number>): number | null {
    const fd = this.flushing.get(upload)?.fd ?? null;
    this.flushing.delete(upload);
    return fd;
  }

  commitUpload(handle: UploadHandle): FileDigest {
    const upload = UploadState.of<number>(handle, this);
    const fd = upload.startCommit();
    try {
      let size: number;
      let uploadSha256: string;
      try {
        uploadSha256 = upload.verifiedSha256(upload.finishDigest());
        // An append's data is fsync'd where it lands (see install); the rest is renamed as it is.
        if (upload.mode !== 'append') {
          fs.fsyncSync(fd);
          this.finishFlushing(upload);
        }
        size = this.lock.withLock(commitLockKey(upload.name, this.quota), () => this.install(upload, fd));
      } finally {
        this.stopFlushing(upload);
        closeQuietly(fd);
      }
      upload.committed();
      return { size, sha256: uploadSha256 };
    } catch (error) {
      throw this.discard(upload, toStorageError(error, 'committing the upload', 'failure', 'failure'));
    }
  }

  abortUpload(handle: UploadHandle): void {
    // Never throws, so that it is safe in any cleanup path: a foreign handle has nothing of ours to remove.
    if (!(handle instanceof UploadState) || handle.owner !== this) return;
    const upload = handle as UploadState<number>;
    if (upload.claimForAbort()) this.removeUploadFiles(upload);
  }

  /** Under the name's lock: puts the upload in place, durably, and returns the file's new size. */
  private install(upload: UploadState<number>, fd: number): number {
    const target = entryPath(this.root, upload.name);
    const currentSize = regularSizeOrNull(upload.name, this.lstatOrNull(target));
    if (upload.mode === 'new' && currentSize !== null) throw fileExists(upload.name);
    // Again at the commit: the root may have changed behind the server's back since beginUpload.
    this.refuseIfPastLimits(upload.plan, currentSize, upload.tempPath);
    if (upload.mode === 'append' && currentSize !== null) return this.appendInPlace(upload, target);
    if (upload.mode === 'overwrite') {
      fs.renameSync(upload.tempPath, target);
    } else if (!this.linkIntoPlace(upload, fd, target)) {
      // Another server process created the name since the lstat (this server's own uploads wait for the name's lock).
      if (upload.mode === 'new') throw fileExists(upload.name);
      return this.appendInPlace(upload, target);
    }
    this.syncRoot();
    return upload.received;
  }

  /**
   * 'new', or an append to an absent name: the received file is linked into
   * place, since link, unlike rename, fails rather than replace a file that
   * another server process created at the name meanwhile. False if one did.
   */
  private linkIntoPlace(upload: UploadState<number>, fd: number, target: string): boolean {
    // An append's data is fsync'd where it lands; here that is the received file itself.
    if (upload.mode === 'append') fs.fsyncSync(fd);
    try {
      fs.linkSync(upload.tempPath, target);
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) return false;
      if (!hasErrnoCode(error, ...NO_HARD_LINKS)) throw error;
      fs.renameSync(upload.tempPath, target);
      return true;
    }
    removeQuietly(upload.tempPath);
    return true;
  }

  /**
   * `append` to an existing file: the received bytes go at its end, so the cost
   * is theirs, not the file's. Atomic across a crash thanks to the intent
   * record, durable before the record goes: a start-up that finds the record
   * truncates the file back to its old size.
   */
  private appendInPlace(upload: UploadState<number>, target: string): number {
    let file: number;
    try {
      file = fs.openSync(target, APPEND_FLAGS);
    } catch (error) {
      if (isMissingOrNotRegular(error)) throw notRegular(upload.name); // replaced by a link, a socket or a directory since the lstat
      throw error;
    }
    try {
      const { intent, recorded, oldSize } = this.takeIntentAtEnd(file, upload.name);
      try {
        const received = fs.openSync(upload.tempPath, READ_FLAGS);
        let newBytes: number;
        try {
          newBytes = copyToEnd(received, file, Buffer.allocUnsafe(CHUNK_BYTES), oldSize);
        } finally {
          closeQuietly(received);
        }
        if (newBytes !== upload.received) throw copyMismatch(newBytes, upload.received);
        fs.fsyncSync(file);
      } catch (error) {
        // Undo now; if even that fails, the intent record stays and the next start-up undoes it.
        fs.ftruncateSync(file, oldSize);
        fs.fsyncSync(file);
        this.dropIntent(intent);
        throw error;
      }
      this.acknowledgeAppend(intent, recorded, file, oldSize, oldSize + upload.received);
      removeQuietly(upload.tempPath);
      return oldSize + upload.received;
    } finally {
      closeQuietly(file);
    }
  }

  /**
   * Takes the name's intent record, then records in it the size `file` has.
   * The record is also the lock on appends to the name across server
   * processes, so the size is read only once the record is ours: read before,
   * it could predate another server's append that ended meanwhile, and an
   * undo after a crash would cut that acknowledged append off.
   */
  private takeIntentAtEnd(file: number, name: string): { readonly intent: string; readonly recorded: AppendIntent; readonly oldSize: number } {
    const stats = fs.fstatSync(file, { bigint: true });
    if (!stats.isFile()) throw notRegular(name);
    const taken: AppendIntent = { owner: SELF_OWNER, name, file: fileIdentity(stats), size: null };
    const intent = this.takeIntent(taken);
    try {
      const oldSize = Number(fs.fstatSync(file, { bigint: true }).size);
      const recorded = { ...taken, size: oldSize };
      this.recordIntent(intent, recorded);
      return { intent, recorded, oldSize };
    } catch (error) {
      this.dropIntent(intent);
      throw error;
    }
  }

  /**
   * Takes the name's intent record, which is the lock on appends to the name
   * across server processes: written whole to a temporary file, then linked
   * into place (link fails if another holds it, and a record is never seen
   * half-written; see placeRecord where there are no links). A record with no
   * size needs no fsync: a crash before its size is recorded loses only the
   * lock, and a start-up removes what is left.
   */
  private takeIntent(intent: AppendIntent): string {
    const intentPath = entryPath(this.root, intentFileName(intent.name));
    const staging = this.stageIntent(intent, false);
    try {
      const deadline = performance.now() + INTENT_WAIT_MS;
      for (;;) {
        if (this.placeRecord(staging, intentPath, intent)) break;
        if (!this.recoverIntentIfOrphaned(path.basename(intentPath))) {
          if (performance.now() > deadline) throw appendBusy(intent.name);
          sleepBlocking(INTENT_POLL_MS);
        }
      }
    } finally {
      removeQuietly(staging);
    }
    return intentPath;
  }

  /**
   * Puts the record at `intentPath` unless one is there (false): linked whole
   * from `staging`, or where there are no hard links, created there (O_EXCL)
   * and written (see RECORD_WRITE_MS).
   */
  private placeRecord(staging: string, intentPath: string, intent: AppendIntent): boolean {
    try {
      fs.linkSync(staging, intentPath);
      return true;
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) return false;
      if (!hasErrnoCode(error, ...NO_HARD_LINKS)) throw error;
    }
    try {
      this.writeRecord(intentPath, intent, false);
      return true;
    } catch (error) {
      if (hasErrnoCode(error, 'EEXIST')) return false;
      throw error;
    }
  }

  /** Replaces the held record by `intent`, durably (fsync'd, renamed over it, the directory fsync'd) before the first byte is appended. */
  private recordIntent(intentPath: string, intent: AppendIntent): void {
    const staging = this.stageIntent(intent, true);
    try {
      fs.renameSync(staging, intentPath);
    } catch (error) {
      removeQuietly(staging);
      throw error;
    }
    this.syncRoot();
  }

  /** `intent`, written whole into a new temporary file beside the records (and fsync'd if `durable`). */
  private stageIntent(intent: AppendIntent, durable: boolean): string {
    const staging = entryPath(this.root, tempFileName(SELF_OWNER, { name: intent.name, mode: 'append', size: 0 }));
    this.writeRecord(staging, intent, durable);
    return staging;
  }

  /** Creates `filePath` (EEXIST if something is there) holding `intent`, fsync'd if `durable`; removed again if the write fails. */
  private writeRecord(filePath: string, intent: AppendIntent, durable: boolean): void {
    const fd = fs.openSync(filePath, TEMP_CREATE_FLAGS, FILE_MODE);
    try {
      writeFully(fd, Buffer.from(encodeIntent(intent)), 0);
      if (durable) fs.fsyncSync(fd);
    } catch (error) {
      closeQuietly(fd);
      removeQuietly(filePath);
      throw error;
    }
    closeQuietly(fd);
  }

  /**
   * Removes the append's record, which acknowledges the append once the root
   * is fsync'd. If that fails, a crash could bring the record back and a
   * start-up would cut the append off: the append is not durable, and the
   * 451 that follows must leave the file as it was. So it is undone under the
   * record: still ours if its removal failed, else taken back, with no size
   * (a record left behind then never makes a start-up cut the file). Only a
   * file still `newSize` long is cut: another server may have taken the name
   * and appended in between, and that append is not ours to undo. If another
   * server holds the record now, the file is theirs to change.
   */
  private acknowledgeAppend(intentPath: string, recorded: AppendIntent, file: number, oldSize: number, newSize: number): void {
    let removed = false;
    try {
      fs.unlinkSync(intentPath);
      removed = true;
      this.syncRoot();
    } catch (error) {
      try {
        if (!removed || this.retakeIntent(intentPath, { ...recorded, size: null })) {
          if (fs.fstatSync(file).size === newSize) {
            fs.ftruncateSync(file, oldSize);
            fs.fsyncSync(file);
          }
          this.dropIntent(intentPath);
        }
      } catch {
        // The disk fails the undo too: a record still in place stays, and the next start-up deals with it.
      }
      throw error;
    }
  }

  /** One try at putting `intent` at `intentPath`: false if another server's record is there. */
  private retakeIntent(intentPath: string, intent: AppendIntent): boolean {
    const staging = this.stageIntent(intent, false);
    try {
      return this.placeRecord(staging, intentPath, intent);
    } finally {
      removeQuietly(staging);
    }
  }

  private dropIntent(intentPath: string): void {
    fs.unlinkSync(intentPath);
    this.syncRoot();
  }

  /**
   * An intent record whose server is gone: undoes its append (the file back to
   * its old size, if it is still that file) and removes the record. Returns
   * false, leaving it, while its server lives; true when it is gone.
   */
  private recoverIntentIfOrphaned(intentName: string): boolean {
    const intentPath = entryPath(this.root, intentName);
    let intent: AppendIntent | null;
    let changedAtMs = 0;
    try {
      const fd = fs.openSync(intentPath, READ_FLAGS);
      try {
        intent = decodeIntent(fs.readFileSync(fd, 'utf8'));
        if (intent === null) changedAtMs = fs.fstatSync(fd).mtimeMs;
      } finally {
        closeQuietly(fd);
      }
    } catch (error) {
      if (isMissing(error)) return true;
      throw error;
    }
    // A record that does not decode may be one another server is writing where there are no hard links.
    if (intent === null ? !isAbandonedRecord(changedAtMs, Date.now()) : isOwnerAlive(intent.owner)) return false;
    if (intent !== null) this.undoAppend(intent);
    removeQuietly(intentPath);
    this.syncRoot();
    return true;
  }

  private undoAppend(intent: AppendIntent): void {
    const oldSize = intent.size;
    if (oldSize === null) return; // taken, its size never recorded: nothing was appended
    let fd: number;
    try {
      fd = fs.openSync(entryPath(this.root, intent.name), APPEND_FLAGS);
    } catch (error) {
      if (isMissingOrNotRegular(error)) return; // gone, or something else holds the name now (a directory too): nothing of the append is left
      throw error;
    }
    try {
      const stats = fs.fstatSync(fd, { bigint: true });
      if (stats.isFile() && fileIdentity(stats) === intent.file && stats.size > BigInt(oldSize)) {
        fs.ftruncateSync(fd, oldSize);
        fs.fsyncSync(fd);
      }
    } finally {
      closeQuietly(fd);
    }
  }

  /** Makes a rename or link durable: the new directory entry is on disk only once the directory is fsync'd. */
  private syncRoot(): void {
    let fd: number | null = null;
    try {
      fd = fs.openSync(this.root, 'r');
      fs.fsyncSync(fd);
    } catch (error) {
      if (!isDirectorySyncUnsupported(error)) throw error;
    } finally {
      if (fd !== null) closeQuietly(fd);
    }
  }

  /** Removes an upload's temporary file and returns `error`, now recorded as why the upload is gone. */
  private discard(upload: UploadState<number>, error: unknown): unknown {
    this.removeUploadFiles(upload);
    return upload.failed(error);
  }

  private removeUploadFiles(upload: UploadState<number>): void {
    this.stopFlushing(upload);
    const fd = upload.file;
    upload.file = null;
    if (fd !== null) closeQuietly(fd);
    removeQuietly(upload.tempPath);
  }

  /**
   * One per thread; in a workers server the threads share a ledger of the
   * bytes they admit, so each estimate counts the others' admissions since its
   * reading. (Reading afresh for every upload instead made a crowd of 1000
   * uploads 50% slower on `workers`: a readdir of the whole root each time.)
   */
  private readonly freeSpace: FreeSpaceEstimate;
  /** Uploads flushed in the background: a descriptor of their own (once opened), and bytes written since the last flush. */
  private readonly flushing = new Map<UploadState<number>, { fd: number | null; unflushed: number }>();

  /** After the upload's temporary file is made: then of two uploads checking at once, at least one sees the other. */
  private refuseIfVisiblyFull(plan: UploadPlan, currentSize: number | null, tempPath: string): void {
    const needed = bytesNeededForUpload(plan, currentSize);
    const own = path.basename(tempPath);
    if (this.freeSpace.admit(own, needed, performance.now())) return;
    // A fresh reading with the promises as upper bounds (a readdir alone); if that is too tight, what each wrote too.
    for (const precise of [false, true]) {
      const start = this.freeSpace.startReading(performance.now());
      try {
        this.freeSpace.record(this.readSpace(precise), start);
      } catch {
        return; // Cannot tell: the writes will find out.
      }
      if (this.freeSpace.admit(own, needed, start.at, true)) return;
    }
    throw noSpace();
  }

  /** The statfs last: then every byte counted as written, and every upload gone since the readdir, is in its figure (see SpaceReading). */
  private readSpace(precise: boolean): SpaceReading {
    const pending = pendingUploads(this.readRoot());
    const written = precise ? pending.map((upload) => this.lstatOrNull(entryPath(this.root, upload.fileName))?.size ?? null) : null;
    return { stats: fs.statfsSync(this.root), promised: promisesOf(pending, written) };
  }

  /**
   * --max-file-size for appends and --max-root-size, counting the uploads in
   * progress (but the one at `ownTempPath`, a commit's own): the files LIST shows,
   * with this upload committed, must fit in the quota.
   */
  private refuseIfPastLimits(plan: UploadPlan, currentSize: number | null, ownTempPath: string | null): void {
    const needsPending = this.quota !== null || (plan.mode === 'append' && plan.maxFileSize !== undefined);
    if (!needsPending) return;
    const entries = this.readRoot();
    const pending: PendingUpload[] = pendingUploads(entries, ownTempPath);
    refuseIfFileWouldPassLimit(plan, currentSize, pending);
    if (this.quota !== null && wouldExceedQuota(this.quota, this.listedEntries(entries), pending, plan)) throw overQuota(this.quota);
  }

  /** At open: undoes the appends of servers that are gone, then removes every temporary file no live server owns. */
  private recoverFromCrashes(): void {
    const entries = this.readRoot().filter(isTempName);
    for (const name of entries.filter(isIntentName)) this.recoverIntentIfOrphaned(name);
    for (const name of entries) {
      if (isIntentName(name)) continue;
      const upload = parseTempName(name);
      if (upload === null || !isOwnerAlive(upload.owner)) removeQuietly(entryPath(this.root, name));
    }
  }

  private readRoot(): string[] {
    try {
      return fs.readdirSync(this.root);
    } catch (error) {
      throw toStorageError(error, 'listing the storage root', 'failure');
    }
  }

  /** lstat, which never follows a link; null when nothing is there (or it vanished since readdir). */
  private lstatOrNull(filePath: string): fs.Stats | null {
    try {
      return fs.lstatSync(filePath);
    } catch (error) {
      if (isMissing(error)) return null;
      throw toStorageError(error, 'looking up a file', 'failure');
    }
  }

  /** Opens a regular file without following links; null if absent, a link, a directory or anything else (decided by lstat before opening). */
  private openRegularOrNull(filePath: string): OpenRegularFile | null {
    if (!this.lstatOrNull(filePath)?.isFile()) return null;
    let fd: number;
    try {
      fd = fs.openSync(filePath, READ_FLAGS);
    } catch (error) {
      if (isMissing(error)) return null;
      throw toStorageError(error, 'opening a file', 'failure');
    }
    try {
      const stats = fs.fstatSync(fd);
      if (stats.isFile()) return { fd, size: stats.size };
    } catch (error) {
      closeQuietly(fd);
      throw toStorageError(error, 'opening a file', 'failure');
    }
    closeQuietly(fd);
    return null;
  }
}

/** The blocking flavour's pause: this thread has nothing else to do meanwhile. */
function sleepBlocking(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)), 0, 0, ms);
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.length) {
    written += fs.writeSync(fd, bytes, written, bytes.length - written, position + written);
  }
}

/** Copies `from` (from its start) to `to` at `position`; returns the bytes copied. */
function copyToEnd(from: number, to: number, buffer: Buffer, position: number): number {
  let copied = 0;
  for (;;) {
    const bytesRead = fs.readSync(from, buffer, 0, buffer.length, copied);
    if (bytesRead === 0) return copied;
    writeFully(to, buffer.subarray(0, bytesRead), position + copied);
    copied += bytesRead;
  }
}

/** Cleanup after the fact: a failure here must not hide the error being reported. */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Nothing useful to do: the descriptor is gone either way.
  }
}

function removeQuietly(filePath: string): void {
  try {
    fs.unlinkSync(filePath);
  } catch {
    // Already gone, or not removable: a leftover temporary file is removed at the next start.
  }
}
