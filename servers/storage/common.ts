/**
 * What SyncStorage and AsyncStorage share: naming, error mapping, ordering,
 * and the state of read and upload handles. Everything here is pure (no I/O),
 * so the two flavours differ only in how they call the file system.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, InvalidStateError, SocklabError, StorageError } from '../../protocol/errors.js';
import { isValidName } from '../../protocol/names.js';
import type { CommitMode, ListEntry } from '../../protocol/index.js';
import { INTENT_PREFIX, TEMP_PREFIX, type AdmissionLedger, type ReadHandle, type UploadHandle, type UploadPlan } from './types.js';
import type { BlockingDigest, EventLoopDigest } from './upload-digest.js';

/** Unit of every streamed read and copy: large enough to be cheap, small enough to never hold a file in memory. */
export const CHUNK_BYTES = 64 * 1024;

/**
 * Opening an existing file to read it. O_NOFOLLOW: a symbolic link in the root
 * must never lead outside it. O_NONBLOCK: a FIFO with a valid name must not
 * hang the open (it is then rejected by the fstat check); for regular files it
 * changes nothing.
 */
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Opening an existing file to append to it in place: O_NOFOLLOW and O_NONBLOCK
 * for the same reasons as READ_FLAGS (a FIFO without a reader fails with
 * ENXIO instead of hanging); the caller has checked it is a regular file.
 */
export const APPEND_FLAGS = constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Creating a temporary file: O_EXCL also refuses to follow a symbolic link planted at the name. */
export const TEMP_CREATE_FLAGS = 'wx';
export const FILE_MODE = 0o644;

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** A short, stable key for a name, fit for a file name: the first 64 bits of its sha256. */
export function nameKey(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 16);
}

const MODE_LETTERS: Readonly<Record<CommitMode, string>> = { new: 'n', overwrite: 'o', append: 'a' };
const LETTER_MODES: Readonly<Record<string, CommitMode>> = { n: 'new', o: 'overwrite', a: 'append' };

/**
 * What an upload's temporary file name says about it, so that every thread and
 * every server process over the same root can see it with a readdir alone:
 * who owns it (see owners.ts), the bytes it reserves against the quota and the
 * size limit, and which name it is for and how it will land.
 */
export interface PendingUpload {
  readonly fileName: string;
  readonly owner: string;
  readonly mode: CommitMode;
  readonly reserved: number;
  readonly key: string;
}

const TEMP_NAME = /^\.socklab-tmp-(\d+\.\d+)-[0-9a-f]{16}-([noa])(\d{1,16})-([0-9a-f]{16})$/;

/**
 * Random bits drawn 512 names at a time, as Node batches randomUUID: each
 * randomBytes call costs a crypto job and a getpid (OpenSSL's fork check,
 * one per upload in strace), whatever its size.
 */
const RANDOM_IDS_PER_DRAW = 512;
let randomIds = Buffer.alloc(0);
let randomIdsUsed = 0;
function randomTempId(): string {
  if (randomIdsUsed >= randomIds.length) {
    randomIds = randomBytes(8 * RANDOM_IDS_PER_DRAW);
    randomIdsUsed = 0;
  }
  randomIdsUsed += 8;
  return randomIds.toString('hex', randomIdsUsed - 8, randomIdsUsed);
}

/** `<TEMP_PREFIX><owner>-<64 random bits>-<mode letter><reserved bytes>-<name key>`; the random bits make a collision (EEXIST from 'wx') a non-event. */
export function tempFileName(owner: string, plan: Pick<UploadPlan, 'name' | 'mode' | 'size'>): string {
  return `${TEMP_PREFIX}${owner}-${randomTempId()}-${MODE_LETTERS[plan.mode]}${plan.size}-${nameKey(plan.name)}`;
}

/** The upload a temporary file name describes, or null for anything else (an intent record, a file of unknown origin). */
export function parseTempName(fileName: string): PendingUpload | null {
  const match = TEMP_NAME.exec(fileName);
  if (match === null) return null;
  const [, owner, letter, reserved, key] = match;
  const mode = LETTER_MODES[letter ?? ''];
  if (owner === undefined || mode === undefined || reserved === undefined || key === undefined) return null;
  return { fileName, owner, mode, reserved: Number(reserved), key };
}

