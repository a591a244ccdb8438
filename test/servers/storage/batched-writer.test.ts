/**
 * The async server's write-behind, over real files: every byte lands once, in
 * order, at its offset, whatever the sizes of the pieces and of the batches,
 * even when the file system takes a batch in several short writes; past its
 * bound in flight the writer asks the caller to wait, and lets it go on once
 * the writes land; a failed write is reported, never lost. Written data is
 * flushed to the disk in the background (fdatasync) at its own pace, one flush
 * at a time, and a flush that fails is reported like a failed write.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { BatchedFileWriter } from '../../../servers/storage/batched-writer.js';
import { errnoError } from './flavours.js';
import { replaceCallbackCall, type Callback } from '../../helpers/fs-callbacks.cjs';

/** A descriptor for `filePath`, closed at the test's end. */
function openFor(t: Test, filePath: string, flags: string): number {
  const fd = fs.openSync(filePath, flags);
  t.teardown(() => fs.closeSync(fd));
  return fd;
}

/**
 * Stands in for node:fs's callback `method` (which the writer calls through
 * storage/fs-calls.ts) on descriptor `fd` only, until the test's end: `instead`
 * gets the call's arguments, its callback, and the real call.
 */
function interceptOn(
  t: Test,
  method: 'writev' | 'fdatasync',
  fd: number,
  instead: (args: unknown[], callback: Callback, real: (...args: unknown[]) => void) => void,
): void {
  t.teardown(replaceCallbackCall(method, (args, callback, real) => (args[0] === fd ? instead(args, callback, real) : real(...args, callback))));
}

function freshFile(t: Test, content = ''): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-writer-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'upload');
  fs.writeFileSync(file, content);
  return file;
}

/** Pieces of 1 to 7 bytes, each filled with its own index, so a byte out of place or lost shows. */
function pieces(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(1 + (i % 7), i & 0xff));
}

async function writeAll(writer: BatchedFileWriter, all: readonly Buffer[]): Promise<void> {
  for (const piece of all) {
    const wait = writer.write(piece);
    if (wait !== undefined) await wait;
  }
  await writer.settle();
}

t.test('every byte lands once, in order, after what the file held, whatever the batch and piece sizes', async (t) => {
  for (const batchBytes of [1, 10, 64, 1024 * 1024]) {
    const filePath = freshFile(t, 'HEAD:');
    const file = openFor(t, filePath, 'r+');
    const writer = new BatchedFileWriter(file, 5, { batchBytes, maxInFlightBytes: 25, syncEveryBytes: 100 });
    const all = pieces(300);
    await writeAll(writer, all);
    t.equal(writer.write(new Uint8Array(0)), undefined, `batches of ${batchBytes}: an empty write is nothing to wait for`);
    await writer.settle();
    t.ok(fs.readFileSync(filePath).equals(Buffer.concat([Buffer.from('HEAD:'), ...all])), `batches of ${batchBytes}: the file is whole`);
  }
});

t.test('a batch the file system takes in several short writes still lands whole', async (t) => {
  const filePath = freshFile(t);
  const file = openFor(t, filePath, 'r+');
  let calls = 0;
  // At most 3 bytes a call, across the buffers' edges: what a short writev does.
  interceptOn(t, 'writev', file, ([, buffers, position], callback) => {
    calls++;
    const part = Buffer.concat(buffers as Uint8Array[]).subarray(0, 3);
    fs.write(file, part, 0, part.length, position as number, callback);
  });
  const writer = new BatchedFileWriter(file, 0, { batchBytes: 16, maxInFlightBytes: 64, syncEveryBytes: 0 });
  const all = pieces(60);
  await writeAll(writer, all);
  t.ok(fs.readFileSync(filePath).equals(Buffer.concat(all)), 'the file is whole');
  t.ok(calls > all.length / 3, `in many short writes (${calls})`);
});

t.test('past its bound in flight, write asks the caller to wait, until writes land', async (t) => {
  const filePath = freshFile(t);
  const file = openFor(t, filePath, 'r+');
  const writer = new BatchedFileWriter(file, 0, { batchBytes: 4, maxInFlightBytes: 8, syncEveryBytes: 0 });
  t.equal(writer.write(Buffer.alloc(4, 1)), undefined, 'a full batch goes: 4 bytes in flight');
  t.equal(writer.write(Buffer.alloc(4, 2)), undefined, '8 in flight: at the bound, not past it');
  const wait = writer.write(Buffer.alloc(4, 3));
  t.type(wait, Promise, '12 in flight: wait');
  await wait; // a hang here: the caller is never let go
  await writer.settle();
  t.equal(writer.write(Buffer.alloc(4, 4)), undefined, 'once the writes landed, no more waiting');
  await writer.settle();
  t.ok(fs.readFileSync(filePath).equals(Buffer.concat([1, 2, 3, 4].map((value) => Buffer.alloc(4, value)))));
});

t.test('a write that fails is reported by settle and by every later write; a caller waiting for room goes on', async (t) => {
  const filePath = freshFile(t);
  const readOnly = openFor(t, filePath, 'r');
  const writer = new BatchedFileWriter(readOnly, 0, { batchBytes: 4, maxInFlightBytes: 2, syncEveryBytes: 0 });
  const wait = writer.write(Buffer.alloc(4, 1));
  t.type(wait, Promise, 'past the bound');
  await wait; // never a hang: the failed write leaves the flight
  await t.rejects(writer.settle(), { code: 'EBADF' }, 'settle reports the failure');
  t.throws(() => writer.write(Buffer.alloc(1)), { code: 'EBADF' }, 'and so does the next write');
  await writer.discard();
  t.equal(fs.statSync(filePath).size, 0);
});

