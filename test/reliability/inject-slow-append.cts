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
import { replaceCallbackCall, trackDescriptors } from '../helpers/fs-callbacks.cjs';

const root = path.resolve(process.env.SOCKLAB_SLOW_APPEND_ROOT ?? '/nonexistent');
const PAUSE_MS = 40;

function isAppendTarget(file: unknown): boolean {
  return typeof file === 'string' && path.resolve(file).startsWith(root + path.sep) && !path.basename(file).startsWith('.');
}

function pause(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, PAUSE_MS);
}

const slow = trackDescriptors(isAppendTarget);
const writeSync = fs.writeSync;
fs.writeSync = ((fd: number, ...rest: unknown[]) => {
  if (slow.has(fd)) pause();
  return (writeSync as (...args: unknown[]) => number)(fd, ...rest);
}) as typeof fs.writeSync;
// The event-loop flavour: the write waits without holding the loop, as a slow disk's does.
replaceCallbackCall('write', (args, callback, write) => {
  if (!slow.has(args[0] as number)) return write(...args, callback);
  setTimeout(() => write(...args, callback), PAUSE_MS);
});