/** The uploads in progress (of every owner) among the root's entries, but the one at `exceptPath` (a commit's own temporary file). */
export function pendingUploads(entries: Iterable<string>, exceptPath: string | null = null): PendingUpload[] {
  const except = exceptPath === null ? null : path.basename(exceptPath);
  const pending: PendingUpload[] = [];
  for (const entry of entries) {
    if (entry === except) continue;
    const upload = parseTempName(entry);
    if (upload !== null) pending.push(upload);
  }
  return pending;
}

// ---------------------------------------------------------------------------
// Append intents

/**
 * The intent record of an append in place: one per name (its key), so that
 * creating it (by link(2), which fails if it exists) is also the lock on
 * appends to that name across server processes. It holds what a start-up
 * needs to undo an append its server did not finish: which file (device and
 * inode, so a file replaced since is left alone) and its size before.
 */
export interface AppendIntent {
  readonly owner: string;
  readonly name: string;
  /** `<dev>:<ino>` of the file being appended to. */
  readonly file: string;
  /**
   * The file's size before the append, or null while the record is only
   * taken (nothing appended yet, so nothing to undo): the size is recorded
   * once the record is held, since until then another server may append.
   */
  readonly size: number | null;
}

export function intentFileName(name: string): string {
  return INTENT_PREFIX + nameKey(name);
}

export function isIntentName(fileName: string): boolean {
  return fileName.startsWith(INTENT_PREFIX);
}

export function encodeIntent(intent: AppendIntent): string {
  return `${JSON.stringify({ socklabAppendIntent: 1, ...intent })}\n`;
}

/** The record, or null for anything that is not a whole one (it is then nobody's: a record appears whole, by link, or not at all). */
export function decodeIntent(text: string): AppendIntent | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { socklabAppendIntent, owner, name, file, size } = value as Record<string, unknown>;
  if (socklabAppendIntent !== 1 || typeof owner !== 'string' || typeof name !== 'string' || typeof file !== 'string') return null;
  if (size !== null && (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)) return null;
  if (!isValidName(name)) return null;
  return { owner, name, file, size };
}

/** `<dev>:<ino>` from a bigint fstat: inode numbers may pass 2^53. */
export function fileIdentity(stats: { readonly dev: bigint; readonly ino: bigint }): string {
  return `${stats.dev}:${stats.ino}`;
}

/** How long an append waits for another server process's append to the same name. */
export const INTENT_WAIT_MS = 30_000;
export const INTENT_POLL_MS = 20;

/**
 * Where there are no hard links (FAT, exFAT, some shared folders), a record is
 * created at its place (O_EXCL) and written there, so another server may read
 * it before it is whole. For this long after its last change, a record that
 * does not decode may be one being written, and is left to its writer.
 */
export const RECORD_WRITE_MS = 5_000;

/** A record that does not decode, last changed at `changedAtMs`: nobody's once it is older than RECORD_WRITE_MS. */
export function isAbandonedRecord(changedAtMs: number, nowMs: number): boolean {
  return nowMs - changedAtMs > RECORD_WRITE_MS;
}

export function appendBusy(name: string): StorageError {
  return new StorageError(ErrorCodes.STORAGE_FAILED, `another server has been appending to ${name} for ${INTENT_WAIT_MS / 1000} s`);
}

/**
 * The path of `name` in `root`. The protocol layer validates names already;
 * checking again here keeps the storage safe on its own, since a valid name
 * cannot contain a separator or start with a dot.
 */
export function pathInRoot(root: string, name: string): string {
  if (!isValidName(name)) throw new StorageError(ErrorCodes.BAD_NAME, 'bad name');
  return entryPath(root, name);
}

/**
 * The path of one directory entry (a checked name, a temporary file's, one
 * readdir returned) in an absolute `root`. Plain concatenation: path.join
 * would normalise a path that is already normal, and a crowd of uploads
 * builds several each.
 */
