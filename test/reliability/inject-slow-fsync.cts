/**
 * A slow disk, faked inside a server process, for idle-while-busy.test.ts:
 * loaded with NODE_OPTIONS="--require <this file>", every fsync (fs.fsyncSync,
 * and FileHandle.sync on a handle from fs.promises.open) first sleeps
 * SOCKLAB_SLOW_FSYNC_MS. A server-side operation (an upload's commit) then
 * outlasts a short idle timeout every time, in every model, while the client
 * politely waits for its reply. Nothing else changes.
 */
import fs = require('node:fs');

const PAUSE_MS = Number(process.env.SOCKLAB_SLOW_FSYNC_MS ?? '600');

const fsyncSync = fs.fsyncSync;
fs.fsyncSync = (fd: number) => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, PAUSE_MS);
  fsyncSync(fd);
};

const open = fs.promises.open;
fs.promises.open = (async (...args: unknown[]) => {
  const handle = await (open as (...args: unknown[]) => Promise<fs.promises.FileHandle>)(...args);
  const sync = handle.sync.bind(handle);
  handle.sync = async () => {
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    return sync();
  };
  return handle;
}) as typeof fs.promises.open;
