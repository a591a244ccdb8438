/**
 * A full disk, faked inside a server process, for limits.test.ts: loaded with
 * NODE_OPTIONS="--require <this file>" (NODE_OPTIONS reaches the workers
 * server's threads too), it makes the file system under
 * SOCKLAB_FAKE_FULL_DISK_ROOT behave as a full one, in the way chosen by
 * SOCKLAB_FAKE_FULL_DISK:
 *
 * - `visible`: statfs reports no free block (the server can see it before `150`);
 * - `write`: writes to the server's temporary files fail with ENOSPC (a disk that
 *   fills while the data comes in), whichever call makes them (write, writev);
 * - `fsync`: fsync of the temporary files fails with ENOSPC (file systems that
 *   allocate late, or report the failure only there).
 *
 * Only the calls the storage makes are patched, and only for paths in that
 * root, so nothing outside the test's own temporary directory is affected.
 * Nothing real is filled: the failing call is injected, the server's error
 * mapping (ENOSPC → 452) and clean-up are what is tested.
 */
import fs = require('node:fs');
import path = require('node:path');
import { failLater, replaceCallbackCall, trackDescriptors, type Callback } from '../helpers/fs-callbacks.cjs';

const mode = process.env.SOCKLAB_FAKE_FULL_DISK;
const root = path.resolve(process.env.SOCKLAB_FAKE_FULL_DISK_ROOT ?? '/nonexistent');

function inRoot(file: unknown): boolean {
  return typeof file === 'string' && path.resolve(file).startsWith(root + path.sep);
}

function isTemp(file: unknown): boolean {
  return inRoot(file) && path.basename(String(file)).startsWith('.socklab-tmp-');
}

function enospc(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), { errno: -28, code: 'ENOSPC', syscall });
}

if (mode === 'visible') {
  const full = <T extends fs.StatsFs>(stats: T): T => ({ ...stats, bavail: 0, bfree: 0 });
  const statfsSync = fs.statfsSync;
  fs.statfsSync = ((file: fs.PathLike, options?: fs.StatFsOptions) => {
    const stats = statfsSync(file, options as { bigint?: false });
    return path.resolve(String(file)) === root ? full(stats) : stats;
  }) as typeof fs.statfsSync;
  const statfs = fs.promises.statfs;
  fs.promises.statfs = (async (file: fs.PathLike, options?: fs.StatFsOptions) => {
    const stats = await statfs(file, options as { bigint?: false });
    return path.resolve(String(file)) === root ? full(stats) : stats;
  }) as typeof fs.promises.statfs;
} else if (mode === 'write' || mode === 'fsync') {
  // Descriptors of temporary files in the root, whichever flavour opened them.
  const doomed = trackDescriptors(isTemp);
  const failIfDoomed = (syscall: string) => (args: unknown[], callback: Callback, real: (...args: unknown[]) => void) => {
    if (doomed.has(args[0] as number)) return failLater(callback, enospc(syscall));
    real(...args, callback);
  };
  if (mode === 'write') {
    const writeSync = fs.writeSync;
    fs.writeSync = ((fd: number, ...rest: unknown[]) => {
      if (doomed.has(fd)) throw enospc('write');
      return (writeSync as (...args: unknown[]) => number)(fd, ...rest);
    }) as typeof fs.writeSync;
    replaceCallbackCall('write', failIfDoomed('write'));
    replaceCallbackCall('writev', failIfDoomed('writev'));
  } else {
    const fsyncSync = fs.fsyncSync;
    fs.fsyncSync = (fd: number) => {
      if (doomed.has(fd)) throw enospc('fsync');
      fsyncSync(fd);
    };
    replaceCallbackCall('fsync', failIfDoomed('fsync'));
    replaceCallbackCall('fdatasync', failIfDoomed('fdatasync'));
  }
}