export function entryPath(root: string, entry: string): string {
  return root.endsWith(path.sep) ? root + entry : root + path.sep + entry;
}

// ---------------------------------------------------------------------------
// Errors

/**
 * Whether "missing" means the name is absent (a lookup: NOT_FOUND) or that
 * something the storage itself created vanished (an update: STORAGE_FAILED,
 * because answering "no such file" to an upload would be wrong).
 */
export type MissingMeans = 'not-found' | 'failure';

/** errno codes that mean "no such regular file here" when opening or looking up a name. */
const MISSING_CODES: ReadonlySet<string> = new Set([
  'ENOENT',
  'ENOTDIR',
  // O_NOFOLLOW on a symbolic link: ELOOP on Linux and macOS, EMLINK on FreeBSD.
  'ELOOP',
  'EMLINK',
  // O_NONBLOCK on a Unix socket (or a FIFO opened for writing with no reader): not a regular file either.
  'ENXIO',
]);

const NO_SPACE_MESSAGES: Readonly<Record<string, string>> = {
  ENOSPC: 'out of space',
  EDQUOT: 'over quota',
};

/**
 * Out of file descriptors (the process's limit, or the system's): the server
 * cannot open one more file for a while, which PROTOCOL.md answers `450 busy`
 * (before a PUT's data; `451` after it), the connection staying usable.
 */
const NO_DESCRIPTOR_CODES = new Set(['EMFILE', 'ENFILE']);

function errnoCode(error: unknown): string | null {
  if (!(error instanceof Error) || error instanceof SocklabError) return null;
  const { code, syscall } = error as NodeJS.ErrnoException;
  return typeof code === 'string' && typeof syscall === 'string' ? code : null;
}

/**
 * What link() fails with on a file system that has no hard links (FAT, exFAT,
 * some shared folders of virtual machines): there, a file is renamed into
 * place instead, which only another server process on the same root could race.
 */
export const NO_HARD_LINKS = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'] as const;

export function hasErrnoCode(error: unknown, ...codes: readonly string[]): boolean {
  const code = errnoCode(error);
  return code !== null && codes.includes(code);
}

/** A failed lookup (lstat, open) that just means the name is not there. */
export function isMissing(error: unknown): boolean {
  const code = errnoCode(error);
  return code !== null && MISSING_CODES.has(code);
}

/**
 * An open for writing that found nothing at the name, or something that is
 * not a regular file: a link or a socket (see MISSING_CODES) or a directory
 * (EISDIR, which no lookup meets but a write meets first).
 */
export function isMissingOrNotRegular(error: unknown): boolean {
  return isMissing(error) || hasErrnoCode(error, 'EISDIR');
}

/**
 * The StorageError a file-system failure becomes; `doing` says what failed, for
 * people. Errors that are already StorageErrors and errors that are not from
 * the file system (bugs) come back unchanged, to be rethrown as they are.
 *
 * Messages name the operation and the errno code but never the path: the text
 * of a StorageError may end up in a reply, and server paths are not the
 * client's business.
 *
 * `outOfDescriptors`: 'busy' where nothing happened yet (the request may be
 * sent again: 450 before a PUT's data); 'failure' where something did (a
 * commit whose directory fsync could not open the directory: PROTOCOL.md,
 * "Durable", says `451 committing the upload failed (<errno>)`).
 */
export function toStorageError(error: unknown, doing: string, missing: MissingMeans, outOfDescriptors: 'busy' | 'failure' = 'busy'): unknown {
  const code = errnoCode(error);
  if (code === null) return error;
  const noSpace = NO_SPACE_MESSAGES[code];
  if (noSpace !== undefined) return new StorageError(ErrorCodes.NO_SPACE, noSpace, { cause: error });
  if (NO_DESCRIPTOR_CODES.has(code) && outOfDescriptors === 'busy') {
    return new StorageError(ErrorCodes.BUSY, `too many files open on the server (${code})`, { cause: error });
  }
  if (missing === 'not-found' && MISSING_CODES.has(code)) {
    return new StorageError(ErrorCodes.NOT_FOUND, 'no such file', { cause: error });
  }
  return new StorageError(ErrorCodes.STORAGE_FAILED, `${doing} failed (${code})`, { cause: error });
}

