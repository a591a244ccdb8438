/**
 * An append to a name whose intent record another live server process holds
 * (a server stopped or stuck in the middle of its append) waits for it, but
 * not for ever: after INTENT_WAIT_MS (30 s) it fails with a reply that says
 * why, and changes nothing. Without that bound the client would hang for as
 * long as the other server lives.
 *
 * Each flavour runs in a worker thread (the blocking one as in the workers
 * server) whose clock (`performance.now`, which the wait reads) runs
 * CLOCK_SPEED times faster than real time, so the 30 s pass in a fraction of
 * a second; the other server lives on for far longer, in real time.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { ErrorCodes } from '../../../protocol/errors.js';
import { encodeIntent, fileIdentity, INTENT_WAIT_MS, intentFileName } from '../../../servers/storage/common.js';
import { ownerOf } from '../../../servers/storage/owners.js';
import { SyncStorage } from '../../../servers/storage/sync.js';
import { freshDir, tempFilesIn } from './flavours.js';

const CLOCK_SPEED = 100;
/** The other server outlives the wait by far, so an append that did not give up would take over from it once it is gone, and succeed. */
const OTHER_SERVER_LIVES_MS = 20_000;

const other = spawn(process.execPath, ['-e', `setTimeout(() => {}, ${OTHER_SERVER_LIVES_MS})`], { stdio: 'ignore' });
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

/**
 * Appends '+new' to `log` with the flavour's storage attached to `root`, in a
 * worker thread with a fast clock; with `noHardLinks`, on what looks like a
 * file system without hard links (every link fails with EPERM, as on FAT).
 */
function appendInWorker(flavour: 'SyncStorage' | 'AsyncStorage', root: string, noHardLinks: boolean): Promise<Outcome> {
  const script = `
    const { workerData, parentPort } = require('node:worker_threads');
    const realNow = performance.now.bind(performance);
    performance.now = () => realNow() * ${CLOCK_SPEED};
    if (workerData.noHardLinks) {
      const noLink = () => Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM', syscall: 'link' });
      require('node:fs').linkSync = () => { throw noLink(); };
      require('node:fs').link = (...args) => process.nextTick(args.at(-1), noLink());
    }
    (async () => {
      const { [workerData.flavour]: Storage } = await import(workerData.moduleUrl);
      const storage = Storage.attach(workerData.root);
      const handle = await storage.beginUpload({ name: 'log', size: 4, mode: 'append', sha256: null });
      await storage.writeUpload(handle, new TextEncoder().encode('+new'));
      try {
        parentPort.postMessage({ committed: await storage.commitUpload(handle) });
      } catch (error) {
        parentPort.postMessage({ code: error.code, message: error.message });
      }
    })();
  `;
  const moduleUrl = new URL(flavour === 'SyncStorage' ? '../../../servers/storage/sync.js' : '../../../servers/storage/async.js', import.meta.url).href;
  const worker = new Worker(script, { eval: true, workerData: { flavour, root, moduleUrl, noHardLinks } });
  return new Promise<Outcome>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }).finally(() => worker.terminate());
}

for (const noHardLinks of [false, true]) {
  // Without hard links the record is created in place (O_EXCL); the other server's record makes that fail with EEXIST.
  const where = noHardLinks ? ' (no hard links)' : '';
  t.test(`an append waits for another live server's append to the name for 30 s, then fails saying so, changing nothing${where}`, async (t) => {
    for (const flavour of ['SyncStorage', 'AsyncStorage'] as const) {
      const root = rootWithHeldLog();
      // As the workers server does: the main thread opens the root (a live server's record stays), the threads attach.
      SyncStorage.open(root);
      t.same(await appendInWorker(flavour, root, noHardLinks), { code: ErrorCodes.STORAGE_FAILED, message: `another server has been appending to log for ${INTENT_WAIT_MS / 1000} s` }, `${flavour}: the append gives up`);
      t.equal(fs.readFileSync(path.join(root, 'log'), 'utf8'), 'old', `${flavour}: the file is unchanged`);
      t.same(tempFilesIn(root), [intentFileName('log')], `${flavour}: only the other server's record is left`);
    }
  });
}
