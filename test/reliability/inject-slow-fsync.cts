/**
 * A slow disk, faked inside a server process, for idle-while-busy.test.ts:
 * loaded with NODE_OPTIONS="--require <this file>", every fsync (fs.fsyncSync,
 * and node:fs's callback fs.fsync) first sleeps
 * SOCKLAB_SLOW_FSYNC_MS. A server-side operation (an upload's commit) then
 * outlasts a short idle timeout every time, in every model, while the client
 * politely waits for its reply. Nothing else changes.
 */
import fs = require('node:fs');
import { replaceCallbackCall } from '../helpers/fs-callbacks.cjs';

const PAUSE_MS = Number(process.env.SOCKLAB_SLOW_FSYNC_MS ?? '600');

const fsyncSync = fs.fsyncSync;
fs.fsyncSync = (fd: number) => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, PAUSE_MS);
  fsyncSync(fd);
};

replaceCallbackCall('fsync', (args, callback, fsync) => {
  setTimeout(() => fsync(...args, callback), PAUSE_MS);
});