export function notFound(): StorageError {
  return new StorageError(ErrorCodes.NOT_FOUND, 'no such file');
}

/**
 * A valid name held by something that is not a regular file (a directory, a
 * symbolic link, a socket, a FIFO, a device): the server never writes to,
 * through or over it (PROTOCOL.md, "Names that are not regular files").
 */
export function notRegular(name: string): StorageError {
  return new StorageError(ErrorCodes.EXISTS, `${name} exists and is not a regular file`);
}

/** The subset of fs.Stats the name decisions read. */
export interface EntryKind {
  isFile(): boolean;
  readonly size: number;
}

/**
 * What a name holds, from its lstat (null: nothing): the size of a regular
 * file, null when absent; anything else is refused with notRegular.
 */
export function regularSizeOrNull(name: string, stats: EntryKind | null): number | null {
  if (stats === null) return null;
  if (!stats.isFile()) throw notRegular(name);
  return stats.size;
}

/** The directory fsync after a rename: some platforms and file systems cannot, which is no failure. */
export function isDirectorySyncUnsupported(error: unknown): boolean {
  return hasErrnoCode(error, 'EINVAL', 'EISDIR');
}

// ---------------------------------------------------------------------------
// Listing

/** The order of LIST: bytewise over UTF-8, which differs from JavaScript's UTF-16 order beyond U+FFFF. */
export function compareNamesBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Names worth an lstat when listing: temporary files and other invalid names are never listed. */
export function isListableName(name: string): boolean {
  return isValidName(name);
}

/** The subset of fs.Stats both flavours' lstat give us. */
export interface EntryStats {
  isFile(): boolean;
  readonly size: number;
  readonly mtime: Date;
}

/** A LIST line for a name and its lstat, or null: only regular files count (not links, not directories). */
export function listEntry(name: string, stats: EntryStats): ListEntry | null {
  return stats.isFile() ? { name, size: stats.size, mtime: stats.mtime } : null;
}

export function sortedForListing(entries: Iterable<ListEntry | null>): ListEntry[] {
  const keyed: { entry: ListEntry; key: Buffer }[] = [];
  for (const entry of entries) {
    if (entry !== null) keyed.push({ entry, key: Buffer.from(entry.name, 'utf8') });
  }
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map(({ entry }) => entry);
}

// ---------------------------------------------------------------------------
// Space

/** The subset of fs.StatsFs the space check reads. */
export interface SpaceStats {
  readonly bavail: number;
  readonly bsize: number;
  readonly blocks: number;
}

/**
 * The room the file system visibly has, in bytes. Some (virtual) file systems
 * report zero blocks: they say nothing, so no limit. Quotas cannot be seen
 * here; EDQUOT during the writes covers them.
 */
export function visibleRoom(stats: SpaceStats): number {
  return stats.blocks <= 0 ? Number.POSITIVE_INFINITY : stats.bavail * stats.bsize;
}

/** How long one statfs reading serves the visible-space check of the uploads that follow it. */
export const SPACE_READING_REUSE_MS = 1000;

/**
 * Bytes an upload in progress may still add to the disk: the size its
 * temporary file's name reserves (an append lands twice: received, then at
 * the file's end), less what it has written, which a statfs already counts.
 * `written` null: not looked at, so none (an upper bound). An append is
 * counted twice even to a name not there yet (the name does not say), and
 * the files of a crashed server sharing the root until a server starts on it:
 * both err towards refusing, never towards two uploads that do not fit.
 */
export function stillToWrite(upload: PendingUpload, written: number | null): number {
  return Math.max(0, upload.reserved * (upload.mode === 'append' ? 2 : 1) - (written ?? 0));
}

