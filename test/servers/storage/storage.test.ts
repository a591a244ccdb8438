/**
 * One suite, run against both storage flavours (flavours.ts): the same test
 * code drives both, which is how "identical semantics" is checked rather than
 * promised.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { spawn, spawnSync } from 'node:child_process';
import { ErrorCodes } from '../../../protocol/errors.js';
import { AsyncStorage } from '../../../servers/storage/async.js';
import { SyncStorage } from '../../../servers/storage/sync.js';
import { SharedNameLock } from '../../../servers/storage/shared-lock.js';
import { encodeIntent, fileIdentity, intentFileName, RECORD_WRITE_MS, tempFileName } from '../../../servers/storage/common.js';
import { ownerOf, SELF_OWNER } from '../../../servers/storage/owners.js';
import { TEMP_PREFIX, type AsyncStorageOps } from '../../../servers/storage/types.js';
import { block, bytesOf, flavours, freshDir, inTwoServerThreads, setUpRoot, sha256, tempFilesIn, upload, type HasTeardown } from './flavours.js';
import type { Tap } from '../../helpers/tap.js';

// ---------------------------------------------------------------------------
// Fixtures (the rest are in flavours.ts)

/** Splits `content` into `blockLength` pieces and checks each is one uniform block; returns their values in order. */
function uniformBlockValues(t: { fail(message: string): unknown }, content: Buffer, blockLength: number): number[] {
  const values: number[] = [];
  for (let offset = 0; offset < content.length; offset += blockLength) {
    const piece = content.subarray(offset, offset + blockLength);
    const first = piece[0] ?? -1;
    if (!piece.equals(block(first, blockLength))) t.fail(`block at ${offset} is not whole`);
    values.push(first);
  }
  return values;
}

async function readAll(storage: AsyncStorageOps, name: string, maxBytes = 7): Promise<Buffer> {
  const handle = await storage.openRead(name);
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const chunk = await storage.readChunk(handle, maxBytes);
      if (chunk === null) break;
      chunks.push(chunk);
    }
  } finally {
    await storage.closeRead(handle);
  }
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------
// The shared suite

