/**
 * Appends in place and their intent records, in both storage flavours, over
 * real files: an append that fails after some of its bytes reached the file
 * is undone at once (the file back to its old content, the record gone, so the
 * next append to the name does not wait for it), and a start-up that finds a
 * gone server's record for a name that something else holds now (a
 * directory, a FIFO) leaves that thing alone and still starts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ErrorCodes } from '../../../protocol/errors.js';
import { encodeIntent, fileIdentity, intentFileName, RECORD_WRITE_MS } from '../../../servers/storage/common.js';
import { block, flavours, freshDir, setUpRoot, sha256, tempFilesIn, upload } from './flavours.js';

const PIECE = 64 * 1024;
/** Two batches of the async flavour's write-behind, so its writes start before the commit. */
const APPENDED = 32 * PIECE;

for (const flavour of flavours) {
  t.test(flavour.name, async (t) => {
    t.test('an append that fails half-way through its bytes in place is undone at once', async (t) => {
      const { root, storage } = await setUpRoot(t, flavour);
      const file = path.join(root, 'log');
      fs.writeFileSync(file, 'old content');
      const handle = await storage.beginUpload({ name: 'log', size: APPENDED, mode: 'append', sha256: null });
      for (let offset = 0; offset < APPENDED; offset += PIECE) await storage.writeUpload(handle, block(1, PIECE));
      const [received] = tempFilesIn(root);
      const receivedPath = path.join(root, received ?? 'missing');
      for (const deadline = Date.now() + 10_000; fs.statSync(receivedPath).size < APPENDED && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // Half of the received bytes vanish before the commit copies them to the file's end: the copy comes up short after writing half.
      fs.truncateSync(receivedPath, APPENDED / 2);
      await t.rejects(storage.commitUpload(handle), { code: ErrorCodes.STORAGE_FAILED });
      t.equal(fs.readFileSync(file, 'utf8'), 'old content', 'the file is back to its old content');
      t.same(tempFilesIn(root), [], 'no temporary file and no intent record is left');
      const began = performance.now();
      t.same(await upload(storage, 'log', Buffer.from('+new'), 'append'), { size: 15, sha256: sha256(Buffer.from('+new')) }, 'the next append lands');
      t.ok(performance.now() - began < 5_000, 'without waiting for a record that nobody will remove');
      t.equal(fs.readFileSync(file, 'utf8'), 'old content+new');
    });

    t.test("start-up undoes a gone server's append by cutting the file back, never by growing it", async (t) => {
      const root = freshDir(t);
      const dead = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
      const file = path.join(root, 'log');
      fs.writeFileSync(file, 'shrunk since');
      const identity = fileIdentity(fs.statSync(file, { bigint: true }));
      fs.writeFileSync(path.join(root, intentFileName('log')), encodeIntent({ owner: `${dead}.1`, name: 'log', file: identity, size: 100 }));
      await flavour.open(root);
      t.equal(fs.readFileSync(file, 'utf8'), 'shrunk since', 'a file shorter than its size before the append is left as it is');
      t.same(tempFilesIn(root), [], 'the record is gone');
    });

    t.test("start-up removes a gone server's record that was only taken (no size yet) and leaves the file as it is", async (t) => {
      const root = freshDir(t);
      const dead = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
      const file = path.join(root, 'log');
      fs.writeFileSync(file, 'appended by another server since');
      const identity = fileIdentity(fs.statSync(file, { bigint: true }));
      fs.writeFileSync(path.join(root, intentFileName('log')), encodeIntent({ owner: `${dead}.1`, name: 'log', file: identity, size: null }));
      const storage = await flavour.open(root);
      t.equal(fs.readFileSync(file, 'utf8'), 'appended by another server since', 'nothing was appended under it: nothing is cut');
      t.same(tempFilesIn(root), [], 'the record is gone');
      t.same(await upload(storage, 'log', Buffer.from('!'), 'append'), { size: 33, sha256: sha256(Buffer.from('!')) }, 'and the name takes appends again');
    });

    t.test('a record that does not decode is left while it may be one being written (no hard links), and is nobody\'s once older', async (t) => {
      const root = freshDir(t);
      fs.writeFileSync(path.join(root, 'log'), 'old');
      const record = path.join(root, intentFileName('log'));
      fs.writeFileSync(record, ''); // another server created it in place and has not written it yet
      // Changed a second short of the time a writer gets, so that both flavours (the sync one blocks) see it age.
      const changed = (Date.now() - RECORD_WRITE_MS + 1000) / 1000;
      fs.utimesSync(record, changed, changed);
      const storage = await flavour.open(root);
      t.ok(fs.existsSync(record), 'a start-up leaves a record changed so recently');
      const began = performance.now();
      t.same(await upload(storage, 'log', Buffer.from('+new'), 'append'), { size: 7, sha256: sha256(Buffer.from('+new')) }, 'an append to the name lands');
      t.ok(performance.now() - began > 500, 'once the record is old enough to be nobody\'s, not before');
      t.equal(fs.readFileSync(path.join(root, 'log'), 'utf8'), 'old+new');
      t.same(tempFilesIn(root), [], 'and the record is gone');
    });

    t.test('reads, appends, their intent records, aborted and refused uploads and the undoing of a gone server\'s append leave no descriptor open', { skip: fs.existsSync('/proc/self/fd') ? false : 'needs /proc/self/fd' }, async (t) => {
      const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;
      const { root, storage } = await setUpRoot(t, flavour);
      fs.writeFileSync(path.join(root, 'log'), 'x');
      await upload(storage, 'log', Buffer.from('warm-up'), 'append');
      const before = openDescriptors();
      for (let i = 0; i < 20; i++) await upload(storage, 'log', Buffer.from(`+${i}`), 'append');
      // Uploads that end otherwise: aborted, refused at the commit (an unlinked temporary file held open would also keep its disk space).
      for (let i = 0; i < 10; i++) {
        const aborted = await storage.beginUpload({ name: 'gone', size: 3, mode: 'new', sha256: null });
        await storage.writeUpload(aborted, Buffer.from('abc'));
        await storage.abortUpload(aborted);
        await t.rejects(upload(storage, 'gone', Buffer.from('abc'), 'new', '0'.repeat(64)), { code: ErrorCodes.CHECKSUM_MISMATCH });
      }
      // Reads (a GET each, read to the end or left half-way) and STATs, which read the file through.
      for (let i = 0; i < 10; i++) {
        const reading = await storage.openRead('log');
        if (i % 2 === 0) while ((await storage.readChunk(reading, 4)) !== null);
        await storage.closeRead(reading);
        await storage.stat('log');
      }
      const dead = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
      const identity = fileIdentity(fs.statSync(path.join(root, 'log'), { bigint: true }));
      for (let i = 0; i < 5; i++) {
        fs.writeFileSync(path.join(root, intentFileName('log')), encodeIntent({ owner: `${dead}.1`, name: 'log', file: identity, size: 1 }));
        await flavour.attach(root).list(); // nothing opened by attach
        await flavour.open(root);
      }
      t.equal(openDescriptors(), before, 'as many descriptors open as before');
      t.equal(fs.readFileSync(path.join(root, 'log'), 'utf8'), 'x', 'and the undone appends are undone');
    });

    t.test("start-up: a gone server's intent record for a name that is no longer a regular file", async (t) => {
      const root = freshDir(t);
      const dead = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
      fs.mkdirSync(path.join(root, 'dir.d'));
      fs.writeFileSync(path.join(root, 'dir.d', 'inside'), 'kept');
      const names = ['dir.d'];
      if (spawnSync('mkfifo', [path.join(root, 'fifo')]).status === 0) names.push('fifo');
      for (const name of names) fs.writeFileSync(path.join(root, intentFileName(name)), encodeIntent({ owner: `${dead}.1`, name, file: '1:1', size: 0 }));
      const storage = await flavour.open(root);
      t.same(tempFilesIn(root), [], 'the records are gone');
      t.ok(fs.statSync(path.join(root, 'dir.d')).isDirectory(), 'the directory is left as it was');
      t.equal(fs.readFileSync(path.join(root, 'dir.d', 'inside'), 'utf8'), 'kept');
      if (names.includes('fifo')) t.ok(fs.lstatSync(path.join(root, 'fifo')).isFIFO(), 'the FIFO too');
      t.same(await storage.list(), [], 'and the storage works');
    });
  });
}