t.test('discard (an abort) drops what is queued and returns once what is in flight has landed, so the file can be closed', async (t) => {
  const filePath = freshFile(t);
  const file = openFor(t, filePath, 'r+');
  const writer = new BatchedFileWriter(file, 0, { batchBytes: 1024 * 1024, maxInFlightBytes: 64 * 1024 * 1024, syncEveryBytes: 0 });
  for (let i = 0; i < 8; i++) writer.write(Buffer.alloc(1024 * 1024, i + 1));
  writer.write(Buffer.alloc(10, 0xff));
  await writer.discard();
  t.equal(fs.statSync(filePath).size, 8 * 1024 * 1024, 'the eight batches in flight have landed');
  await writer.settle();
  t.equal(fs.statSync(filePath).size, 8 * 1024 * 1024, 'the queued bytes were dropped');
});

/**
 * The real file, whose fdatasync the test holds and then lets go, or fails: a
 * failed writeback is reported by Linux once, to whichever sync asks first,
 * so a background flush that fails unheard would let the commit's own fsync
 * succeed over lost data.
 */
function flushWatchedFile(
  t: Test,
  file: number,
): {
  readonly syncs: () => number;
  /** Resolves once `count` writes have landed, their callbacks run. */
  landed(count: number): Promise<void>;
  /** Holds the next fdatasync until its outcome is given; resolves once it is asked for. */
  holdNextSync(): Promise<{ finish(error?: Error): void }>;
} {
  let syncs = 0;
  let writes = 0;
  const writeWaiters: { readonly count: number; readonly resolve: () => void }[] = [];
  let held: ((sync: { finish(error?: Error): void }) => void) | null = null;
  interceptOn(t, 'writev', file, (args, callback, writev) => {
    writev(...args, (error: NodeJS.ErrnoException | null, bytesWritten: number) => {
      writes++;
      for (const waiter of writeWaiters) if (writes >= waiter.count) setImmediate(waiter.resolve);
      callback(error, bytesWritten);
    });
  });
  interceptOn(t, 'fdatasync', file, (args, callback, fdatasync) => {
    syncs++;
    const asked = held;
    if (asked === null) return fdatasync(...args, callback);
    held = null;
    asked({ finish: (error) => (error === undefined ? fdatasync(...args, callback) : callback(error as NodeJS.ErrnoException)) });
  });
  return {
    syncs: () => syncs,
    landed: (count) => new Promise((resolve) => (writes >= count ? setImmediate(resolve) : writeWaiters.push({ count, resolve }))),
    holdNextSync: () => new Promise((resolve) => (held = resolve)),
  };
}

t.test('written data is flushed in the background once every syncEveryBytes, and never with 0', async (t) => {
  for (const [syncEveryBytes, expected] of [[30, 3], [0, 0]] as const) {
    const filePath = freshFile(t);
    const file = openFor(t, filePath, 'r+');
    const watched = flushWatchedFile(t, file);
    const writer = new BatchedFileWriter(file, 0, { batchBytes: 10, maxInFlightBytes: 100, syncEveryBytes });
    const all = Array.from({ length: 10 }, (_, i) => Buffer.alloc(10, i + 1));
    // Each batch lands before the next, so the flushes fall at fixed points: after 30, 60 and 90 bytes.
    for (const piece of all) {
      writer.write(piece);
      await writer.settle();
    }
    t.equal(watched.syncs(), expected, `syncEveryBytes ${syncEveryBytes}: ${expected} flushes for 100 bytes`);
    t.ok(fs.readFileSync(filePath).equals(Buffer.concat(all)), `syncEveryBytes ${syncEveryBytes}: the file is whole`);
  }
});

/** A writer flushing after every 10 bytes, whose first 10 bytes (all 1) are written and their flush held. */
async function writerWithFlushHeld(t: Test): Promise<{
  readonly filePath: string;
  readonly watched: ReturnType<typeof flushWatchedFile>;
  readonly writer: BatchedFileWriter;
  readonly sync: { finish(error?: Error): void };
}> {
  const filePath = freshFile(t);
  const file = openFor(t, filePath, 'r+');
  const watched = flushWatchedFile(t, file);
  const writer = new BatchedFileWriter(file, 0, { batchBytes: 10, maxInFlightBytes: 100, syncEveryBytes: 10 });
  const held = watched.holdNextSync();
  writer.write(Buffer.alloc(10, 1));
  return { filePath, watched, writer, sync: await held };
}

t.test('while a background flush runs, no second one starts; settle and discard wait for it', async (t) => {
  const { filePath, watched, writer, sync } = await writerWithFlushHeld(t);
  for (let i = 2; i <= 4; i++) writer.write(Buffer.alloc(10, i));
  let discarded = false;
  const discarding = writer.discard().then(() => (discarded = true));
  // The three batches land meanwhile (their writes are real), each past syncEveryBytes.
  await watched.landed(4);
  t.equal(watched.syncs(), 1, 'one flush at a time');
  t.notOk(discarded, 'discard waits for the flush, so the file is not closed under it');
  sync.finish();
  await discarding;
  t.ok(fs.readFileSync(filePath).equals(Buffer.concat([1, 2, 3, 4].map((value) => Buffer.alloc(10, value)))));
});

t.test('a background flush that fails is reported by settle, even when it fails after settle began, and by every later write', async (t) => {
  const { watched, writer, sync } = await writerWithFlushHeld(t);
  await watched.landed(1); // nothing in flight but the flush: settle has only that to wait for
  const settled = writer.settle();
  sync.finish(errnoError('EIO', 'fdatasync'));
  await t.rejects(settled, { code: 'EIO' }, 'settle reports the failed flush');
  t.throws(() => writer.write(Buffer.alloc(1)), { code: 'EIO' }, 'and so does the next write');
});
