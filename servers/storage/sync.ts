/**
 * The storage root with blocking calls, for the sequential and workers
 * servers. Same semantics as AsyncStorage (async.ts); the shared decisions live
 * in common.ts, so this file is only the order of the file-system calls.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { InvalidStateError } from '../../protocol/errors.js';
import type { ListEntry } from '../../protocol/index.js';
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
  FileDigest,
  OpenStorageOptions,
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
  ) {}

  /** Creates `root` if missing and deletes the temporary files a crashed server left in it. */
  static open(root: string, options: OpenStorageOptions<SyncNameLock> = {}): SyncStorage {
    const storage = SyncStorage.attach(root, options);
    try {
      fs.mkdirSync(storage.root, { recursive: true });
    } catch (error) {
      throw toStorageError(error, 'creating the storage root', 'failure');
    }
    storage.removeStaleTempFiles();
    return storage;
  }

  /** A storage over a root that is already open elsewhere: no clean-up, no I/O (see OpenStorageOptions). */
  static attach(root: string, options: OpenStorageOptions<SyncNameLock> = {}): SyncStorage {
    return new SyncStorage(path.resolve(root), options.lock ?? new InThreadNameLock(), quotaOf(options.maxRootSize));
  }

  list(): ListEntry[] {
    return sortedForListing(this.listedEntries());
  }

  /** LIST's entries in directory order (null: a name that is not a regular file, or vanished). */
  private listedEntries(): (ListEntry | null)[] {
    return this.readRoot()
      .filter(isListableName)
      .map((name) => {
        const stats = this.lstatOrNull(path.join(this.root, name));
        return stats === null ? null : listEntry(name, stats);
      });
  }

  probe(name: string): number | null {
    const stats = this.lstatOrNull(pathInRoot(this.root, name));
    return stats?.isFile() ? stats.size : null;
  }

  stat(name: string): FileDigest {
    const file = this.openRegularOrNull(pathInRoot(this.root, name));
    if (file === null) throw notFound();
    try {
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      let size = 0;
      for (;;) {
        const bytesRead = fs.readSync(file.fd, buffer, 0, buffer.length, size);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        size += bytesRead;
      }
      return { size, sha256: hash.digest('hex') };
    } catch (error) {
      throw toStorageError(error, 'reading a file', 'failure');
    } finally {
      closeQuietly(file.fd);
    }
  }

  openRead(name: string): ReadHandle {
    const file = this.openRegularOrNull(pathInRoot(this.root, name));
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

  beginUpload(plan: UploadPlan): UploadHandle {
    checkPlan(plan);
    const target = pathInRoot(this.root, plan.name);
    this.refuseIfVisiblyFull(plan, target);
    this.refuseIfOverQuota(plan);
    const tempPath = newTempPath(this.root);
    let fd: number;
    try {
      fd = fs.openSync(tempPath, TEMP_CREATE_FLAGS, FILE_MODE);
    } catch (error) {
      throw toStorageError(error, 'creating a temporary file', 'failure');
    }
    return new UploadState<number>(this, plan, tempPath, fd);
  }

  writeUpload(handle: UploadHandle, bytes: Uint8Array): void {
    const upload = UploadState.of<number>(handle, this);
    const { file: fd, position } = upload.reserveWrite(bytes);
    try {
      writeFully(fd, bytes, position);
    } catch (error) {
      throw this.discard(upload, toStorageError(error, 'writing the upload', 'failure'));
    }
  }

  commitUpload(handle: UploadHandle): FileDigest {
    const upload = UploadState.of<number>(handle, this);
    const fd = upload.startCommit();
    try {
      let uploadSha256: string;
      try {
        uploadSha256 = upload.verifiedSha256();
        fs.fsyncSync(fd);
      } finally {
        closeQuietly(fd);
      }
      const size = this.lock.withLock(commitLockKey(upload.name, this.quota), () => this.install(upload));
      upload.committed();
      return { size, sha256: uploadSha256 };
    } catch (error) {
      throw this.discard(upload, toStorageError(error, 'committing the upload', 'failure'));
    }
  }

  abortUpload(handle: UploadHandle): void {
    // Never throws, so that it is safe in any cleanup path: a foreign handle has nothing of ours to remove.
    if (!(handle instanceof UploadState) || handle.owner !== this) return;
    const upload = handle as UploadState<number>;
    if (upload.claimForAbort()) this.removeUploadFiles(upload);
  }

  /** Under the name's lock: puts the fsync'd upload in place and returns the file's new size. */
  private install(upload: UploadState<number>): number {
    const target = path.join(this.root, upload.name);
    if (upload.mode === 'new' && this.lstatOrNull(target) !== null) throw fileExists(upload.name);
    // Again at the commit: the root may have grown since beginUpload (the lock key makes this check and the rename one step).
    this.refuseIfOverQuota(upload.plan);
    // Only a regular file has content to append to; a link or anything else is replaced like an absent name.
    const existing = upload.mode === 'append' ? this.openRegularOrNull(target) : null;
    let size: number;
    if (existing === null) {
      fs.renameSync(upload.tempPath, target);
      size = upload.received;
    } else {
      try {
        size = this.installCombined(existing, upload, target);
      } finally {
        closeQuietly(existing.fd);
      }
    }
    this.syncRoot();
    return size;
  }

  /**
   * `append`: old content + received data in a second temporary file, renamed
   * over the target, so that a crash at any instant leaves the old file or the
   * whole new one, never a half-appended one.
   */
  private installCombined(existing: OpenRegularFile, upload: UploadState<number>, target: string): number {
    const combinedPath = newTempPath(this.root);
    let combined: number | null = fs.openSync(combinedPath, TEMP_CREATE_FLAGS, FILE_MODE);
    let renamed = false;
    try {
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      const oldBytes = copyToEnd(existing.fd, combined, buffer, 0);
      const received = fs.openSync(upload.tempPath, READ_FLAGS);
      let newBytes: number;
      try {
        newBytes = copyToEnd(received, combined, buffer, oldBytes);
      } finally {
        closeQuietly(received);
      }
      if (newBytes !== upload.received) throw copyMismatch(newBytes, upload.received);
      fs.fsyncSync(combined);
      fs.closeSync(combined);
      combined = null;
      fs.renameSync(combinedPath, target);
      renamed = true;
      removeQuietly(upload.tempPath);
      return oldBytes + newBytes;
    } finally {
      if (combined !== null) closeQuietly(combined);
      if (!renamed) removeQuietly(combinedPath);
    }
  }

  /** Makes the rename durable: the new directory entry is on disk only once the directory is fsync'd. */
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
    const fd = upload.file;
    upload.file = null;
    if (fd !== null) closeQuietly(fd);
    removeQuietly(upload.tempPath);
  }

  private refuseIfVisiblyFull(plan: UploadPlan, target: string): void {
    let space: fs.StatsFs;
    try {
      space = fs.statfsSync(this.root);
    } catch {
      return; // Cannot tell: the writes will find out.
    }
    const current = plan.mode === 'append' ? this.lstatOrNull(target) : null;
    const currentSize = current?.isFile() ? current.size : null;
    if (visiblyLacksSpace(space, bytesNeededForUpload(plan, currentSize))) throw noSpace();
  }

  /** --max-root-size: the files LIST shows, with this upload committed, must fit in the quota. */
  private refuseIfOverQuota(plan: UploadPlan): void {
    if (this.quota !== null && wouldExceedQuota(this.quota, this.listedEntries(), plan)) throw overQuota(this.quota);
  }

  private removeStaleTempFiles(): void {
    for (const name of this.readRoot()) {
      if (isTempName(name)) removeQuietly(path.join(this.root, name));
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

  /** Opens a regular file without following links; null if absent, a link, a directory or anything else. */
  private openRegularOrNull(filePath: string): OpenRegularFile | null {
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
