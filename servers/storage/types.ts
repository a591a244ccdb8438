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
  /** `--max-file-size`: the most bytes the file may hold once this upload lands (an append counts the file's bytes too); absent: no limit. */
  readonly maxFileSize?: number;
}

/** What `probe` found at a name: the size of the regular file there, or null for nothing. */
export interface ProbedName {
  readonly size: number | null;
}

/** The operations, in their synchronous form. */
export interface StorageOps {
  /** Valid names only (temporary files and anything else are hidden), regular files only, sorted bytewise. */
  list(): ListEntry[];
  /**
   * The current size of `name`, or null if nothing is there. EXISTS if the
   * name holds something that is not a regular file (decided from lstat):
   * no upload may land there.
   */
  probe(name: string): number | null;
  /** Size and sha256 of `name`; NOT_FOUND if absent. */
  stat(name: string): FileDigest;
  /** Opens `name` for reading without following symbolic links; NOT_FOUND if absent. */
  openRead(name: string): ReadHandle;
  /** Up to `maxBytes` next bytes, or null at the end (the handle stays open). */
  readChunk(handle: ReadHandle, maxBytes: number): Uint8Array | null;
  closeRead(handle: ReadHandle): void;
  /**
   * Checks what can be checked before the data (the name holds a regular file
   * or nothing, and not a file already for `new`: EXISTS; the file size limit:
   * TOO_LARGE; the quota and visible free space: NO_SPACE), then creates the
   * temporary file the data goes to, whose name reserves the upload's size
   * against the quota and the limit until it commits or is discarded.
   *
   * `probed`: what `probe` returned for the name just before, when the upload
   * follows it at once (a PUT answered without asking the client); the name is
   * then not looked up again. Whatever changed in that moment, the commit sees:
   * it looks again under the name's lock.
   */
  beginUpload(plan: UploadPlan, probed?: ProbedName): UploadHandle;
  writeUpload(handle: UploadHandle, bytes: Uint8Array): void;
  /**
   * Under the name's lock: for `new` fails with EXISTS if the name exists now
   * (or anything holds it that is not a regular file, in any mode); checks the
   * quota and the size limit again. Then `append` to an existing file writes
   * the data in place, at the cost of the new bytes only, guarded by an intent
   * record (written and fsync'd first, removed once the file is fsync'd) that
   * lets a start-up undo an append cut short by a crash; otherwise the fsync'd
   * temporary file is renamed onto the name. Either way the directory is
   * fsync'd before this returns. The temporary file is gone afterwards
   * whatever happens.
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
 * besides the root. `open` creates the root, undoes the appends a crashed
 * server left unfinished and deletes the temporary files no live server owns
 * (a server still finishing its uploads during a rolling restart keeps
 * its own, see owners.ts); `attach` does neither, for a storage over a root that
 * another storage may be uploading into, e.g. in each worker thread after the
 * main thread opened the root once (a late-starting worker that cleaned up
 * would delete its siblings' uploads in progress).
 */
/**
 * The bytes of the uploads every free-space estimate sharing it asked about
 * (common.ts FreeSpaceEstimate): the threads of a workers server
 * (SharedAdmissions). Only ever grows, so that the difference of two looks is
 * what was put there between them.
 */
export interface AdmissionLedger {
  add(bytes: number): void;
  total(): number;
}

export interface OpenStorageOptions<Lock> {
  /** Serialises commits to one name; defaults to a lock that covers this thread / this event loop only. */
  readonly lock?: Lock;
  /**
   * The quota of `--max-root-size`: the most bytes the files LIST shows may
   * hold together. An upload that would take them past it fails with NO_SPACE
   * (`452`), at beginUpload when it can be seen then, else at its commit.
   * Uploads in progress count at their announced size (their temporary files'
   * names say it, so every thread and server process on the root sees them).
   * Absent or 0: no quota.
   */
  readonly maxRootSize?: number;
  /**
   * SyncStorage only: the ledger of admitted upload bytes the threads of a
   * workers server share (SharedAdmissions), so that each thread's free-space
   * estimate counts the uploads the others began since its last reading.
   */
  readonly admissions?: AdmissionLedger;
  /** AsyncStorage only: how many files it holds open at once and how long a call waits for one (absent: the defaults in async.ts). */
  readonly fileSlots?: FileSlotLimits;
}

export interface FileSlotLimits {
  readonly count: number;
  /** Past this wait for a free slot, the call fails with BUSY (`450`). */
  readonly waitMs: number;
}

/** Prefix of the temporary files: starts with a dot, so never a valid name, never listed or served. */
export const TEMP_PREFIX = '.socklab-tmp-';
/** Prefix of the intent records of appends in progress (see commitUpload); temporary files too. */
export const INTENT_PREFIX = `${TEMP_PREFIX}append-`;
