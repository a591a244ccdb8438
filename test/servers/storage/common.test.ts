/** The pure helpers both storage flavours share, and the name locks. */
import os from 'node:os';
import t from 'tap';
import { ErrorCodes, StorageError } from '../../../protocol/errors.js';
import {
  compareNamesBytewise,
  isTempName,
  decodeIntent,
  encodeIntent,
  nameKey,
  parseTempName,
  pathInRoot,
  pendingUploads,
  refuseIfFileWouldPassLimit,
  tempFileName,
  wouldExceedQuota,
  sortedForListing,
  toStorageError,
  visibleRoom,
  FreeSpaceEstimate,
  promisesOf,
  stillToWrite,
} from '../../../servers/storage/common.js';
import { InThreadNameLock } from '../../../servers/storage/sync.js';
import { NameQueueLock } from '../../../servers/storage/async.js';
import { SharedAdmissions } from '../../../servers/storage/shared-admissions.js';
import { SharedNameLock } from '../../../servers/storage/shared-lock.js';
import { TEMP_PREFIX } from '../../../servers/storage/types.js';
import { errnoError } from './flavours.js';

t.test('toStorageError maps errno codes to stable codes, and to the text the client reads after the reply code', async (t) => {
  const cases: [keyof typeof os.constants.errno, string, string, string][] = [
    ['ENOSPC', 'not-found', ErrorCodes.NO_SPACE, 'out of space'],
    ['EDQUOT', 'failure', ErrorCodes.NO_SPACE, 'over quota'],
    ['ENOENT', 'not-found', ErrorCodes.NOT_FOUND, 'no such file'],
    ['ELOOP', 'not-found', ErrorCodes.NOT_FOUND, 'no such file'],
    ['ENOTDIR', 'not-found', ErrorCodes.NOT_FOUND, 'no such file'],
    ['ENOENT', 'failure', ErrorCodes.STORAGE_FAILED, 'doing it failed (ENOENT)'],
    ['EIO', 'not-found', ErrorCodes.STORAGE_FAILED, 'doing it failed (EIO)'],
    ['EACCES', 'failure', ErrorCodes.STORAGE_FAILED, 'doing it failed (EACCES)'],
    // Out of descriptors: busy for a while, not broken (450 before a PUT's data).
    ['EMFILE', 'not-found', ErrorCodes.BUSY, 'too many files open on the server (EMFILE)'],
    ['ENFILE', 'failure', ErrorCodes.BUSY, 'too many files open on the server (ENFILE)'],
  ];
  for (const [errno, missing, code, message] of cases) {
    const mapped = toStorageError(errnoError(errno, 'open', "something, open '/secret/path'"), 'doing it', missing as 'not-found' | 'failure');
    t.ok(mapped instanceof StorageError, `${errno} becomes a StorageError`);
    t.equal((mapped as StorageError).code, code, `${errno} (${missing}) → ${code}`);
    t.equal((mapped as StorageError).message, message, `saying "${message}", which does not reveal paths`);
  }
  const duringCommit = toStorageError(errnoError('EMFILE', 'open', "something, open '/secret/path'"), 'committing the upload', 'failure', 'failure');
  t.match(duringCommit, { code: ErrorCodes.STORAGE_FAILED, message: 'committing the upload failed (EMFILE)' }, 'out of descriptors where something already happened: a failure, said as PROTOCOL.md\'s "Durable" says');
  const already = new StorageError(ErrorCodes.EXISTS, 'x exists');
  t.equal(toStorageError(already, 'doing it', 'failure'), already, 'a StorageError passes through');
  const bug = new TypeError('a bug');
  t.equal(toStorageError(bug, 'doing it', 'failure'), bug, 'a non-fs error passes through unchanged');
});