/**
 * What one look at the root found: the visible room, and what each upload in
 * progress (by its temporary file's name) may still write. The statfs comes
 * after the readdir and the lstats: taken before, it could miss bytes an
 * upload wrote (or a commit added) after it, which the lstat (or the upload's
 * vanished file) then takes off that upload's promise.
 */
export interface SpaceReading {
  readonly stats: SpaceStats;
  readonly promised: ReadonlyMap<string, number>;
}

/**
 * The promises of the uploads a readdir found. `written`: null when their
 * files were not looked at (upper bounds), else each one's size, null for
 * one gone since the readdir: committed (its bytes are in the statfs) or
 * discarded, so it promises nothing.
 */
export function promisesOf(pending: readonly PendingUpload[], written: readonly (number | null)[] | null): Map<string, number> {
  const promised = new Map<string, number>();
  pending.forEach((upload, i) => {
    const size = written === null ? null : written[i];
    if (written === null || (size !== null && size !== undefined)) promised.set(upload.fileName, stillToWrite(upload, size ?? null));
  });
  return promised;
}

/** Where a reading started: its time, and what was on the ledger by then (all of it, and this estimate's own part). */
export interface ReadingStart {
  readonly at: number;
  readonly ownOnLedger: number;
  readonly ledgerTotal: number;
}

/** How long an estimate remembers that an upload is on the ledger: far longer than the checks of one upload take. */
const LEDGER_MEMORY_MS = 10_000;

/**
 * The visible free space beside the uploads in progress (PROTOCOL.md: a `150`
 * reserves the announced size), from one reading reused for a moment: a crowd
 * of small uploads then costs one statfs and one readdir a second, not one
 * each (for the async flavour, each is a round trip through the thread pool).
 * The uploads admitted since the reading started are added to its promises,
 * so the estimate only shrinks until the next one; an upload it cannot admit
 * is decided on a fresh, precise reading that started after the upload's own
 * temporary file was made. With a ledger (the threads of a workers server),
 * every upload the other threads asked about since the reading counts too, as
 * one sum: until its next reading, an estimate errs towards a fresh look,
 * never towards two uploads that do not fit. Uploads that another server on
 * the root began since the reading count from the next one, at most a second
 * later. Space taken from outside within the moment is not seen, as it is
 * not between any check and the writes either: ENOSPC while writing covers
 * both.
 */
export class FreeSpaceEstimate {
  /** The room of the last reading (Infinity: the file system reports nothing), or null before any. */
  private room: number | null = null;
  /** Where the last reading started (its statfs and readdir may see nothing later). */
  private readStart: ReadingStart = { at: Number.NEGATIVE_INFINITY, ownOnLedger: 0, ledgerTotal: 0 };
  /** Each upload's promise, by its temporary file's name, and when this estimate admitted it (-Infinity: found by a reading). */
  private readonly promised = new Map<string, { readonly bytes: number; readonly admittedAt: number }>();
  private promisedTotal = 0;
  /** The uploads this estimate put on the ledger, and when: each goes there once. */
  private readonly onLedger = new Map<string, number>();
  /** Bytes this estimate has put on the ledger, ever: its own part of the ledger's total. */
  private ownOnLedger = 0;

  constructor(
    private readonly ledger: AdmissionLedger | null = null,
    private readonly reuseMs = SPACE_READING_REUSE_MS,
  ) {}

  /** To be taken just before a reading's statfs and readdir, and given to `record` with it. */
  startReading(now: number): ReadingStart {
    return { at: now, ownOnLedger: this.ownOnLedger, ledgerTotal: this.ledger?.total() ?? 0 };
  }

  /**
   * Whether the upload whose temporary file is `tempName` fits, `needed` bytes
   * beside every other upload's promise, in a recent reading; if so it is
   * counted. Its own file, if the reading saw it, counts as this. Nothing to
   * write always fits.
   *
   * The upload goes on the ledger first, whatever the answer (a refusal here
   * leads to a fresh reading, which comes after): so of two threads asking at
   * once, the later one to put itself there sees the other. The ledger counts
   * unless `readAfterOwnFile`: a reading started after this upload's
   * temporary file was made, whose readdir saw the uploads the other threads
   * began before it, while those that begin after it see this one on the
   * ledger.
   */
  admit(tempName: string, needed: number, now: number, readAfterOwnFile = false): boolean {
    this.putOnLedger(tempName, needed, now);
    if (this.room === null || now - this.readStart.at > this.reuseMs) return false;
    const others = this.promisedTotal - (this.promised.get(tempName)?.bytes ?? 0) + (readAfterOwnFile ? 0 : this.othersOnLedgerSinceReading());
    if (needed > 0 && this.room - others < needed) return false;
    this.promise(tempName, needed, now);
    return true;
  }

