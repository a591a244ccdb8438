/**
 * The blocking flavour's background flushing (background-flush.ts, sync.ts):
 * a large upload is flushed on the flusher thread while it is written,
 * through a descriptor of its own that is closed by the commit or the abort,
 * and none of that changes what is stored. Real files, the real thread.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { BackgroundFlusher } from '../../../servers/storage/background-flush.js';
import { BACKGROUND_FLUSH_BYTES } from '../../../servers/storage/batched-writer.js';
import { SyncStorage } from '../../../servers/storage/sync.js';
import { freshDir, plan, tempFilesIn } from './flavours.js';

const MiB = 1024 * 1024;
const SIZE = 3 * BACKGROUND_FLUSH_BYTES + 5 * MiB;

function openDescriptors(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

async function untilReady(flusher: BackgroundFlusher): Promise<void> {
  for (let waited = 0; !flusher.ready; waited += 10) {
    if (waited > 20_000) throw new Error('the flusher thread did not start within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Writes SIZE bytes in 1 MiB pieces (piece i filled with i), returning their sha256. */
function writeAll(storage: SyncStorage, handle: ReturnType<SyncStorage['beginUpload']>): string {
  const hash = createHash('sha256');
  for (let written = 0, i = 0; written < SIZE; written += MiB, i++) {
    const piece = Buffer.alloc(Math.min(MiB, SIZE - written), i & 0xff);
    hash.update(piece);
    storage.writeUpload(handle, piece);
  }
  return hash.digest('hex');
}

t.test('a large upload is flushed in the background as it is written; the commit closes the flushing descriptor and stores every byte', async (t) => {
  const root = freshDir(t);
  const storage = SyncStorage.open(root);
  const flusher = BackgroundFlusher.forThisThread();
  await untilReady(flusher); // its thread's own descriptors (an event loop's) are not the upload's
  const before = openDescriptors();
  const handle = storage.beginUpload(plan('big.bin', SIZE, 'new'));
  const flushedBefore = flusher.flushesDone;
  const sha256 = writeAll(storage, handle);
  t.ok(openDescriptors() >= before + 2, 'the upload holds its own descriptor and one for flushing');
  t.same(storage.commitUpload(handle), { size: SIZE, sha256 });
  t.ok(flusher.flushesDone - flushedBefore >= 1, `flushed in the background while written (${flusher.flushesDone - flushedBefore} flushes)`);
  t.equal(openDescriptors(), before, 'both descriptors are closed after the commit');
  t.equal(createHash('sha256').update(fs.readFileSync(path.join(root, 'big.bin'))).digest('hex'), sha256, 'the file holds every byte');
  t.same(tempFilesIn(root), []);
});

t.test('an aborted large upload closes its flushing descriptor too, so its space is freed at once', async (t) => {
  const root = freshDir(t);
  const storage = SyncStorage.open(root);
  await untilReady(BackgroundFlusher.forThisThread());
  const before = openDescriptors();
  const handle = storage.beginUpload(plan('gone.bin', SIZE, 'new'));
  writeAll(storage, handle);
  storage.abortUpload(handle);
  t.same(fs.readdirSync(root), [], 'nothing is left in the root');
  // A flush under way when the abort came closes the descriptor itself once done: the abort does not wait for the disk.
  await eventually(() => openDescriptors() === before, 'no descriptor is left on the removed temporary file');
  t.pass('no descriptor is left on the removed temporary file');
});

t.test('a flush that fails is reported at finish(), for that descriptor only', async (t) => {
  const flusher = BackgroundFlusher.forThisThread();
  await untilReady(flusher);
  const device = fs.openSync('/dev/null', 'r'); // fdatasync on a character device: EINVAL
  t.teardown(() => fs.closeSync(device));
  flusher.flush(device);
  t.same(flusher.finish(device), { errno: -os.constants.errno.EINVAL, handedOver: false }, 'the errno of the failed fdatasync');
  t.same(flusher.finish(device), { errno: 0, handedOver: false }, 'reported once');
});