for (const flavour of flavours) {
  t.test(flavour.name, async (t) => {
    const setup = (t: HasTeardown) => setUpRoot(t, flavour);

    t.test('list shows valid-named regular files only, sorted bytewise', async (t) => {
      const { root, outside, storage } = await setup(t);
      t.same(await storage.list(), [], 'a new root is empty');

      // Fullwidth A (U+FF21, UTF-8 EF BC A1) sorts before bold A (U+1D400, UTF-8 F0 9D 90 80)
      // bytewise, but after it in JavaScript's UTF-16 order: the test tells the two apart.
      const valid = ['b.txt', 'B', 'a..b', '10', '9', 'é', 'заметки-1.txt', '日本', '\uFF21', '\u{1D400}'];
      for (const name of valid) fs.writeFileSync(path.join(root, name), name);
      const hidden = [`${TEMP_PREFIX}0123abcd`, '.hidden', 'a b', 'e\u0301' /* not NFC */];
      for (const name of hidden) fs.writeFileSync(path.join(root, name), 'hidden');
      fs.mkdirSync(path.join(root, 'subdir'));
      fs.writeFileSync(path.join(outside, 'target'), 'outside');
      fs.symlinkSync(path.join(outside, 'target'), path.join(root, 'link'));
      fs.symlinkSync('b.txt', path.join(root, 'inside-link'));

      const entries = await storage.list();
      const expected = [...valid].sort((a, b) => Buffer.compare(bytesOf(a), bytesOf(b)));
      t.same(
        entries.map((e) => e.name),
        expected,
      );
      t.ok(expected.indexOf('\uFF21') < expected.indexOf('\u{1D400}'), 'bytewise order, not UTF-16 order');
      for (const entry of entries) {
        t.equal(entry.size, bytesOf(entry.name).length, `${entry.name} size`);
        t.ok(entry.mtime instanceof Date && !Number.isNaN(entry.mtime.getTime()), `${entry.name} mtime`);
      }
    });

    t.test('absent, directories and invalid names', async (t) => {
      const { root, storage } = await setup(t);
      fs.mkdirSync(path.join(root, 'subdir'));
      t.equal(await storage.probe('nothing'), null, 'probe nothing');
      await t.rejects(storage.probe('subdir'), { code: ErrorCodes.EXISTS, message: 'subdir exists and is not a regular file' }, 'probe subdir: no upload may land there');
      for (const mode of ['new', 'overwrite', 'append'] as const) {
        await t.rejects(storage.beginUpload({ name: 'subdir', size: 1, mode, sha256: null }), { code: ErrorCodes.EXISTS }, `beginUpload subdir ${mode}`);
      }
      for (const name of ['nothing', 'subdir']) {
        await t.rejects(storage.stat(name), { code: ErrorCodes.NOT_FOUND }, `stat ${name}`);
        await t.rejects(storage.openRead(name), { code: ErrorCodes.NOT_FOUND }, `openRead ${name}`);
      }
      for (const name of ['../x', 'a/b', '.hidden', '', 'a b', `${TEMP_PREFIX}1`, 'e\u0301']) {
        await t.rejects(storage.probe(name), { code: ErrorCodes.BAD_NAME }, `probe ${JSON.stringify(name)}`);
        await t.rejects(storage.stat(name), { code: ErrorCodes.BAD_NAME }, `stat ${JSON.stringify(name)}`);
        await t.rejects(storage.openRead(name), { code: ErrorCodes.BAD_NAME }, `openRead ${JSON.stringify(name)}`);
        await t.rejects(
          storage.beginUpload({ name, size: 1, mode: 'overwrite', sha256: null }),
          { code: ErrorCodes.BAD_NAME },
          `beginUpload ${JSON.stringify(name)}`,
        );
      }
      t.same(tempFilesIn(root), [], 'a refused upload leaves no temporary file');
    });

    t.test('probe, stat and read a file', async (t) => {
      const { root, storage } = await setup(t);
      // Over 64 KiB and not a multiple of it, so the streamed hash takes several chunks.
      const content = Buffer.alloc(200_003);
      for (let i = 0; i < content.length; i++) content[i] = (i * 31 + 7) & 0xff;
      fs.writeFileSync(path.join(root, 'big.bin'), content);
      fs.writeFileSync(path.join(root, 'empty'), '');

      t.equal(await storage.probe('big.bin'), content.length);
      t.same(await storage.stat('big.bin'), { size: content.length, sha256: sha256(content) });
      t.same(await storage.stat('empty'), { size: 0, sha256: sha256(new Uint8Array(0)) });
      t.ok((await readAll(storage, 'big.bin', 65_536)).equals(content), 'read back in 64 KiB chunks');
      t.ok((await readAll(storage, 'big.bin', 100_000_000)).equals(content), 'read back with a huge maxBytes');
      t.equal((await readAll(storage, 'empty')).length, 0, 'an empty file reads as nothing');
    });

    t.test('a read stops at the size fixed when opened', async (t) => {
      const { root, storage } = await setup(t);
      const file = path.join(root, 'growing');
      fs.writeFileSync(file, 'hello');
      const handle = await storage.openRead('growing');
      t.equal(handle.size, 5);
      fs.appendFileSync(file, ' world');
      const chunks: Uint8Array[] = [];
      for (let chunk = await storage.readChunk(handle, 3); chunk !== null; chunk = await storage.readChunk(handle, 3)) {
        chunks.push(chunk);
      }
      t.equal(Buffer.concat(chunks).toString(), 'hello');
      t.equal(await storage.readChunk(handle, 3), null, 'stays at the end');
      await storage.closeRead(handle);
      await storage.closeRead(handle); // closing twice is harmless
    });

    /** `hello world` read 5 bytes in, then cut to `length` bytes behind the server's back (`: > shrinking` for 0). */
    const readThenCut = async (t: Tap, length: number) => {
      const { root, storage } = await setup(t);
      const file = path.join(root, 'shrinking');
      fs.writeFileSync(file, 'hello world');
      const handle = await storage.openRead('shrinking');
      t.equal(Buffer.from((await storage.readChunk(handle, 5)) ?? []).toString(), 'hello');
      fs.truncateSync(file, length);
      return { storage, handle };
    };

    t.test('a file cut shorter while it is read ends the read with an error, not with empty chunks forever', async (t) => {
      const { storage, handle } = await readThenCut(t, 0);
      await t.rejects(storage.readChunk(handle, 5), { code: ErrorCodes.STORAGE_FAILED, message: 'the file shrank while being read' });
      await storage.closeRead(handle);
    });

    t.test('a file cut partway into the next chunk: the bytes still there, none made up, then the error', async (t) => {
      const { storage, handle } = await readThenCut(t, 8);
      t.equal(Buffer.from((await storage.readChunk(handle, 5)) ?? []).toString(), ' wo', 'the three bytes left, not five with zeros after them');
      await t.rejects(storage.readChunk(handle, 5), { code: ErrorCodes.STORAGE_FAILED });
      await storage.closeRead(handle);
    });

    t.test('symbolic links are never followed', async (t) => {
      const { root, outside, storage } = await setup(t);
      const secretPath = path.join(outside, 'secret');
      fs.writeFileSync(secretPath, 'outside content');
      const linkTo = (name: string): void => fs.symlinkSync(secretPath, path.join(root, name));
      const outsideUnchanged = (what: string): void => {
        t.equal(fs.readFileSync(secretPath, 'utf8'), 'outside content', `${what}: the outside file is unchanged`);
      };

      linkTo('link');
      await t.rejects(storage.probe('link'), { code: ErrorCodes.EXISTS }, 'probe: a link is not a regular file, no upload may land there');
      await t.rejects(storage.stat('link'), { code: ErrorCodes.NOT_FOUND }, 'stat');
      await t.rejects(storage.openRead('link'), { code: ErrorCodes.NOT_FOUND }, 'openRead');
      t.same(await storage.list(), [], 'list');

      await t.rejects(upload(storage, 'link', bytesOf('new'), 'new'), { code: ErrorCodes.EXISTS }, "'new' onto a link");
      t.ok(fs.lstatSync(path.join(root, 'link')).isSymbolicLink(), "'new' left the link");
      outsideUnchanged("'new'");

      for (const mode of ['append', 'overwrite'] as const) {
        await t.rejects(upload(storage, 'link', bytesOf('data'), mode), { code: ErrorCodes.EXISTS }, `'${mode}' onto a link`);
        t.ok(fs.lstatSync(path.join(root, 'link')).isSymbolicLink(), `'${mode}' left the link`);
        outsideUnchanged(`'${mode}'`);
      }

      // A link planted after the upload began (between its 150 and its commit) is not replaced either.
      const late = await storage.beginUpload({ name: 'late', size: 4, mode: 'overwrite', sha256: null });
      await storage.writeUpload(late, bytesOf('data'));
      linkTo('late');
      await t.rejects(storage.commitUpload(late), { code: ErrorCodes.EXISTS }, 'a link planted before the commit');
      t.ok(fs.lstatSync(path.join(root, 'late')).isSymbolicLink(), 'the link stays');
      outsideUnchanged('the late link');
      t.same(tempFilesIn(root), []);
    });

    t.test('upload new, overwrite and append', async (t) => {
      const { root, storage } = await setup(t);
      const file = path.join(root, 'notes.txt');

      t.same(await upload(storage, 'notes.txt', bytesOf('first'), 'new'), { size: 5, sha256: sha256(bytesOf('first')) });
      t.equal(fs.readFileSync(file, 'utf8'), 'first');

      t.same(await upload(storage, 'notes.txt', bytesOf('second!'), 'overwrite'), {
        size: 7,
        sha256: sha256(bytesOf('second!')),
      });
      t.equal(fs.readFileSync(file, 'utf8'), 'second!');

      // 226 carries the new size and the digest of the bytes received, not of the whole file.
      t.same(await upload(storage, 'notes.txt', bytesOf(' more'), 'append'), { size: 12, sha256: sha256(bytesOf(' more')) });
      t.equal(fs.readFileSync(file, 'utf8'), 'second! more');
      t.same(await storage.stat('notes.txt'), { size: 12, sha256: sha256(bytesOf('second! more')) });

      t.same(await upload(storage, 'fresh', bytesOf('data'), 'append'), { size: 4, sha256: sha256(bytesOf('data')) }, 'append to an absent name creates it');
      t.same(await upload(storage, 'empty', new Uint8Array(0), 'new'), { size: 0, sha256: sha256(new Uint8Array(0)) }, 'an empty upload');
      t.equal(await storage.probe('empty'), 0);
      t.same(await upload(storage, 'notes.txt', new Uint8Array(0), 'append'), { size: 12, sha256: sha256(new Uint8Array(0)) }, 'an empty append');
      t.equal(fs.readFileSync(file, 'utf8'), 'second! more');

      const big = Buffer.alloc(150_000, 0x61);
      t.same(await upload(storage, 'notes.txt', big, 'append'), { size: 150_012, sha256: sha256(big) }, 'an append over several copy chunks');
      t.ok(fs.readFileSync(file).equals(Buffer.concat([bytesOf('second! more'), big])));

      t.equal(fs.statSync(file).mode & 0o700, 0o600, 'created read-write for the owner, not executable');
      t.same(tempFilesIn(root), [], 'no temporary file is left');
    });

    t.test('a handle used wrongly is a typed error that names the misuse, and changes nothing', async (t) => {
      const { root, storage } = await setup(t);
      const { storage: other } = await setup(t);
      fs.writeFileSync(path.join(root, 'kept'), 'kept');
      const notMine = { code: ErrorCodes.INVALID_STATE };
      const invalid = { code: ErrorCodes.INVALID_ARGUMENT };

      const reading = await storage.openRead('kept');
      await t.rejects(other.readChunk(reading, 4), { ...notMine, message: 'this read handle does not belong to this storage' });
      await t.rejects(storage.readChunk({ size: 4 }, 4), { ...notMine, message: 'this read handle does not belong to this storage' }, 'nor does a look-alike');
      for (const maxBytes of [0, -1, 1.5]) {
        await t.rejects(storage.readChunk(reading, maxBytes), { ...invalid, message: `maxBytes must be a positive integer, not ${maxBytes}` });
      }
      t.equal(Buffer.from((await storage.readChunk(reading, 4)) ?? []).toString(), 'kept', 'the read is where it was');
      await storage.closeRead(reading);
      await t.rejects(storage.readChunk(reading, 4), { ...notMine, message: 'the read handle is closed' });

      for (const size of [-1, 1.5]) {
        await t.rejects(storage.beginUpload({ name: 'up', size, mode: 'new', sha256: null }), { ...invalid, message: `an upload size must be a non-negative integer, not ${size}` });
      }
      const handle = await storage.beginUpload({ name: 'up', size: 2, mode: 'new', sha256: null });
      await t.rejects(async () => other.writeUpload(handle, bytesOf('ab')), { ...notMine, message: 'this upload handle does not belong to this storage' });
      await t.rejects(other.commitUpload(handle), { ...notMine, message: 'this upload handle does not belong to this storage' });
      await storage.writeUpload(handle, bytesOf('ab'));
      await storage.commitUpload(handle);
      await t.rejects(async () => storage.writeUpload(handle, bytesOf('c')), { ...notMine, message: 'cannot write to an upload that is finished' });
      await t.rejects(storage.commitUpload(handle), { ...notMine, message: 'cannot commit an upload that is finished' });
      t.equal(fs.readFileSync(path.join(root, 'up'), 'utf8'), 'ab', 'the committed file is as committed');
      t.same(tempFilesIn(root), []);
    });

    t.test("'new' onto an existing file", async (t) => {
      const { root, storage } = await setup(t);
      fs.writeFileSync(path.join(root, 'kept'), 'original');
      await t.rejects(upload(storage, 'kept', bytesOf('intruder'), 'new'), { code: ErrorCodes.EXISTS, message: 'kept exists' });
      await t.rejects(storage.beginUpload({ name: 'kept', size: 8, mode: 'new', sha256: null }), { code: ErrorCodes.EXISTS }, 'refused at its start, before any data is sent');
      t.equal(fs.readFileSync(path.join(root, 'kept'), 'utf8'), 'original');
      t.same(tempFilesIn(root), []);
    });

    t.test("'new' onto a name another upload took between this one's start and its commit", async (t) => {
      const { root, storage } = await setup(t);
      const late = await storage.beginUpload({ name: 'race', size: 4, mode: 'new', sha256: null });
      await storage.writeUpload(late, bytesOf('late'));
      t.same(await upload(storage, 'race', bytesOf('first'), 'new'), { size: 5, sha256: sha256(bytesOf('first')) }, 'the other upload lands first');
      await t.rejects(storage.commitUpload(late), { code: ErrorCodes.EXISTS }, 'checked again at the commit');
      t.equal(fs.readFileSync(path.join(root, 'race'), 'utf8'), 'first', 'the first file is kept');
      t.same(tempFilesIn(root), []);
    });

    t.test('checksum mismatch discards the upload', async (t) => {
      const { root, storage } = await setup(t);
      const file = path.join(root, 'checked');
      fs.writeFileSync(file, 'original');
      const wrong = sha256(bytesOf('something else'));
      for (const mode of ['overwrite', 'append'] as const) {
        await t.rejects(upload(storage, 'checked', bytesOf('data'), mode, wrong), {
          code: ErrorCodes.CHECKSUM_MISMATCH,
          // The client reads what the server received, to tell a changed file from a damaged transfer.
          message: `sha256 mismatch: received ${sha256(bytesOf('data'))}`,
        }, mode);
        t.equal(fs.readFileSync(file, 'utf8'), 'original', `${mode}: the file is unchanged`);
        t.same(tempFilesIn(root), [], `${mode}: no temporary file is left`);
      }
      await t.rejects(upload(storage, 'absent', bytesOf('data'), 'new', wrong), { code: ErrorCodes.CHECKSUM_MISMATCH });
      t.equal(await storage.probe('absent'), null, 'a failed upload creates nothing');

      t.same(await upload(storage, 'checked', bytesOf('data'), 'overwrite', sha256(bytesOf('data')).toUpperCase()), {
        size: 4,
        sha256: sha256(bytesOf('data')),
      }, 'a matching sha256 commits (in either case)');
    });

    t.test('a large upload (its sha256 computed on a hasher thread) is checked like a small one', async (t) => {
      const { root, storage } = await setup(t);
      const large = randomBytes(24 * 1024 * 1024); // past OFF_THREAD_MIN_BYTES and the hasher's 4 MiB ring
      const wrong = sha256(large.subarray(1));
      await t.rejects(upload(storage, 'large', large, 'new', wrong), { code: ErrorCodes.CHECKSUM_MISMATCH }, 'a wrong sha256 is refused');
      t.equal(await storage.probe('large'), null, 'and creates nothing');
      t.same(tempFilesIn(root), [], 'and leaves no temporary file');
      t.same(await upload(storage, 'large', large, 'new', sha256(large)), { size: large.length, sha256: sha256(large) }, 'the right one commits');
      t.ok(fs.readFileSync(path.join(root, 'large')).equals(large), 'with every byte in place');
      const more = randomBytes(9 * 1024 * 1024);
      t.same(await upload(storage, 'large', more, 'append'), { size: large.length + more.length, sha256: sha256(more) }, 'an append reports the sha256 of its own bytes');
    });

    t.test('after a failed commit the handle is spent', async (t) => {
      const { root, storage } = await setup(t);
      const handle = await storage.beginUpload({ name: 'short', size: 10, mode: 'new', sha256: null });
      await storage.writeUpload(handle, bytesOf('12345'));
      await t.rejects(storage.commitUpload(handle), { code: ErrorCodes.STORAGE_FAILED }, 'fewer bytes than announced');
      await t.rejects(storage.commitUpload(handle), { code: ErrorCodes.STORAGE_FAILED }, 'the same error again');
      await t.rejects(async () => storage.writeUpload(handle, bytesOf('x')), { code: ErrorCodes.STORAGE_FAILED }, 'writes too');
      await storage.abortUpload(handle); // a no-op, and does not throw
      t.equal(await storage.probe('short'), null);
      t.same(tempFilesIn(root), []);
    });

    t.test('received data removed behind the server: the commit fails, naming the step, and changes nothing', async (t) => {
      const { root, storage } = await setup(t);
      fs.writeFileSync(path.join(root, 'log'), 'old');
      for (const [name, mode] of [['fresh', 'new'], ['log', 'overwrite'], ['log', 'append']] as const) {
        const handle = await storage.beginUpload({ name, size: 4, mode, sha256: null });
        await storage.writeUpload(handle, bytesOf('data'));
        for (const temp of tempFilesIn(root)) fs.unlinkSync(path.join(root, temp));
        await t.rejects(storage.commitUpload(handle), { code: ErrorCodes.STORAGE_FAILED, message: 'committing the upload failed (ENOENT)' }, `${mode} to ${name}`);
      }
      t.equal(await storage.probe('fresh'), null, 'nothing is created');
      t.equal(fs.readFileSync(path.join(root, 'log'), 'utf8'), 'old', 'the file is unchanged');
      t.same(tempFilesIn(root), [], 'no temporary file and no intent record is left');
    });

    t.test("abortUpload of another storage's upload leaves that upload alone", async (t) => {
      const { root, storage } = await setup(t);
      const other = await setUpRoot(t, flavour);
      const handle = await other.storage.beginUpload({ name: 'kept', size: 4, mode: 'new', sha256: null });
      await other.storage.writeUpload(handle, bytesOf('data'));
      await storage.abortUpload(handle); // a cleanup path that got the wrong handle: never throws, removes nothing of the other's
      t.equal(tempFilesIn(other.root).length, 1, 'its received data is still there');
      t.same(await other.storage.commitUpload(handle), { size: 4, sha256: sha256(bytesOf('data')) }, 'and it commits');
      t.same(tempFilesIn(root), []);
    });

    t.test('abort discards the upload', async (t) => {
      const { root, storage } = await setup(t);
      fs.writeFileSync(path.join(root, 'target'), 'original');
      const handle = await storage.beginUpload({ name: 'target', size: 6, mode: 'overwrite', sha256: null });
      t.equal(handle.name, 'target');
      t.equal(handle.mode, 'overwrite');
      await storage.writeUpload(handle, bytesOf('abc'));
      t.equal(handle.received, 3);
      t.equal(tempFilesIn(root).length, 1, 'the data goes to a temporary file');
      t.same((await storage.list()).map((e) => e.name), ['target'], 'which is never listed');
      await storage.abortUpload(handle);
      await storage.abortUpload(handle); // idempotent
      t.equal(fs.readFileSync(path.join(root, 'target'), 'utf8'), 'original');
      t.same(tempFilesIn(root), []);
      await t.rejects(storage.commitUpload(handle), { code: ErrorCodes.INVALID_STATE }, 'an aborted upload cannot be committed');

      const committed = await storage.beginUpload({ name: 'target', size: 1, mode: 'overwrite', sha256: null });
      await storage.writeUpload(committed, bytesOf('x'));
      await storage.commitUpload(committed);
      await storage.abortUpload(committed); // after a commit: a no-op
      t.equal(fs.readFileSync(path.join(root, 'target'), 'utf8'), 'x');
    });

    t.test('open() removes the temporary files no live process owns, and undoes the appends of the dead', async (t) => {
      const dir = freshDir(t);
      const dead = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
      const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
      t.teardown(() => live.kill('SIGKILL'));
      const liveOwner = ownerOf(live.pid ?? 0);
      const plan = { name: 'x', mode: 'new', size: 5 } as const;
      const ofDead = tempFileName(`${dead}.1`, plan);
      const ofLive = tempFileName(liveOwner, plan);
      const ofSelf = tempFileName(SELF_OWNER, plan);
      const reusedPid = tempFileName(`${live.pid ?? 0}.1`, plan); // the live pid, but another process's start time
      for (const name of [ofDead, ofLive, ofSelf, reusedPid]) fs.writeFileSync(path.join(dir, name), 'data');

      const identity = (name: string) => fileIdentity(fs.statSync(path.join(dir, name), { bigint: true }));
      const intent = (name: string, owner: string, size: number, file = identity(name)) =>
        fs.writeFileSync(path.join(dir, intentFileName(name)), encodeIntent({ owner, name, file, size }));
      for (const name of ['cut', 'replaced', 'held']) fs.writeFileSync(path.join(dir, name), Buffer.alloc(100, 'x'));
      intent('cut', `${dead}.1`, 60); // a dead server's append to cut: undone
      intent('replaced', `${dead}.1`, 60, '1:1'); // the file at that name is another one now: left alone
      intent('held', liveOwner, 60); // a live server is appending: left alone
      const junk = path.join(dir, intentFileName('junk'));
      fs.writeFileSync(junk, '{"socklabAppendIntent":1,"own'); // never a whole record: nobody's, once old enough not to be one being written
      const longAgo = (Date.now() - 2 * RECORD_WRITE_MS) / 1000;
      fs.utimesSync(junk, longAgo, longAgo);
      // Uploads whose clients paused longer than that: still their servers', not records to recover.
      for (const name of [ofLive, ofSelf]) fs.utimesSync(path.join(dir, name), longAgo, longAgo);

      await flavour.open(dir);
      t.same(tempFilesIn(dir).sort(), [ofLive, ofSelf, intentFileName('held')].sort(), 'only what live processes own is left');
      t.equal(fs.statSync(path.join(dir, 'cut')).size, 60, "the dead server's append is undone");
      t.equal(fs.statSync(path.join(dir, 'replaced')).size, 100, 'a file replaced since is left alone');
      t.equal(fs.statSync(path.join(dir, 'held')).size, 100, "a live server's append is left alone");
    });

    t.test("an append waits while another live process holds the name's intent record, then takes over from it once that process is gone", async (t) => {
      const { root, storage } = await setup(t);
      fs.writeFileSync(path.join(root, 'log'), 'old');
      // Another server process, appending to log: it holds the record, then dies without finishing (its append wrote nothing yet).
      const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 400)'], { stdio: 'ignore' });
      const exited = new Promise((resolve) => other.once('exit', resolve));
      const otherOwner = ownerOf(other.pid ?? 0);
      const identity = fileIdentity(fs.statSync(path.join(root, 'log'), { bigint: true }));
      fs.writeFileSync(path.join(root, intentFileName('log')), encodeIntent({ owner: otherOwner, name: 'log', file: identity, size: 3 }));
      const began = performance.now();
      t.same(await upload(storage, 'log', bytesOf('+new'), 'append'), { size: 7, sha256: sha256(bytesOf('+new')) });
      const waited = performance.now() - began;
      await exited;
      t.ok(waited >= 200, `the append waited for the other process (${waited.toFixed(0)} ms)`);
      t.equal(fs.readFileSync(path.join(root, 'log'), 'utf8'), 'old+new');
      t.same(tempFilesIn(root), [], 'its record is gone, and ours');
    });

    t.test('open() removes stale temporary files, attach() leaves them', async (t) => {
      const dir = freshDir(t);
      fs.writeFileSync(path.join(dir, `${TEMP_PREFIX}deadbeef`), 'left by a crash');
      fs.writeFileSync(path.join(dir, `${TEMP_PREFIX}cafe`), 'another');
      fs.writeFileSync(path.join(dir, 'kept'), 'a real file');
      const attached = flavour.attach(dir);
      t.same((await attached.list()).map((e) => e.name), ['kept']);
      t.equal(tempFilesIn(dir).length, 2, 'attach() touches nothing: they may be uploads in progress');
      const storage = await flavour.open(dir);
      t.same(tempFilesIn(dir), []);
      t.same((await storage.list()).map((e) => e.name), ['kept']);
    });
  });
}

