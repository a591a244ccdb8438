/**
 * The limits, in both storage flavours, over real files: the quota
 * (`--max-root-size`) counts the files LIST shows and every upload in progress
 * at its announced size, at the upload's start and again at its commit;
 * `--max-file-size` limits the file an append grows; an upload the disk
 * visibly cannot hold is refused before its data. A refused upload changes
 * nothing and leaves no temporary file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ErrorCodes } from '../../../protocol/errors.js';
import type { CommitMode } from '../../../protocol/index.js';
import { AsyncStorage } from '../../../servers/storage/async.js';
import { SharedAdmissions } from '../../../servers/storage/shared-admissions.js';
import { SharedNameLock } from '../../../servers/storage/shared-lock.js';
import { SyncStorage } from '../../../servers/storage/sync.js';
import { block, finish, flavours, freshDir, inTwoServerThreads, plan, setUpRoot, sha256, tempFilesIn, upload } from './flavours.js';

const reportsBlocks = fs.statfsSync(os.tmpdir()).blocks > 0;

for (const flavour of flavours) {
  t.test(flavour.name, async (t) => {
    t.test('--max-root-size: the files and the uploads in progress, each at its announced size, must fit', async (t) => {
      const { root, storage } = await setUpRoot(t, flavour, { maxRootSize: 100 });
      fs.writeFileSync(path.join(root, 'old'), block(1, 40));
      const overQuota = { code: ErrorCodes.NO_SPACE, message: 'over the storage quota (100 bytes)' };

      const first = await storage.beginUpload(plan('a', 50, 'new'));
      await t.rejects(storage.beginUpload(plan('b', 11, 'new')), overQuota, '40 on disk + 50 reserved + 11 is past 100');
      const second = await storage.beginUpload(plan('b', 10, 'new'));
      t.equal(tempFilesIn(root).length, 2, 'exactly 100 fits; the refused upload left no temporary file');
      t.same(await finish(storage, first, block(2, 50)), { size: 50, sha256: sha256(block(2, 50)) }, 'a commit does not count its own reservation on top of its file');
      await finish(storage, second, block(3, 10));
      t.same((await storage.list()).map((e) => [e.name, e.size]), [['a', 50], ['b', 10], ['old', 40]]);

      await t.rejects(upload(storage, 'b', block(4, 1), 'append'), overQuota, 'an append keeps the bytes already there');
      await t.rejects(upload(storage, 'old', block(4, 41), 'overwrite'), overQuota, 'an overwrite frees its old size, and no more');
      t.same(await upload(storage, 'old', block(4, 40), 'overwrite'), { size: 40, sha256: sha256(block(4, 40)) }, 'an overwrite of the same size fits');
      await upload(storage, 'old', new Uint8Array(0), 'overwrite');

      const aborted = await storage.beginUpload(plan('c', 40, 'new'));
      await t.rejects(storage.beginUpload(plan('d', 1, 'new')), overQuota, 'the reservation of an upload in progress counts');
      await storage.abortUpload(aborted);
      t.same(await upload(storage, 'd', block(5, 40), 'new'), { size: 40, sha256: sha256(block(5, 40)) }, 'an aborted upload no longer reserves its size');
      t.same(tempFilesIn(root), [], 'no temporary file is left');
    });

    t.test('--max-root-size is checked again at the commit: the root grew behind the server', async (t) => {
      const { root, storage } = await setUpRoot(t, flavour, { maxRootSize: 100 });
      fs.writeFileSync(path.join(root, 'kept'), 'original');
      const handle = await storage.beginUpload(plan('kept', 50, 'overwrite'));
      await storage.writeUpload(handle, block(1, 50));
      fs.writeFileSync(path.join(root, 'planted'), block(2, 60));
      await t.rejects(storage.commitUpload(handle), { code: ErrorCodes.NO_SPACE }, '50 + 60 is past 100');
      t.equal(fs.readFileSync(path.join(root, 'kept'), 'utf8'), 'original', 'the file is unchanged');
      t.same(tempFilesIn(root), [], 'no temporary file is left');
    });

    t.test('--max-root-size: uploads to different names that start together cannot overshoot it together', async (t) => {
      const { root, storage } = await setUpRoot(t, flavour, { maxRootSize: 100 });
      const started = await Promise.allSettled([storage.beginUpload(plan('p', 60, 'new')), storage.beginUpload(plan('q', 60, 'new'))]);
      t.same(started.map((result) => result.status).sort(), ['fulfilled', 'rejected'], 'one of them fits, not both');
      t.equal(tempFilesIn(root).length, 1);
    });

    t.test('--max-root-size 0 is no quota', async (t) => {
      const { storage } = await setUpRoot(t, flavour, { maxRootSize: 0 });
      t.same(await upload(storage, 'any', block(1, 1000), 'new'), { size: 1000, sha256: sha256(block(1, 1000)) });
    });

    t.test('--max-file-size limits the file an append grows, counting the appends to it in progress', async (t) => {
      const { root, storage } = await setUpRoot(t, flavour);
      const file = path.join(root, 'log');
      fs.writeFileSync(file, block(1, 90));
      const limited = (size: number, mode: CommitMode = 'append') => ({ ...plan('log', size, mode), maxFileSize: 100 });
      const tooLarge = { code: ErrorCodes.TOO_LARGE, message: 'too large: log would pass the size limit (100 bytes)' };

      await t.rejects(storage.beginUpload(limited(11)), tooLarge, '90 + 11 is past 100');
      // An overwrite in progress replaces the file rather than growing it: the limit counts the appends only (a commit checks again).
      const overwrite = await storage.beginUpload(limited(100, 'overwrite'));
      const first = await storage.beginUpload(limited(6));
      await t.rejects(storage.beginUpload(limited(5)), tooLarge, '90 + 6 in progress + 5 is past 100');
      const second = await storage.beginUpload(limited(4));
      t.same(await finish(storage, first, block(2, 6)), { size: 96, sha256: sha256(block(2, 6)) });
      t.same(await finish(storage, second, block(3, 4)), { size: 100, sha256: sha256(block(3, 4)) }, 'exactly the limit fits');
      await storage.abortUpload(overwrite);
      t.same(tempFilesIn(root), []);

      fs.truncateSync(file, 95);
      const late = await storage.beginUpload(limited(5));
      await storage.writeUpload(late, block(4, 5));
      fs.appendFileSync(file, 'x');
      await t.rejects(storage.commitUpload(late), tooLarge, 'checked again at the commit: the file grew behind the server');
      t.equal(fs.statSync(file).size, 96, 'the file is unchanged');
      t.same(tempFilesIn(root), [], 'no temporary file is left');

      t.same(await finish(storage, await storage.beginUpload(limited(100, 'overwrite')), block(5, 100)), { size: 100, sha256: sha256(block(5, 100)) }, 'an overwrite is limited by its own size (the protocol checks it)');
    });

    t.test('an upload the disk visibly cannot hold is refused before its data; an append to a file needs its bytes twice', { skip: reportsBlocks ? false : 'the temporary directory reports no blocks, so nothing is visibly full there' }, async (t) => {
      const { root, storage } = await setUpRoot(t, flavour);
      const { bavail, bsize } = fs.statfsSync(root);
      const free = bavail * bsize;
      const outOfSpace = { code: ErrorCodes.NO_SPACE, message: 'out of space' };
      await t.rejects(storage.beginUpload(plan('huge', 2 * free, 'new')), outOfSpace, 'twice the free space');
      fs.writeFileSync(path.join(root, 'log'), 'x');
      // Three quarters of the free space: it fits once, not twice (the received bytes, then the same bytes at the file's end).
      const size = Math.floor(free * 0.75);
      await t.rejects(storage.beginUpload(plan('log', size, 'append')), outOfSpace, 'an append to an existing file');
      for (const [name, mode] of [['log', 'overwrite'], ['fresh', 'append']] as const) {
        const handle = await storage.beginUpload(plan(name, size, mode));
        t.pass(`${mode} to ${name}: needs the bytes once, so it begins`);
        await storage.abortUpload(handle);
      }
      t.same(tempFilesIn(root), []);
    });

    t.test('the free space counts the uploads in progress: a 150 reserves the announced size (PROTOCOL.md)', { skip: reportsBlocks ? false : 'the temporary directory reports no blocks, so nothing is visibly full there' }, async (t) => {
      const { root, storage } = await setUpRoot(t, flavour);
      const { bavail, bsize } = fs.statfsSync(root);
      // Six tenths of the free space: one fits, two do not.
      const size = Math.floor(bavail * bsize * 0.6);
      const outOfSpace = { code: ErrorCodes.NO_SPACE, message: 'out of space' };
      const first = await storage.beginUpload(plan('one', size, 'new'));
      await t.rejects(storage.beginUpload(plan('two', size, 'new')), outOfSpace, 'the first upload\'s reservation counts, though none of its bytes are written');
      await storage.abortUpload(first);
      const again = await storage.beginUpload(plan('two', size, 'new'));
      t.pass('an aborted upload no longer reserves its size');
      await storage.abortUpload(again);

      // Another storage on the root (another thread of the workers server, another server) reading afresh sees it too.
      const held = await storage.beginUpload(plan('one', size, 'new'));
      const other = await flavour.attach(root);
      await t.rejects(other.beginUpload(plan('three', size, 'new')), outOfSpace, 'another storage on the root counts it');
      await storage.abortUpload(held);
      t.same(tempFilesIn(root), [], 'a refused upload leaves no temporary file');
    });
  });
}

// ---------------------------------------------------------------------------
// The quota across server processes (a rolling restart: two servers, one root)

const QUOTA = 1000;
const STORED = 400;
const EACH = 400; // two of these do not fit beside what is stored

t.test('two AsyncStorages on one root (two servers) reserving at once: never both, past the free space', { skip: reportsBlocks ? false : 'the temporary directory reports no blocks' }, async (t) => {
  for (let round = 0; round < 10; round++) {
    const root = freshDir(t);
    const first = await AsyncStorage.open(root);
    const second = AsyncStorage.attach(root);
    const { bavail, bsize } = fs.statfsSync(root);
    const size = Math.floor(bavail * bsize * 0.6);
    const outcomes = await Promise.allSettled([first.beginUpload(plan('one', size, 'new')), second.beginUpload(plan('two', size, 'new'))]);
    const began = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    // Both may be refused (each saw the other's temporary file): before any data, so each may try again.
    t.ok(began <= 1, `round ${round}: ${began} of two reservations of six tenths of the free space began`);
    for (const outcome of outcomes) if (outcome.status === 'rejected') t.match(outcome.reason, { code: ErrorCodes.NO_SPACE, message: 'out of space' });
    await Promise.all(outcomes.map((outcome, i) => (outcome.status === 'fulfilled' ? (i === 0 ? first : second).abortUpload(outcome.value) : undefined)));
    t.same(tempFilesIn(root), [], `round ${round}: no temporary file is left`);
  }
});

t.test('the threads of a workers server (SyncStorages sharing a SharedAdmissions): each counts what the others admitted since its last reading', { skip: reportsBlocks ? false : 'the temporary directory reports no blocks' }, async (t) => {
  const root = freshDir(t);
  const admissions = new SharedAdmissions();
  const lock = new SharedNameLock();
  const thread1 = SyncStorage.open(root, { lock, admissions });
  const thread2 = SyncStorage.attach(root, { lock: new SharedNameLock(lock.buffer), admissions: new SharedAdmissions(admissions.buffer) });
  // Each thread takes a reading now (a small upload, let go), which it then reuses for up to a second.
  for (const storage of [thread1, thread2]) storage.abortUpload(storage.beginUpload(plan('small', 1, 'new')));
  const { bavail, bsize } = fs.statfsSync(root);
  const size = Math.floor(bavail * bsize * 0.6);
  const held = thread1.beginUpload(plan('one', size, 'new'));
  t.throws(() => thread2.beginUpload(plan('two', size, 'new')), { code: ErrorCodes.NO_SPACE, message: 'out of space' }, "thread 2's reading predates thread 1's upload, yet it is counted");
  thread1.abortUpload(held);
  const again = thread2.beginUpload(plan('two', size, 'new'));
  t.pass('once let go, it fits again (a fresh reading: the ledger only ever adds towards reading again)');
  thread2.abortUpload(again);
  t.same(tempFilesIn(root), [], 'no temporary file is left');
});

t.test('two AsyncStorages on one root (two servers) reserving at once: never both, past the quota', async (t) => {
  for (let round = 0; round < 20; round++) {
    const root = freshDir(t);
    fs.writeFileSync(path.join(root, 'stored'), block(1, STORED));
    const first = await AsyncStorage.open(root, { maxRootSize: QUOTA });
    const second = AsyncStorage.attach(root, { maxRootSize: QUOTA });
    const outcomes = await Promise.allSettled([first.beginUpload(plan('one', EACH, 'new')), second.beginUpload(plan('two', EACH, 'new'))]);
    const began = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    t.ok(began <= 1, `round ${round}: ${began} of two reservations of ${EACH} B beside ${STORED} B stored, in a ${QUOTA} B quota`);
    for (const outcome of outcomes) if (outcome.status === 'rejected') t.match(outcome.reason, { code: ErrorCodes.NO_SPACE }, `round ${round}: refused as over the quota`);
    await Promise.all(outcomes.map((outcome, i) => (outcome.status === 'fulfilled' ? (i === 0 ? first : second).abortUpload(outcome.value) : undefined)));
    t.same(tempFilesIn(root), [], `round ${round}: a refused reservation leaves no temporary file`);
  }
});

t.test('SyncStorage in two threads with a lock each (two servers on one root) reserving at the same instant: never both, past the quota', async (t) => {
  const root = freshDir(t);
  fs.writeFileSync(path.join(root, 'stored'), block(1, STORED));
  const rounds = 100;
  // Both threads meet before each reservation, and again before letting it go, so both are held at once if both pass.
  const [ones, twos] = await inTwoServerThreads(root, {
    rounds,
    maxRootSize: QUOTA,
    round: `
      meet();
      let handle = null;
      try {
        handle = storage.beginUpload({ name: 'q-' + i + '-' + value, size: ${EACH}, mode: 'new', sha256: null });
        outcomes.push('began');
      } catch (error) {
        outcomes.push(error.code);
      }
      meet();
      if (handle !== null) storage.abortUpload(handle);`,
  });
  let both = 0;
  for (let i = 0; i < rounds; i++) {
    const pair = [ones?.[i], twos?.[i]];
    if (pair.every((outcome) => outcome === 'began')) both++;
    for (const outcome of pair) if (outcome !== 'began' && outcome !== ErrorCodes.NO_SPACE) t.fail(`round ${i}: ${outcome}`);
  }
  t.equal(both, 0, `no round where both ${EACH} B reservations were held beside ${STORED} B in a ${QUOTA} B quota`);
  t.ok(ones.concat(twos).includes('began'), 'and reservations that fit were taken');
  t.same(tempFilesIn(root), []);
});
