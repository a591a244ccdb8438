/**
 * node:fs's callback calls, each as one promise, on raw file descriptors: the
 * file calls of the event-loop flavour (async.ts), its write-behind
 * (batched-writer.ts) and the bench's copy-sink.
 *
 * Not node:fs/promises: its FileHandle costs about twice the CPU per call
 * (measured on 64 calls in flight: open+close 19–22 µs against 7–11, writev
 * 12–15 against 4–7, fsync 9–12 against 6–9, lstat 12–14 against 6–8), in
 * promise and async-function layers and a handle object per open file. An
 * upload makes eight such calls, and a crowd of small uploads is little else.
 * What FileHandle gives in return, closing a descriptor its owner forgot on
 * garbage collection, the callers do not need: every descriptor here is
 * closed on every path, and the storage tests check that none is left open.
 *
 * Each function reads `fs.<call>` when it runs, not at import, so that a test
 * can stand in for one call of a failing disk (test/servers/storage/io-failures.test.ts).
 */
import fs, { type BigIntStats, type Stats } from 'node:fs';

type Done<T> = (error: NodeJS.ErrnoException | null, value: T) => void;

function settled<T>(start: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, value) => {
      if (error === null) resolve(value);
      else reject(error);
    });
  });
}

/** A descriptor for `filePath` (flags and mode as fs.open takes them). */
export function openFile(filePath: string, flags: number | string, mode?: number): Promise<number> {
  return settled((done: Done<number>) => fs.open(filePath, flags, mode, done));
}

export function closeFile(fd: number): Promise<void> {
  return settled((done: Done<void>) => fs.close(fd, done));
}

export function syncFile(fd: number): Promise<void> {
  return settled((done: Done<void>) => fs.fsync(fd, done));
}

export function datasyncFile(fd: number): Promise<void> {
  return settled((done: Done<void>) => fs.fdatasync(fd, done));
}

export function statFile(fd: number): Promise<Stats>;
export function statFile(fd: number, options: { readonly bigint: true }): Promise<BigIntStats>;
export function statFile(fd: number, options?: { readonly bigint: true }): Promise<Stats | BigIntStats> {
  if (options === undefined) return settled((done: Done<Stats>) => fs.fstat(fd, done));
  return settled((done: Done<BigIntStats>) => fs.fstat(fd, options, done));
}

/** The file as UTF-8, from the descriptor's position on (all of it, for one just opened). */
export function readText(fd: number): Promise<string> {
  return settled((done: Done<string>) => fs.readFile(fd, 'utf8', done));
}

export function truncateFile(fd: number, length: number): Promise<void> {
  return settled((done: Done<void>) => fs.ftruncate(fd, length, done));
}

/** Reads up to `length` bytes at `position` into `buffer` from `offset`; resolves to the bytes read (0 at the end). */
export function readAt(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return settled((done: Done<number>) => fs.read(fd, buffer, offset, length, position, done));
}

/** Writes `length` bytes of `buffer` from `offset` at `position`; resolves to the bytes written (possibly fewer). */
export function writeAt(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return settled((done: Done<number>) => fs.write(fd, buffer, offset, length, position, done));
}

/** One vectored write of `buffers` at `position`; resolves to the bytes written (possibly fewer). */
export function writevAt(fd: number, buffers: readonly Uint8Array[], position: number): Promise<number> {
  return settled((done: Done<number>) => fs.writev(fd, buffers as Uint8Array[], position, done));
}

export function linkPath(existing: string, newPath: string): Promise<void> {
  return settled((done: Done<void>) => fs.link(existing, newPath, done));
}

export function renamePath(from: string, to: string): Promise<void> {
  return settled((done: Done<void>) => fs.rename(from, to, done));
}

export function unlinkPath(filePath: string): Promise<void> {
  return settled((done: Done<void>) => fs.unlink(filePath, done));
}