t.test('names', async (t) => {
  t.ok(compareNamesBytewise('\uFF21', '\u{1D400}') < 0, 'UTF-8 order beyond the BMP');
  t.ok('\uFF21' > '\u{1D400}', 'where UTF-16 order says otherwise');
  t.equal(compareNamesBytewise('a', 'a'), 0);
  t.ok(compareNamesBytewise('B', 'a') < 0);
  const mtime = new Date(0);
  t.same(
    sortedForListing([{ name: 'b', size: 1, mtime }, null, { name: 'a', size: 2, mtime }]).map((e) => e.name),
    ['a', 'b'],
  );
  const temp = tempFileName('123.456', { name: 'notes.txt', mode: 'append', size: 4096 });
  t.match(temp, new RegExp(`^${TEMP_PREFIX.replace(/[.]/g, '\\.')}123\\.456-[0-9a-f]{16}-a4096-${nameKey('notes.txt')}$`));
  t.ok(isTempName(temp));
  t.not(tempFileName('123.456', { name: 'notes.txt', mode: 'append', size: 4096 }), temp, 'random');
  // The random bits come from draws of 512 names: across several draws, every name is still new and well formed.
  const many = Array.from({ length: 1500 }, () => tempFileName('123.456', { name: 'notes.txt', mode: 'new', size: 1 }));
  t.equal(new Set(many).size, many.length, '1500 names, none twice');
  t.ok(
    many.every((name) => parseTempName(name) !== null),
    'each one parses',
  );
  t.same(parseTempName(temp), { fileName: temp, owner: '123.456', mode: 'append', reserved: 4096, key: nameKey('notes.txt') });
  t.equal(parseTempName(`${TEMP_PREFIX}planted`), null, 'a temporary file of unknown origin says nothing');
  for (const mode of ['new', 'overwrite', 'append'] as const) {
    t.match(parseTempName(tempFileName('7.8', { name: 'f', mode, size: 12 })), { owner: '7.8', mode, reserved: 12 }, `${mode}: the name says its mode and its reservation`);
  }
  // A user's file may hold the same characters after a valid first letter: it is theirs, never an upload to count or clean up.
  t.equal(parseTempName(`notes${temp}`), null, "a user's file named like a temporary file, after a letter");
  t.equal(parseTempName(`${temp}.bak`), null, 'or with more after it');
  t.equal(pathInRoot('/root', 'ok.txt'), '/root/ok.txt');
  t.throws(() => pathInRoot('/root', '../etc'), { code: ErrorCodes.BAD_NAME });
});

t.test('visibleRoom', async (t) => {
  t.equal(visibleRoom({ bavail: 10, bsize: 4096, blocks: 100 }), 40_960);
  t.equal(visibleRoom({ bavail: 0, bsize: 4096, blocks: 0 }), Number.POSITIVE_INFINITY, 'a file system that reports nothing limits nothing');
});

t.test('FreeSpaceEstimate: a recent reading admits what fits beside every upload in progress, and nothing else', async (t) => {
  const space = new FreeSpaceEstimate(null, 1000);
  const reading = (bavail: number, promised: Record<string, number> = {}, blocks = 100) => ({
    stats: { bavail, bsize: 4096, blocks },
    promised: new Map(Object.entries(promised)),
  });
  t.equal(space.admit('a', 1, 0), false, 'no reading yet: read first');
  space.record(reading(10), space.startReading(0));
  t.equal(space.admit('a', 30_000, 10), true, 'fits in the reading');
  t.equal(space.admit('b', 10_961, 20), false, 'the upload admitted before is counted: 10 960 bytes are left');
  t.equal(space.admit('b', 10_960, 20), true, 'exactly what is left');
  t.equal(space.admit('c', 1, 30), false, 'nothing left');
  t.equal(space.admit('a', 30_000, 30), true, 'an upload asked about again is counted once, not twice');
  space.record(reading(10, { x: 40_000 }), space.startReading(40));
  t.equal(space.admit('a', 961, 50), false, 'an upload in progress the reading found (another thread\'s, another server\'s) keeps its promise');
  t.equal(space.admit('a', 960, 50), true, '...and the rest is free');
  space.record(reading(10, { a: 40_000 }), space.startReading(60));
  t.equal(space.admit('a', 40_960, 70), true, 'the asking upload\'s own temporary file, found by the reading, is not counted against it');
  space.record(reading(10), space.startReading(2000));
  t.equal(space.admit('d', 1, 3001), false, 'a reading older than the reuse time admits nothing: read again');
  space.record(reading(0, { x: 10 ** 15 }, 0), space.startReading(4000));
  t.equal(space.admit('e', Number.MAX_SAFE_INTEGER, 4001), true, 'a file system that reports nothing refuses nothing');
  space.record(reading(10, { x: 40_960 }), space.startReading(5000));
  t.equal(space.admit('f', 0, 5001), true, 'nothing to write always fits, even with no room left');
});

