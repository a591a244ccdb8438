/**
 * A server that is slow to take an append's intent record and dies the moment
 * it has it, faked inside a server process for append-race-crash.test.ts:
 * loaded with NODE_OPTIONS="--require <this file>" (which reaches the workers
 * server's threads too), a link() of an intent record under
 * SOCKLAB_INTENT_CRASH_ROOT first creates the file SOCKLAB_INTENT_CRASH_MARK
 * (outside the root: "about to take it"), waits until that file is removed,
 * then links and SIGKILLs its own process. Between the mark and its removal
 * the test has another server append to the same name.
 */
import fs = require('node:fs');
import path = require('node:path');
import { replaceCallbackCall } from '../helpers/fs-callbacks.cjs';

const root = path.resolve(process.env.SOCKLAB_INTENT_CRASH_ROOT ?? '/nonexistent');
const mark = process.env.SOCKLAB_INTENT_CRASH_MARK ?? '/nonexistent';
const INTENT_PREFIX = '.socklab-tmp-append-';
const GIVE_UP_MS = 30_000;

function isIntentRecord(file: fs.PathLike): boolean {
  const resolved = path.resolve(String(file));
  return path.dirname(resolved) === root && path.basename(resolved).startsWith(INTENT_PREFIX);
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Blocks the calling thread (the event loop too, for the async server: nothing else is meant to happen) until the test lets go. */
function holdUntilReleased(): void {
  fs.writeFileSync(mark, String(process.pid));
  const deadline = Date.now() + GIVE_UP_MS;
  while (fs.existsSync(mark) && Date.now() < deadline) sleep(20);
}

const linkSync = fs.linkSync;
fs.linkSync = (from: fs.PathLike, to: fs.PathLike): void => {
  if (!isIntentRecord(to)) return linkSync(from, to);
  holdUntilReleased();
  linkSync(from, to);
  process.kill(process.pid, 'SIGKILL');
};
replaceCallbackCall('link', (args, callback, link) => {
  if (!isIntentRecord(args[1] as fs.PathLike)) return link(...args, callback);
  holdUntilReleased();
  link(...args, () => process.kill(process.pid, 'SIGKILL'));
});
