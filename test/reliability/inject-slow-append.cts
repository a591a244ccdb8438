/**
 * Slow appends, faked inside a server process, for append-crash.test.ts:
 * loaded with NODE_OPTIONS="--require <this file>", every write to a file
 * under SOCKLAB_SLOW_APPEND_ROOT that is not one of the server's temporary
 * files (that is, an append being written in place) first sleeps 40 ms. An
 * append of many chunks then lasts long enough for a test to SIGKILL the
 * server in the middle of it, every time. Nothing else changes.
 */
import fs = require('node:fs');
import path = require('node:path');

const root = path.resolve(process.env.SOCKLAB_SLOW_APPEND_ROOT ?? '/nonexistent');
const PAUSE_MS = 40;

function isAppendTarget(file: unknown): boolean {
  return typeof file === 'string' && path.resolve(file).startsWith(root + path.sep) && !path.basename(file).startsWith('.');
}

function pause(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, PAUSE_MS);
}

const slow = new Set<number>();
const openSync = fs.openSync;
fs.openSync = ((file: fs.PathLike, ...rest: unknown[]) => {
  const fd = (openSync as (...args: unknown[]) => number)(file, ...rest);
  if (isAppendTarget(file)) slow.add(fd);
  return fd;
}) as typeof fs.openSync;
const closeSync = fs.closeSync;
fs.closeSync = (fd: number) => {
  slow.delete(fd);
  closeSync(fd);
};
const writeSync = fs.writeSync;
fs.writeSync = ((fd: number, ...rest: unknown[]) => {
  if (slow.has(fd)) pause();
  return (writeSync as (...args: unknown[]) => number)(fd, ...rest);
}) as typeof fs.writeSync;

const open = fs.promises.open;
fs.promises.open = (async (file: fs.PathLike, ...rest: unknown[]) => {
  const handle = await (open as (...args: unknown[]) => Promise<fs.promises.FileHandle>)(file, ...rest);
  if (isAppendTarget(file)) {
    const write = handle.write.bind(handle) as (...args: unknown[]) => Promise<unknown>;
    handle.write = (async (...args: unknown[]) => {
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
      return write(...args);
    }) as typeof handle.write;
  }
  return handle;
}) as typeof fs.promises.open;