/** A reading of 40 960 bytes free (10 blocks of 4096), with the given uploads in progress. */
function reading(promised: Record<string, number> = {}) {
  return { stats: { bavail: 10, bsize: 4096, blocks: 100 }, promised: new Map(Object.entries(promised)) };
}

/** Two threads' estimates on one ledger, as in a workers server, reusing a reading for 1000 ms. */
function twoThreads() {
  const ledger = new SharedAdmissions();
  return { ledger, thread1: new FreeSpaceEstimate(ledger, 1000), thread2: new FreeSpaceEstimate(new SharedAdmissions(ledger.buffer), 1000) };
}

t.test('FreeSpaceEstimate: an upload admitted while a reading ran, which its readdir missed, is kept', async (t) => {
  const space = new FreeSpaceEstimate(null, 1000);
  space.record(reading({}), space.startReading(0));
  t.equal(space.admit('early', 10_000, 100), true, 'admitted before the next reading started');
  t.equal(space.admit('late', 20_000, 300), true, 'admitted while the next reading ran');
  space.record(reading({ early: 10_000 }), space.startReading(200)); // started at 200: saw "early", not "late"
  t.equal(space.admit('more', 10_961, 400), false, 'both still count: 40 960 - 10 000 - 20 000 = 10 960 left');
  t.equal(space.admit('more', 10_960, 400), true);
  space.record(reading({}), space.startReading(500));
  t.equal(space.admit('again', 40_960, 600), true, 'a reading that started after both admissions is the truth: both done');
});

t.test('FreeSpaceEstimate with no reuse: only a reading just taken admits', async (t) => {
  const space = new FreeSpaceEstimate(null, 0);
  space.record({ stats: { bavail: 10, bsize: 4096, blocks: 100 }, promised: new Map() }, space.startReading(1000));
  t.equal(space.admit('a', 1, 1000), true, 'at the reading\'s own start');
  t.equal(space.admit('b', 1, 1001), false, 'a millisecond later: read again');
});

t.test('FreeSpaceEstimate with a ledger: what the other threads asked about since the reading counts, once', async (t) => {
  const { ledger, thread1, thread2 } = twoThreads();
  thread1.record(reading(), thread1.startReading(0));
  thread2.record(reading(), thread2.startReading(0));
  t.equal(thread1.admit('a', 30_000, 10), true, 'thread 1 admits 30 000 of 40 960');
  t.equal(ledger.total(), 30_000, 'the ledger has it');
  t.equal(thread1.admit('a', 30_000, 15), true, 'its own upload asked about again is not counted twice');
  t.equal(ledger.total(), 30_000, '...nor put on the ledger twice');
  t.equal(thread2.admit('b', 20_000, 20), false, "thread 2, on its own reading from before, counts thread 1's admission: refused (read again)");
  t.equal(ledger.total(), 50_000, 'a refused upload is on the ledger too (it was put there before the check)');
  t.equal(thread1.admit('c', 1, 30), false, "thread 1 counts thread 2's until its next reading: towards a fresh look");

  // A reading taken after the upload's own temporary file was made saw the others' files: not added on top.
  const start = thread2.startReading(40);
  thread1.record(reading(), thread1.startReading(40));
  t.equal(thread1.admit('d', 5_000, 41), true, 'thread 1, on a fresh reading, admits 5 000 while thread 2 reads');
  thread2.record(reading({ a: 30_000, d: 5_000 }), start);
  t.equal(thread2.admit('b', 5_960, 42, true), true, 'read after its own file: the reading alone decides (it saw d)');
  t.equal(thread2.admit('e', 1, 43), false, 'later asks on that reading count the ledger again (d twice: towards a fresh look)');

  thread2.record(reading(), thread2.startReading(1990));
  t.equal(thread2.admit('f', 10_000, 1995), true);
  const late = thread1.startReading(2000);
  thread1.record(reading({ f: 10_000 }), late);
  t.equal(thread1.admit('g', 30_960, 2002), true, 'an admission before a reading started counts once, by its temporary file');
  t.equal(thread1.admit('h', 1, 2003), false, 'and nothing is left');
});