  /**
   * A fresh reading, started at `start`: the estimate starts again from it,
   * keeping the uploads this estimate admitted while it ran, which its
   * readdir may have missed.
   */
  record(reading: SpaceReading, start: ReadingStart): void {
    const admittedMeanwhile = [...this.promised].filter(([tempName, promise]) => promise.admittedAt >= start.at && !reading.promised.has(tempName));
    this.room = visibleRoom(reading.stats);
    this.readStart = start;
    this.promised.clear();
    this.promisedTotal = 0;
    for (const [tempName, bytes] of reading.promised) this.promise(tempName, bytes, Number.NEGATIVE_INFINITY);
    for (const [tempName, promise] of admittedMeanwhile) this.promise(tempName, promise.bytes, promise.admittedAt);
    for (const [tempName, at] of this.onLedger) if (at < start.at - LEDGER_MEMORY_MS) this.onLedger.delete(tempName);
  }

  private putOnLedger(tempName: string, needed: number, now: number): void {
    if (this.ledger === null || this.onLedger.has(tempName)) return;
    this.onLedger.set(tempName, now);
    this.ownOnLedger += needed;
    this.ledger.add(needed);
  }

  /**
   * What the other estimates put on the ledger since the last reading started
   * (some of which its readdir may have seen too, and some refused since: it
   * only ever errs towards a fresh look).
   */
  private othersOnLedgerSinceReading(): number {
    if (this.ledger === null) return 0;
    return this.ledger.total() - this.readStart.ledgerTotal - (this.ownOnLedger - this.readStart.ownOnLedger);
  }

  private promise(tempName: string, bytes: number, admittedAt: number): void {
    this.promisedTotal += bytes - (this.promised.get(tempName)?.bytes ?? 0);
    this.promised.set(tempName, { bytes, admittedAt });
  }
}

/** Bytes an upload will occupy on disk by its commit: the data, and for `append` to a file the same bytes again, written in place. */
export function bytesNeededForUpload(plan: UploadPlan, currentSize: number | null): number {
  return plan.mode === 'append' && currentSize !== null ? 2 * plan.size : plan.size;
}

export function noSpace(): StorageError {
  return new StorageError(ErrorCodes.NO_SPACE, 'out of space');
}

// ---------------------------------------------------------------------------
// Quota (--max-root-size)

/** The quota in bytes, or null for none: OpenStorageOptions.maxRootSize absent or 0 means no quota. */
export function quotaOf(maxRootSize: number | undefined): number | null {
  return maxRootSize === undefined || maxRootSize <= 0 ? null : maxRootSize;
}

/**
 * Whether `plan` would take the root past `quota` bytes, given the files LIST
 * would show now (unsorted: only their sizes count) and the uploads in
 * progress, each counted at its announced size until it commits or is
 * discarded. The target's current size is among the files if it is a regular
 * file: an overwrite frees it, an append keeps it.
 */
export function wouldExceedQuota(
  quota: number,
  listed: Iterable<ListEntry | null>,
  pending: readonly PendingUpload[],
  plan: Pick<UploadPlan, 'name' | 'size' | 'mode'>,
): boolean {
  let used = 0;
  let currentSize = 0;
  for (const entry of listed) {
    if (entry === null) continue;
    used += entry.size;
    if (entry.name === plan.name) currentSize = entry.size;
  }
  for (const upload of pending) used += upload.reserved;
  const after = plan.mode === 'append' ? used + plan.size : used - currentSize + plan.size;
  return after > quota;
}