// ---------------------------------------------------------------------------
// Concurrency

/** One AsyncStorage, as the async server has; or two on one root, as two servers would be, kept apart by the intent records alone. */
for (const twoStorages of [false, true]) {
  t.test(twoStorages ? 'two AsyncStorages on one root (two servers): concurrent appends to one name all land whole' : 'AsyncStorage: concurrent appends to one name all land whole', async (t) => {
    const root = freshDir(t);
    const first = await AsyncStorage.open(root);
    const second = twoStorages ? AsyncStorage.attach(root) : first;
    // Two storages append in place to a file that exists (each then takes the name's intent record).
    if (twoStorages) fs.writeFileSync(path.join(root, 'shared.log'), '');
    const count = 20;
    const blockLength = 1000;
    await Promise.all(
      Array.from({ length: count }, (_, i) => upload(i % 2 === 0 ? first : second, 'shared.log', block(i + 1, blockLength), 'append')),
    );
    const content = fs.readFileSync(path.join(root, 'shared.log'));
    t.equal(content.length, count * blockLength);
    const values = uniformBlockValues(t, content, blockLength);
    t.same([...values].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i + 1), 'every block once');
    t.same(tempFilesIn(root), []);
  });
}

t.test('two AsyncStorages on one root (two servers) creating one absent name at once: no upload replaces the other\'s file', async (t) => {
  for (let round = 0; round < 5; round++) {
    const root = freshDir(t);
    const first = await AsyncStorage.open(root);
    const second = AsyncStorage.attach(root);
    const [a, b] = await Promise.allSettled([upload(first, 'created', block(1, 1000), 'new'), upload(second, 'created', block(2, 1000), 'new')]);
    const won = [a, b].filter((outcome) => outcome.status === 'fulfilled').length;
    t.equal(won, 1, `round ${round}: one 'new' wins`);
    const lost = [a, b].find((outcome) => outcome.status === 'rejected');
    t.match(lost?.reason, { code: ErrorCodes.EXISTS }, `round ${round}: the other is told the file exists`);
    t.ok(fs.readFileSync(path.join(root, 'created')).equals(block(a?.status === 'fulfilled' ? 1 : 2, 1000)), `round ${round}: the file is the winner's`);

    await Promise.all([upload(first, 'log', block(3, 1000), 'append'), upload(second, 'log', block(4, 1000), 'append')]);
    const values = uniformBlockValues(t, fs.readFileSync(path.join(root, 'log')), 1000);
    t.same(values.sort(), [3, 4], `round ${round}: two appends to an absent name both land`);
    t.same(tempFilesIn(root), []);
  }
});