t.test('FreeSpaceEstimate with a ledger: an upload read afresh and one on an older reading, at once, are not both admitted', async (t) => {
  // Thread 1's upload x finds its reading stale, so it reads afresh; its readdir runs before thread 2 makes y's
  // temporary file, and thread 2 asks about y on a reading from before x. Each fits alone (30 000 of 40 960), not both.
  const { thread1, thread2 } = twoThreads();
  thread2.record(reading(), thread2.startReading(0));
  t.equal(thread1.admit('x', 30_000, 10), false, 'thread 1 has no recent reading: it must read afresh');
  const fresh = thread1.startReading(11);
  thread1.record(reading({ x: 30_000 }), fresh); // its readdir saw x, not y (not made yet)
  t.equal(thread2.admit('y', 30_000, 12), false, 'thread 2 sees x on the ledger, put there before thread 1 read: refused, so it reads afresh (and sees x)');
  t.equal(thread1.admit('x', 30_000, 13, true), true, 'thread 1 admits x on its fresh reading');
});

t.test('promisesOf: upper bounds when the files were not looked at; less what each wrote when they were; nothing for one gone', async (t) => {
  const pending = [
    { fileName: 'a', owner: '1.1', mode: 'new' as const, reserved: 100, key: 'k' },
    { fileName: 'b', owner: '1.1', mode: 'append' as const, reserved: 50, key: 'k' },
  ];
  t.same([...promisesOf(pending, null)], [['a', 100], ['b', 100]]);
  t.same([...promisesOf(pending, [40, 10])], [['a', 60], ['b', 90]]);
  t.same([...promisesOf(pending, [40, null])], [['a', 60]], 'b committed or discarded since the readdir: it promises nothing');
});

t.test('stillToWrite: what an upload reserved, twice for an append, less what it wrote', async (t) => {
  const pending = (mode: 'new' | 'overwrite' | 'append', reserved: number) => ({ fileName: 'f', owner: '1.1', mode, reserved, key: 'k' });
  t.equal(stillToWrite(pending('new', 100), null), 100, 'not looked at: all of it (an upper bound)');
  t.equal(stillToWrite(pending('overwrite', 100), 30), 70);
  t.equal(stillToWrite(pending('append', 100), 30), 170, 'an append lands twice: received, then at the file\'s end');
  t.equal(stillToWrite(pending('new', 100), 150), 0, 'never below nothing');
});

t.test('InThreadNameLock refuses a nested take of the same name', async (t) => {
  const lock = new InThreadNameLock();
  t.equal(lock.withLock('a', () => lock.withLock('b', () => 42)), 42, 'different names nest');
  t.throws(() => lock.withLock('a', () => lock.withLock('a', () => 0)), { code: ErrorCodes.INVALID_STATE });
  t.equal(lock.withLock('a', () => 'free again'), 'free again');
});