t.test("a failed flush is never blamed on another descriptor: not on the next file to get its number, not on one finished meanwhile", async (t) => {
  const flusher = BackgroundFlusher.forThisThread();
  await untilReady(flusher);
  const dir = freshDir(t);
  // An abort after a failed flush: the number goes back to the system, and the next file opened may get it.
  const device = fs.openSync('/dev/null', 'r');
  const flushed = flusher.flushesDone;
  flusher.flush(device);
  // Done and idle: the count goes up a moment before the job is let go (a hand-over in between would still be taken).
  await eventually(() => flusher.flushesDone > flushed && flusher.idle, 'the failing flush is done');
  t.equal(flusher.handOver(device), false, 'its flush is done: the aborting caller closes it');
  fs.closeSync(device);
  const next = fs.openSync(path.join(dir, 'next.bin'), 'w+');
  t.teardown(() => fs.closeSync(next));
  flusher.flush(next);
  t.same(flusher.finish(next), { errno: 0, handedOver: false }, `the next file on descriptor ${next} (the aborted one was ${device}) is not failed by the aborted upload's flush`);

  // Two uploads in one thread: finishing one while the other's flush runs must not swallow that flush's failure.
  const other = fs.openSync(path.join(dir, 'other.bin'), 'w+');
  t.teardown(() => fs.closeSync(other));
  let lost = 0;
  for (let round = 0; round < 300; round++) {
    const failing = fs.openSync('/dev/null', 'r');
    flusher.flush(failing);
    flusher.finish(other);
    if (flusher.finish(failing).errno === 0) lost++;
    fs.closeSync(failing);
  }
  t.equal(lost, 0, 'every failing flush reported to its own descriptor, in 300 rounds');
});

t.test('a descriptor handed over while its flush runs is closed by the flusher thread when done', async (t) => {
  const flusher = BackgroundFlusher.forThisThread();
  await untilReady(flusher);
  const file = path.join(freshDir(t), 'dirty.bin');
  // 128 MiB of dirty pages take a disk tens of ms to flush, far longer than the microseconds until the hand-over; but
  // where fdatasync has nothing to wait for (a tmpfs TMPDIR) the woken thread may be done first: then close and again.
  let reader = -1;
  let handedOver = false;
  for (let attempt = 0; attempt < 50 && !handedOver; attempt++) {
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < 128; i++) fs.writeSync(fd, Buffer.alloc(MiB, i));
    reader = fs.openSync(file, 'r');
    fs.closeSync(fd);
    flusher.flush(reader);
    handedOver = flusher.handOver(reader);
    if (!handedOver) fs.closeSync(reader); // already done: the thread is idle, the caller closes
  }
  t.ok(handedOver, 'handed over while its flush runs');
  await eventually(() => !isOpen(reader), 'the flusher thread closes the descriptor handed over');
  t.pass('closed by the flusher thread once its flush was done');
});

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > 20_000) throw new Error(`not within 20 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

t.test('small uploads and appends are never flushed in the background', async (t) => {
  const root = freshDir(t);
  const storage = SyncStorage.open(root);
  const flusher = BackgroundFlusher.forThisThread();
  await untilReady(flusher);
  const flushedBefore = flusher.flushesDone;
  const small = storage.beginUpload(plan('small.bin', BACKGROUND_FLUSH_BYTES, 'new'));
  storage.writeUpload(small, Buffer.alloc(BACKGROUND_FLUSH_BYTES, 1));
  storage.commitUpload(small);
  const append = storage.beginUpload(plan('small.bin', SIZE, 'append'));
  writeAll(storage, append);
  storage.commitUpload(append);
  t.equal(flusher.flushesDone, flushedBefore, 'no flush: an upload of at most one flush step, and an append (written again in place)');
  t.equal(fs.statSync(path.join(root, 'small.bin')).size, BACKGROUND_FLUSH_BYTES + SIZE);
});

t.test('finish() returns at once when no flush of that descriptor is under way', async (t) => {
  const flusher = BackgroundFlusher.forThisThread();
  await untilReady(flusher);
  const started = performance.now();
  t.same(flusher.finish(987_654), { errno: 0, handedOver: false });
  t.ok(performance.now() - started < 1000, 'no wait for a descriptor never flushed');
  t.equal(flusher.handOver(987_654), false, 'nothing to hand over: the caller closes it');
});