/**
 * `--max-file-size` limits the file, not one upload: refuses an append that
 * would take `name` past `plan.maxFileSize`, counting the appends to it
 * already in progress (of every thread and server process).
 */
export function refuseIfFileWouldPassLimit(plan: UploadPlan, currentSize: number | null, pending: readonly PendingUpload[]): void {
  const limit = plan.maxFileSize;
  if (limit === undefined || plan.mode !== 'append') return;
  const key = nameKey(plan.name);
  let after = (currentSize ?? 0) + plan.size;
  for (const upload of pending) if (upload.mode === 'append' && upload.key === key) after += upload.reserved;
  if (after > limit) {
    throw new StorageError(ErrorCodes.TOO_LARGE, `too large: ${plan.name} would pass the size limit (${limit} bytes)`);
  }
}

export function overQuota(quota: number): StorageError {
  return new StorageError(ErrorCodes.NO_SPACE, `over the storage quota (${quota} bytes)`);
}

/**
 * The key that uploads lock at their start (check the limits, then reserve) and
 * at their commit, and that reads lock to open a file at a committed size. With
 * a quota, checking it and reserving or renaming must not interleave with
 * another upload to *any* name (two uploads that each fit could together
 * overshoot), so every one takes one root-wide key: the empty string, which is
 * never a valid name.
 */
export function commitLockKey(name: string, quota: number | null): string {
  return quota === null ? name : '';
}

// ---------------------------------------------------------------------------
// Handles

function foreignHandle(kind: string): InvalidStateError {
  return new InvalidStateError(`this ${kind} handle does not belong to this storage`);
}

/**
 * A file open for GET. `File` is the flavour's open file (a descriptor or a
 * FileHandle); `owner` ties the handle to the storage that made it, so one
 * flavour's handle can never reach the other's code.
 */
export class ReadState<File> implements ReadHandle {
  private position = 0;

  constructor(
    readonly owner: object,
    public file: File | null,
    readonly size: number,
  ) {}

  static of<File>(handle: ReadHandle, owner: object): ReadState<File> {
    if (!(handle instanceof ReadState) || handle.owner !== owner) throw foreignHandle('read');
    return handle as ReadState<File>;
  }

  /** The open file, or a bug report if the handle was closed. */
  openFile(): File {
    if (this.file === null) throw new InvalidStateError('the read handle is closed');
    return this.file;
  }

  /** Where the next read starts, and how long it is: 0 at the end of the size fixed at open. */
  nextRead(maxBytes: number): { position: number; length: number } {
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
      throw new SocklabError(ErrorCodes.INVALID_ARGUMENT, `maxBytes must be a positive integer, not ${maxBytes}`);
    }
    return { position: this.position, length: Math.min(maxBytes, this.size - this.position) };
  }

  /**
   * Records a read of `bytesRead` bytes. A file that ends early was truncated
   * in place behind the server's back (socklab itself only ever renames over a
   * name): the size promised in `150` can no longer be kept, so it is a failure.
   */
  advance(bytesRead: number, asked: number): void {
    if (bytesRead === 0 && asked > 0) {
      throw new StorageError(ErrorCodes.STORAGE_FAILED, 'the file shrank while being read');
    }
    this.position += bytesRead;
  }
}

/** A plan the protocol layer could never produce is a bug in the caller, not bad input. */
export function checkPlan(plan: UploadPlan): void {
  if (!Number.isSafeInteger(plan.size) || plan.size < 0) {
    throw new SocklabError(ErrorCodes.INVALID_ARGUMENT, `an upload size must be a non-negative integer, not ${plan.size}`);
  }
}

type UploadPhase = 'receiving' | 'committing' | 'done';

/**
 * An upload in progress: its temporary file, the bytes received so far, and
 * their running sha256 (computed inline or on a hasher thread, upload-digest.ts).
 */
export class UploadState<File, Digest extends EventLoopDigest = BlockingDigest> implements UploadHandle {
  readonly name: string;
  readonly mode: CommitMode;
  private receivedBytes = 0;
  private phase: UploadPhase = 'receiving';
  /** Why the upload was discarded, rethrown by later calls on the handle. */
  private failure: { readonly error: unknown } | null = null;

