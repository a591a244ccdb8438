/**
 * What every server needs from its storage root, in two flavours with the same
 * semantics: `SyncStorage` (blocking calls, for the sequential and workers
 * servers) and `AsyncStorage` (promises, for the async server). The session
 * program in servers/session.ts is written once against `StorageOps` and runs
 * over either flavour.
 *
 * Failures the protocol has a reply for are thrown as StorageError (see
 * protocol/errors.ts) with a stable code: NOT_FOUND, EXISTS, CHECKSUM_MISMATCH,
 * NO_SPACE, STORAGE_FAILED. Anything else is a bug and propagates.
 */
import type { CommitMode, ListEntry } from '../../protocol/index.js';

export interface FileDigest {
  readonly size: number;
  readonly sha256: string;
}

/** An open file being read for GET; its size is fixed when opened. */
export interface ReadHandle {
  readonly size: number;
}

/** An upload being received into a temporary file inside the root. */
export interface UploadHandle {
  readonly name: string;
  readonly mode: CommitMode;
  /** Bytes written so far. */
  readonly received: number;
}

export interface UploadPlan {
  readonly name: string;
  readonly size: number;
  readonly mode: CommitMode;
  /** When given, the commit fails with CHECKSUM_MISMATCH unless the data matches. */
  readonly sha256: string | null;
}

/** The operations, in their synchronous form. */
export interface StorageOps {
  /** Valid names only (temporary files and anything else are hidden), regular files only, sorted bytewise. */
  list(): ListEntry[];
  /** The current size of `name`, or null if there is no such regular file. */
  probe(name: string): number | null;
  /** Size and sha256 of `name`; NOT_FOUND if absent. */
  stat(name: string): FileDigest;
  /** Opens `name` for reading without following symbolic links; NOT_FOUND if absent. */
  openRead(name: string): ReadHandle;
  /** Up to `maxBytes` next bytes, or null at the end (the handle stays open). */
  readChunk(handle: ReadHandle, maxBytes: number): Uint8Array | null;
  closeRead(handle: ReadHandle): void;
  /** Creates the temporary file the data goes to (checks quota / space it can check up front). */
  beginUpload(plan: UploadPlan): UploadHandle;
  writeUpload(handle: UploadHandle, bytes: Uint8Array): void;
  /**
   * fsyncs the data, then under the name's lock: for `append` builds old
   * content + data in a new temporary file; for `new` fails with EXISTS if the
   * name exists now; renames over the target; fsyncs the directory. The temporary
   * file is gone afterwards whatever happens.
   *
   * Returns what the `226` reply carries: `size` is the file's new size (for
   * `append`, old size + bytes received) and `sha256` is the digest of the bytes
   * received in this upload, not of the whole file.
   *
   * A failed `writeUpload` or `commitUpload` has already discarded the upload:
   * later calls on the handle throw the same error again, `abortUpload` is a no-op.
   */
  commitUpload(handle: UploadHandle): FileDigest;
  /**
   * Discards the upload (client gone, timeout): removes the temporary file.
   * Never throws; idempotent; a no-op once the upload is committed, failed or
   * while its commit is in progress (the commit cleans up after itself).
   */
  abortUpload(handle: UploadHandle): void;
}

/** The same operations, each returning a promise. */
export type AsyncStorageOps = {
  [K in Exclude<keyof StorageOps, 'writeUpload'>]: (...args: Parameters<StorageOps[K]>) => Promise<ReturnType<StorageOps[K]>>;
} & {
  /** No promise while the write-behind has room: an upload's chunks then cost no microtask each. */
  writeUpload(...args: Parameters<StorageOps['writeUpload']>): void | Promise<void>;
};

/** A per-name mutual exclusion that serialises commits to the same name. */
export interface SyncNameLock {
  withLock<T>(name: string, fn: () => T): T;
}

export interface AsyncNameLock {
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

export interface StorageOptions {
  /** Directory holding the files; created if missing. */
  readonly root: string;
}

/**
 * What `SyncStorage.open` / `.attach` and `AsyncStorage.open` / `.attach` take
 * besides the root. `open` creates the root and deletes temporary files a
 * crashed server left; `attach` does neither, for a storage over a root that
 * another storage may be uploading into, e.g. in each worker thread after the
 * main thread opened the root once (a late-starting worker that cleaned up
 * would delete its siblings' uploads in progress).
 */
export interface OpenStorageOptions<Lock> {
  /** Serialises commits to one name; defaults to a lock that covers this thread / this event loop only. */
  readonly lock?: Lock;
  /**
   * The quota of `--max-root-size`: the most bytes the files LIST shows may
   * hold together. An upload that would take them past it fails with NO_SPACE
   * (`452`), at beginUpload when it can be seen then, else at its commit.
   * Temporary files of uploads in progress are not counted. Absent or 0: no quota.
   */
  readonly maxRootSize?: number;
}

/** Prefix of the temporary files: starts with a dot, so never a valid name, never listed or served. */
export const TEMP_PREFIX = '.socklab-tmp-';