t.test('NameQueueLock serialises one name, not different names', async (t) => {
  const lock = new NameQueueLock();
  const events: string[] = [];
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const job = (name: string, id: string, ms: number) =>
    lock.withLock(name, async () => {
      events.push(`${id}+`);
      await sleep(ms);
      events.push(`${id}-`);
      return id;
    });
  const failing = lock.withLock('x', async () => {
    events.push('f+');
    throw new Error('boom');
  });
  const results = await Promise.allSettled([failing, job('x', 'a', 20), job('x', 'b', 1), job('y', 'c', 1)]);
  t.equal(results[0]?.status, 'rejected', 'a failing holder rejects its own call');
  t.same(
    results.slice(1).map((r) => (r.status === 'fulfilled' ? r.value : null)),
    ['a', 'b', 'c'],
  );
  const xEvents = events.filter((e) => !e.startsWith('c'));
  t.same(xEvents, ['f+', 'a+', 'a-', 'b+', 'b-'], 'one after the other, in call order, despite the failure');
  t.ok(events.indexOf('c-') < events.indexOf('a-'), 'another name does not wait');
  t.equal((lock as unknown as { waiting: Map<string, unknown> }).waiting.size, 0, 'drained queues are forgotten');
});

t.test('NameQueueLock: a holder that throws before returning a promise still frees the name', async (t) => {
  const lock = new NameQueueLock();
  const throwing = lock.withLock('x', (): Promise<string> => {
    throw new Error('thrown at once');
  });
  await t.rejects(throwing, { message: 'thrown at once' }, 'the throw is its own call\'s rejection');
  const queued = lock.withLock('x', () => lock.withLock('y', async () => 'nested, other name'));
  t.equal(await queued, 'nested, other name', 'the next caller of the name runs');
  t.equal((lock as unknown as { waiting: Map<string, unknown> }).waiting.size, 0, 'and the name is forgotten');
});

t.test('NameQueueLock: a caller that comes while the second holder runs waits for it, though the first has left', async (t) => {
  const lock = new NameQueueLock();
  const running = new Set<string>();
  const overlaps: string[] = [];
  const gates = new Map<string, () => void>();
  const started = new Map<string, Promise<void>>();
  const job = (id: string): Promise<void> => {
    let markStarted!: () => void;
    started.set(id, new Promise((resolve) => (markStarted = resolve)));
    return lock.withLock('x', async () => {
      if (running.size > 0) overlaps.push(`${id} ran beside ${[...running].join(', ')}`);
      running.add(id);
      markStarted();
      await new Promise<void>((resolve) => gates.set(id, resolve));
      running.delete(id);
    });
  };
  const first = job('first');
  const second = job('second');
  await started.get('first');
  gates.get('first')!();
  await first;
  await started.get('second');
  const third = job('third');
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.same([...running], ['second'], 'the third waits');
  gates.get('second')!();
  await second;
  await started.get('third');
  gates.get('third')!();
  await third;
  t.same(overlaps, [], 'never two holders at once');
});

t.test('SharedNameLock', async (t) => {
  const lock = new SharedNameLock(undefined, 8);
  t.equal(lock.slotCount, 8);
  const twin = new SharedNameLock(lock.buffer);
  t.equal(twin.slotCount, 8, 'the slot count comes with the buffer');
  t.equal(twin.slotOf('заметки'), lock.slotOf('заметки'), 'same name, same slot');
  t.equal(lock.withLock('a', () => 'ran'), 'ran');
  t.throws(() => lock.withLock('a', () => twin.withLock('a', () => 0)), { code: ErrorCodes.INVALID_STATE }, 'nested take fails, not deadlocks');
  t.throws(() => lock.withLock('a', () => { throw new RangeError('inside'); }), RangeError);
  t.same([...new Int32Array(lock.buffer)], new Array(8).fill(0), 'released after throws');
  t.throws(() => new SharedNameLock(new SharedArrayBuffer(6)), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => new SharedNameLock(new SharedArrayBuffer(0)), { code: ErrorCodes.INVALID_ARGUMENT }, 'a table of no slots, where no name could be locked');
  // Names share a slot only by their hash, so that a commit to one name rarely waits for another.
  const slots = new Set(Array.from({ length: 64 }, (_, i) => lock.slotOf(`file-${i}.txt`)));
  t.equal(slots.size, 8, '64 names spread over all 8 slots');
  t.throws(() => new SharedNameLock(undefined, 0), { code: ErrorCodes.INVALID_ARGUMENT });
});