/**
 * Two threads appending to one name, each with SyncStorage: with one
 * SharedNameLock, as the workers server runs them; or each with its own lock,
 * as two server processes on one root are, where only the intent records
 * (taken by link, one per name) keep their appends apart.
 */
for (const shared of [true, false]) {
  t.test(shared ? 'SyncStorage with SharedNameLock: appends from two worker threads all land whole' : 'SyncStorage in two threads with a lock each: the intent records alone keep their appends whole (as for two servers on one root)', async (t) => {
    const root = freshDir(t);
    // As the workers server does: the main thread opens the root once (and cleans it); the workers only attach.
    SyncStorage.open(root);
    if (!shared) fs.writeFileSync(path.join(root, 'shared.log'), ''); // each appends in place, under the name's intent record
    const lock = new SharedNameLock();
    const appendsPerWorker = 60;
    const blockLength = 500;
    const syncUrl = new URL('../../../servers/storage/sync.js', import.meta.url).href;
    const lockUrl = new URL('../../../servers/storage/shared-lock.js', import.meta.url).href;
    const workerSource = `
      const { workerData, parentPort } = require('node:worker_threads');
      (async () => {
        const { SyncStorage } = await import(workerData.syncUrl);
        const { SharedNameLock } = await import(workerData.lockUrl);
        const lock = workerData.shared ? new SharedNameLock(workerData.buffer) : undefined;
        const storage = SyncStorage.attach(workerData.root, { lock });
        for (let i = 0; i < workerData.count; i++) {
          const data = new Uint8Array(workerData.blockLength).fill(workerData.firstValue + i);
          const handle = storage.beginUpload({ name: 'shared.log', size: data.length, mode: 'append', sha256: null });
          storage.writeUpload(handle, data);
          storage.commitUpload(handle);
        }
        parentPort.postMessage('done');
      })().catch((error) => { throw error; });
    `;
    const runWorker = (firstValue: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const worker = new Worker(workerSource, {
          eval: true,
          workerData: { syncUrl, lockUrl, root, buffer: lock.buffer, shared, count: appendsPerWorker, blockLength, firstValue },
        });
        worker.once('error', reject);
        worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
      });

    await Promise.all([runWorker(1), runWorker(1 + appendsPerWorker)]);

    const content = fs.readFileSync(path.join(root, 'shared.log'));
    t.equal(content.length, 2 * appendsPerWorker * blockLength);
    const values = uniformBlockValues(t, content, blockLength);
    t.same(
      [...values].sort((a, b) => a - b),
      Array.from({ length: 2 * appendsPerWorker }, (_, i) => i + 1),
      'every block once',
    );
    // Each worker's own appends keep their order.
    t.same(values.filter((v) => v <= appendsPerWorker), Array.from({ length: appendsPerWorker }, (_, i) => i + 1));
    t.same(tempFilesIn(root), []);
    t.same([...new Int32Array(lock.buffer)].filter((slot) => slot !== 0), [], 'every lock slot is free again');
  });
}

