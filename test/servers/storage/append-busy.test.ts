/**
 * An append to a name whose intent record another live server process holds
 * (a server stopped or stuck in the middle of its append) waits for it, but
 * not for ever: after INTENT_WAIT_MS (30 s) it fails with a reply that says
 * why, and changes nothing. Without that bound the client would hang for as
 * long as the other server lives.
 *
 * The two flavours wait at the same time, the blocking one in a worker thread
 * as in the workers server, so the file takes those 30 s once.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { ErrorCodes } from '../../../protocol/errors.js';
import { AsyncStorage } from '../../../servers/storage/async.js';
import { encodeIntent, fileIdentity, INTENT_WAIT_MS, intentFileName } from '../../../servers/storage/common.js';
import { ownerOf } from '../../../servers/storage/owners.js';
import { SyncStorage } from '../../../servers/storage/sync.js';
import { freshDir, tempFilesIn } from './flavours.js';

/** The other server outlives the wait by far, so an append that does not give up would take over from it and succeed. */
const other = spawn(process.execPath, ['-e', `setTimeout(() => {}, ${INTENT_WAIT_MS + 15_000})`], { stdio: 'ignore' });
t.teardown(() => other.kill('SIGKILL'));
const otherOwner = ownerOf(other.pid ?? 0);

/** A root whose `log` the other server is appending to: it holds the name's intent record. */
function rootWithHeldLog(): string {
  const root = freshDir(t);
  const log = path.join(root, 'log');
  fs.writeFileSync(log, 'old');
  const identity = fileIdentity(fs.statSync(log, { bigint: true }));
  fs.writeFileSync(path.join(root, intentFileName('log')), encodeIntent({ owner: otherOwner, name: 'log', file: identity, size: 3 }));
  return root;
}

interface Outcome {
  readonly committed?: { readonly size: number };
  readonly code?: string;
  readonly message?: string;
}

/** Runs the blocking flavour's append in a worker thread, so that this thread goes on meanwhile. */
function syncAppendInWorker(root: string): Promise<Outcome> {
  const script = `
    const { workerData, parentPort } = require('node:worker_threads');
    (async () => {
      const { SyncStorage } = await import(workerData.syncUrl);
      const storage = SyncStorage.attach(workerData.root);
      const handle = storage.beginUpload({ name: 'log', size: 4, mode: 'append', sha256: null });
      storage.writeUpload(handle, new TextEncoder().encode('+new'));
      try {
        parentPort.postMessage({ committed: storage.commitUpload(handle) });
      } catch (error) {
        parentPort.postMessage({ code: error.code, message: error.message });
      }
    })();
  `;
  const worker = new Worker(script, { eval: true, workerData: { root, syncUrl: new URL('../../../servers/storage/sync.js', import.meta.url).href } });
  return new Promise<Outcome>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }).finally(() => worker.terminate());
}

async function asyncAppend(root: string): Promise<Outcome> {
  const storage = await AsyncStorage.open(root);
  const handle = await storage.beginUpload({ name: 'log', size: 4, mode: 'append', sha256: null });
  await storage.writeUpload(handle, Buffer.from('+new'));
  try {
    return { committed: await storage.commitUpload(handle) };
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return { code, message };
  }
}

t.test('an append waits for another live server\'s append to the name for 30 s, then fails saying so, changing nothing', async (t) => {
  const syncRoot = rootWithHeldLog();
  SyncStorage.open(syncRoot); // as the workers server does: the main thread opens (a live server's record stays), the workers attach
  const asyncRoot = rootWithHeldLog();
  const outcomes = await Promise.all([syncAppendInWorker(syncRoot), asyncAppend(asyncRoot)]);
  for (const [flavour, root, outcome] of [['SyncStorage', syncRoot, outcomes[0]], ['AsyncStorage', asyncRoot, outcomes[1]]] as const) {
    t.same(outcome, { code: ErrorCodes.STORAGE_FAILED, message: `another server has been appending to log for ${INTENT_WAIT_MS / 1000} s` }, `${flavour}: the append gives up`);
    t.equal(fs.readFileSync(path.join(root, 'log'), 'utf8'), 'old', `${flavour}: the file is unchanged`);
    t.same(tempFilesIn(root), [intentFileName('log')], `${flavour}: only the other server's record is left`);
  }
});