t.test('uploads in progress count against the quota and the file size limit', async (t) => {
  const mtime = new Date(0);
  const listed = [{ name: 'a.txt', size: 400, mtime }, null];
  const pending = pendingUploads(['a.txt', tempFileName('1.1', { name: 'x', mode: 'new', size: 400 }), `${TEMP_PREFIX}junk`]);
  t.equal(pending.length, 1);
  t.notOk(wouldExceedQuota(1000, listed, pending, { name: 'y', size: 200, mode: 'new' }), '400 + 400 + 200 fits');
  t.ok(wouldExceedQuota(1000, listed, pending, { name: 'y', size: 201, mode: 'new' }), '400 + 400 + 201 does not');
  t.notOk(wouldExceedQuota(1000, listed, pending, { name: 'a.txt', size: 600, mode: 'overwrite' }), 'an overwrite frees the old size');
  t.ok(wouldExceedQuota(1000, listed, pending, { name: 'a.txt', size: 201, mode: 'append' }), 'an append keeps it');
  const appends = pendingUploads([tempFileName('1.1', { name: 'log', mode: 'append', size: 600 }), tempFileName('1.1', { name: 'other', mode: 'append', size: 900 })]);
  const plan = { name: 'log', mode: 'append' as const, size: 24, sha256: null, maxFileSize: 1024 };
  t.doesNotThrow(() => refuseIfFileWouldPassLimit(plan, 400, appends), '400 + 600 + 24: exactly the limit');
  t.throws(() => refuseIfFileWouldPassLimit({ ...plan, size: 25 }, 400, appends), { code: ErrorCodes.TOO_LARGE });
  t.doesNotThrow(() => refuseIfFileWouldPassLimit({ ...plan, mode: 'overwrite', size: 1024 }, 400, appends), 'an overwrite is limited by its own size (the protocol checks it)');
});

t.test('append intent records: whole or nothing', async (t) => {
  const intent = { owner: '1.2', name: 'log.txt', file: '2049:123456789012345678', size: 42 };
  const text = encodeIntent(intent);
  t.same(decodeIntent(text), intent);
  for (let cut = 0; cut < text.length - 1; cut++) t.equal(decodeIntent(text.slice(0, cut)), null, `cut at ${cut}`);
  t.equal(decodeIntent(encodeIntent({ ...intent, name: '../etc/passwd' })), null, 'never a path');
  t.same(decodeIntent(encodeIntent({ ...intent, size: null })), { ...intent, size: null }, 'a record only taken has no size yet');
  // Whatever a file named like a record holds (a server's start-up reads them all), it is a record or nobody's, never an exception.
  for (const junk of ['null', '42', '"text"', '[]', '{}', 'not json']) t.equal(decodeIntent(junk), null, `${junk}: not a record`);
  const fields = { socklabAppendIntent: 1, ...intent };
  for (const [field, value] of [['socklabAppendIntent', 2], ['owner', 12], ['name', 7], ['file', 123]] as const) {
    t.equal(decodeIntent(JSON.stringify({ ...fields, [field]: value })), null, `${field} ${JSON.stringify(value)}: not a record`);
  }
  t.same(decodeIntent(encodeIntent({ ...intent, size: 0 })), { ...intent, size: 0 }, 'an empty file before the append is a size');
  for (const size of [-1, 1.5, '42', 2 ** 53]) t.equal(decodeIntent(JSON.stringify({ socklabAppendIntent: 1, ...intent, size })), null, `size ${size}: not a record`);
});