t.test('SyncStorage in two threads with a lock each (two servers on one root), committing to the same absent names at the same instant: no upload replaces the other\'s file', async (t) => {
  const root = freshDir(t);
  SyncStorage.open(root);
  const rounds = 150;
  // Both threads meet before each commit, so that their lstat and their link of the name fall close together.
  const [ones, twos] = await inTwoServerThreads(root, {
    rounds,
    round: `
      for (const [name, mode] of [['new-' + i, 'new'], ['log-' + i, 'append']]) {
        const data = new Uint8Array(100).fill(value);
        const handle = storage.beginUpload({ name, size: data.length, mode, sha256: null });
        storage.writeUpload(handle, data);
        meet();
        try {
          storage.commitUpload(handle);
          outcomes.push('committed');
        } catch (error) {
          outcomes.push(error.code);
        }
      }`,
  });
  for (let i = 0; i < rounds; i++) {
    const [newByOne, appendByOne] = ones?.slice(2 * i, 2 * i + 2) ?? [];
    const [newByTwo, appendByTwo] = twos?.slice(2 * i, 2 * i + 2) ?? [];
    const oneWon = newByOne === 'committed' && newByTwo === ErrorCodes.EXISTS;
    if (!oneWon && !(newByTwo === 'committed' && newByOne === ErrorCodes.EXISTS)) t.fail(`new-${i}: ${newByOne} and ${newByTwo}, not one commit and one EXISTS`);
    const created = fs.readFileSync(path.join(root, `new-${i}`));
    if (!created.equals(block(oneWon ? 1 : 2, 100))) t.fail(`new-${i} is not the file of the 'new' that committed`);
    if (appendByOne !== 'committed' || appendByTwo !== 'committed') t.fail(`log-${i}: ${appendByOne} and ${appendByTwo}`);
    const appended = uniformBlockValues(t, fs.readFileSync(path.join(root, `log-${i}`)), 100);
    if (appended.sort().join() !== '1,2') t.fail(`log-${i} holds the blocks ${appended.join()}, not both appends`);
  }
  t.pass(`${rounds} rounds checked`);
  t.same(tempFilesIn(root), []);
});