  constructor(
    readonly owner: object,
    readonly plan: UploadPlan,
    readonly tempPath: string,
    public file: File | null,
    private readonly digest: Digest,
  ) {
    this.name = plan.name;
    this.mode = plan.mode;
  }

  static of<File, Digest extends EventLoopDigest = BlockingDigest>(handle: UploadHandle, owner: object): UploadState<File, Digest> {
    if (!(handle instanceof UploadState) || handle.owner !== owner) throw foreignHandle('upload');
    return handle as UploadState<File, Digest>;
  }

  get received(): number {
    return this.receivedBytes;
  }

  /**
   * Claims the next `bytes.length` bytes of the temporary file for `bytes` and
   * hashes them, before any I/O: the file offset and the digest then follow
   * the order of the calls even if an async caller does not wait for one write
   * before the next. Returns the open file, the offset to write at, and (from
   * an event-loop digest that is behind) a promise to wait on before more.
   */
  reserveWrite(bytes: Uint8Array): { file: File; position: number; digesting: ReturnType<Digest['take']> } {
    const file = this.usableFile('write to');
    const position = this.receivedBytes;
    const digesting = this.digest.take(bytes) as ReturnType<Digest['take']>;
    this.receivedBytes += bytes.length;
    return { file, position, digesting };
  }

  /**
   * Moves to the commit; from here on, `abortUpload` leaves the upload alone.
   * Returns the open temporary file, which the commit now owns.
   */
  startCommit(): File {
    const file = this.usableFile('commit');
    this.phase = 'committing';
    this.file = null;
    return file;
  }

  /** The hex sha256 of the bytes received (a promise from an event-loop digest on a thread). */
  finishDigest(): ReturnType<Digest['finish']> {
    if (this.receivedBytes !== this.plan.size) {
      // The protocol layer counts the data; reaching this is a bug in the caller.
      throw new StorageError(
        ErrorCodes.STORAGE_FAILED,
        `upload incomplete: received ${this.receivedBytes} of ${this.plan.size} bytes`,
      );
    }
    return this.digest.finish() as ReturnType<Digest['finish']>;
  }

  /** `uploadSha256` (from finishDigest), after checking it is the one announced. */
  verifiedSha256(uploadSha256: string): string {
    if (this.plan.sha256 !== null && uploadSha256 !== this.plan.sha256.toLowerCase()) {
      throw new StorageError(ErrorCodes.CHECKSUM_MISMATCH, `sha256 mismatch: received ${uploadSha256}`);
    }
    return uploadSha256;
  }

  committed(): void {
    this.phase = 'done';
  }

  /** Records why the upload is discarded; returns the error for the caller to throw. */
  failed(error: unknown): unknown {
    this.phase = 'done';
    this.digest.abandon();
    this.failure = { error };
    return error;
  }

  /**
   * Whether `abortUpload` has anything to do. During a commit it has not: the
   * commit either installs the file or removes its temporary files itself, and
   * pulling the temporary file from under it would turn a good upload into a
   * failure.
   */
  claimForAbort(): boolean {
    if (this.phase !== 'receiving') return false;
    this.phase = 'done';
    this.digest.abandon();
    return true;
  }

  private usableFile(action: string): File {
    if (this.failure !== null) throw this.failure.error;
    if (this.phase !== 'receiving' || this.file === null) {
      throw new InvalidStateError(`cannot ${action} an upload that is ${this.phase === 'committing' ? 'being committed' : 'finished'}`);
    }
    return this.file;
  }
}

export function fileExists(name: string): StorageError {
  return new StorageError(ErrorCodes.EXISTS, `${name} exists`);
}

/** The temporary file's content did not survive intact between receiving and committing. */
export function copyMismatch(copied: number, expected: number): StorageError {
  return new StorageError(
    ErrorCodes.STORAGE_FAILED,
    `the received data changed before the commit (${copied} of ${expected} bytes)`,
  );
}
