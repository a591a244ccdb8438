/**
 * A file system without hard links (FAT, exFAT, some shared folders of virtual
 * machines), faked inside a server process for no-hard-links.test.ts: loaded
 * with NODE_OPTIONS="--require <this file>" (which reaches the workers
 * server's threads too), it makes every link() to a path under
 * SOCKLAB_FAKE_NO_LINKS_ROOT fail with EPERM, as link(2) does there.
 */
import fs = require('node:fs');
import path = require('node:path');
import { failLater, replaceCallbackCall } from '../helpers/fs-callbacks.cjs';

const root = path.resolve(process.env.SOCKLAB_FAKE_NO_LINKS_ROOT ?? '/nonexistent');

function inRoot(file: fs.PathLike): boolean {
  return path.resolve(String(file)).startsWith(root + path.sep);
}

function eperm(from: fs.PathLike, to: fs.PathLike): NodeJS.ErrnoException {
  return Object.assign(new Error(`EPERM: operation not permitted, link '${String(from)}' -> '${String(to)}'`), { errno: -1, code: 'EPERM', syscall: 'link' });
}

const linkSync = fs.linkSync;
fs.linkSync = (from: fs.PathLike, to: fs.PathLike): void => {
  if (inRoot(to)) throw eperm(from, to);
  linkSync(from, to);
};
replaceCallbackCall('link', (args, callback, link) => {
  const [from, to] = args as [fs.PathLike, fs.PathLike];
  if (inRoot(to)) return failLater(callback, eperm(from, to));
  link(...args, callback);
});
