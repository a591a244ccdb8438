/**
 * A disk that fails: each system call a storage step makes fails once, as a
 * failing disk makes it fail (EIO), and the caller gets a STORAGE_FAILED error
 * that names the step and the errno (a server sends it as `451 <step> failed
 * (EIO)`), with nothing left behind: no temporary file, no open descriptor, no
 * file slot, no lock. The same request then works. Both flavours, through the
 * fs functions each calls (node:fs's ...Sync calls for the blocking one, its
 * callback calls for the other, storage/fs-calls.ts), replaced for one call
 * at a time.
 */
import t from 'tap';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes } from '../../../protocol/errors.js';
import type { ListEntry } from '../../../protocol/index.js';
import { AsyncStorage } from '../../../servers/storage/async.js';
import { SyncStorage } from '../../../servers/storage/sync.js';
import { intentFileName } from '../../../servers/storage/common.js';
import { TEMP_PREFIX, type AsyncStorageOps } from '../../../servers/storage/types.js';
import { bytesOf, errnoError, freshDir, promised, sha256, tempFilesIn, upload, type HasTeardown } from './flavours.js';
import type { Tap } from '../../helpers/tap.js';

/** Where a flavour's system call lives: a node:fs or node:fs/promises function. */
interface Call {
  readonly on: object;
  readonly method: string;
  /** How the function reports: by throwing (`…Sync`), by rejecting (fs/promises), or through its last argument. */
  readonly reports: 'throw' | 'reject' | 'callback';
}

/** The system calls the steps below make, named as node:fs names them. */
type SystemCall = 'mkdir' | 'readdir' | 'lstat' | 'open' | 'read' | 'write' | 'fsync' | 'link' | 'rename';

interface Flavour {
  readonly name: string;
  open(root: string): Promise<AsyncStorageOps>;
  /** Where this flavour makes `call`. */
  where(call: SystemCall): Call;
}

/** The promises flavour makes its file calls in node:fs's callback form; its write-behind writes vectored (batched-writer.ts). */
const CALLBACK_METHODS: Partial<Record<SystemCall, string>> = { lstat: 'lstat', open: 'open', read: 'read', write: 'writev', fsync: 'fsync', link: 'link', rename: 'rename' };

const flavours: readonly Flavour[] = [
  {
    name: 'SyncStorage',
    open: async (root) => promised(SyncStorage.open(root)),
    where: (call) => ({ on: fs, method: `${call}Sync`, reports: 'throw' }),
  },
  {
    name: 'AsyncStorage',
    // One file slot, given back within 300 ms or refused: a slot a failure keeps shows as the next request refused.
    open: (root) => AsyncStorage.open(root, { fileSlots: { count: 1, waitMs: 300 } }),
    where: (call) => {
      const method = CALLBACK_METHODS[call];
      return method === undefined ? { on: fsp, method: call, reports: 'reject' } : { on: fs, method, reports: 'callback' };
    },
  },
];

/**
 * Replaces the first call of `call` whose arguments `matches` accepts by
 * `instead` (given the original function, to call or not); every other call
 * goes through, and the original is put back at the test's end. Returns how
 * many calls were replaced so far.
 */
function interceptOnce(
  t: HasTeardown,
  call: Call,
  matches: (args: unknown[]) => boolean,
  instead: (original: (...args: unknown[]) => unknown, self: unknown, args: unknown[]) => unknown,
): () => number {
  const target = call.on as Record<string, unknown>;
  const original = target[call.method] as (...args: unknown[]) => unknown;
  let replaced = 0;
  target[call.method] = function (this: unknown, ...args: unknown[]) {
    if (replaced === 0 && matches(args)) {
      replaced++;
      return instead(original, this, args);
    }
    return original.apply(this, args);
  };
  t.teardown(() => {
    target[call.method] = original;
  });
  return () => replaced;
}

/**
 * Makes the next call of `call` whose arguments `matches` accepts fail with
 * `code` (a throw from a blocking function, a rejection from a promise one,
 * the error handed to the callback of a callback one);
 * every other call goes through. Returns how many calls failed so far.
 */
function failOnce(t: HasTeardown, call: Call, matches: (args: unknown[]) => boolean, code: 'EIO' | 'EINVAL' | 'EISDIR' | 'ELOOP' | 'EPERM' | 'EEXIST' = 'EIO'): () => number {
  return interceptOnce(t, call, matches, (_original, _self, args) => {
    const error = errnoError(code, call.method);
    switch (call.reports) {
      case 'throw':
        throw error;
      case 'reject':
        return Promise.reject(error);
      case 'callback': {
        const callback = args.at(-1) as (error: Error) => void;
        process.nextTick(callback, error);
        return undefined;
      }
    }
  });
}

/**
 * Runs `action` just before the first call of `call` whose arguments `matches`
 * accepts, then makes that call as usual: what another server process did at
 * that instant. Returns how many times the action ran.
 */
function beforeCall(t: HasTeardown, call: Call, matches: (args: unknown[]) => boolean, action: () => void): () => number {
  return interceptOnce(t, call, matches, (original, self, args) => {
    action();
    return original.apply(self, args);
  });
}

const anyCall = () => true;
/** A call with `stored.txt`'s intent record among its paths (a link's source or target, an open). */
const namesStoredRecord = (args: unknown[]) => args.some((arg) => typeof arg === 'string' && path.basename(arg) === intentFileName('stored.txt'));
/** Lets the first `n` calls through and matches every later one. */
const after = (n: number) => {
  let seen = 0;
  return () => ++seen > n;
};
const onPath = (name: string) => (args: unknown[]) => typeof args[0] === 'string' && path.basename(args[0]) === name;
const ofTemporaryFile = (args: unknown[]) => typeof args[0] === 'string' && path.basename(args[0]).startsWith(TEMP_PREFIX);

/** This process's open descriptors, where the system lists them (Linux: /proc); null elsewhere, where that check is left out. */
function openDescriptors(): number | null {
  return fs.existsSync('/proc/self/fd') ? fs.readdirSync('/proc/self/fd').length : null;
}

const STORED = bytesOf('stored before the disk failed\n');

interface Step {
  /** The step, as the error names it. */
  readonly step: string;
  readonly call: SystemCall;
  readonly matches: (args: unknown[]) => boolean;
  /** The request that meets the failure; it must reject, and work once the disk does. */
  readonly request: (storage: AsyncStorageOps) => Promise<unknown>;
  /** Checks the request's result once it works. */
  readonly worked: (t: Tap, result: unknown, root: string) => void;
}

const statOfStored = {
  request: (storage: AsyncStorageOps) => storage.stat('stored.txt'),
  worked: (t: Tap, result: unknown) => t.same(result, { size: STORED.length, sha256: sha256(STORED) }, 'the file is read whole'),
};
const NEW_BYTES = bytesOf('an upload\n'.repeat(100));
const uploadOfNew = {
  request: (storage: AsyncStorageOps) => upload(storage, 'new.txt', NEW_BYTES, 'new'),
  worked: (t: Tap, result: unknown, root: string) => {
    t.same(result, { size: NEW_BYTES.length, sha256: sha256(NEW_BYTES) }, 'the upload is committed');
    t.ok(fs.readFileSync(path.join(root, 'new.txt')).equals(NEW_BYTES), 'with every byte');
  },
};

const steps: readonly Step[] = [
  {
    step: 'listing the storage root',
    call: 'readdir',
    matches: anyCall,
    request: (storage) => storage.list(),
    worked: (t, result) => t.same((result as ListEntry[]).map(({ name, size }) => ({ name, size })), [{ name: 'stored.txt', size: STORED.length }], 'the list is whole'),
  },
  { step: 'looking up a file', call: 'lstat', matches: onPath('stored.txt'), ...statOfStored },
  { step: 'opening a file', call: 'open', matches: onPath('stored.txt'), ...statOfStored },
  { step: 'reading a file', call: 'read', matches: anyCall, ...statOfStored },
  { step: 'creating a temporary file', call: 'open', matches: ofTemporaryFile, ...uploadOfNew },
  { step: 'writing the upload', call: 'write', matches: anyCall, ...uploadOfNew },
  { step: 'committing the upload', call: 'fsync', matches: anyCall, ...uploadOfNew },
  // Only a file system without hard links falls back to a rename; a failing disk is a failure.
  { step: 'committing the upload', call: 'link', matches: anyCall, ...uploadOfNew },
];

for (const flavour of flavours) {
  t.test(flavour.name, async (t) => {
    for (const { step, call, matches, request, worked } of steps) {
      t.test(`${step}: the error names it, nothing is left behind, and the request then works`, async (t) => {
        const root = path.join(freshDir(t), 'root');
        const storage = await flavour.open(root);
        fs.writeFileSync(path.join(root, 'stored.txt'), STORED);
        const descriptors = openDescriptors();

        const failures = failOnce(t, flavour.where(call), matches);
        await t.rejects(request(storage), { code: ErrorCodes.STORAGE_FAILED, message: `${step} failed (EIO)` });
        t.equal(failures(), 1, 'the injected failure is the one the request met');
        t.same(tempFilesIn(root), [], 'no temporary file is left');
        t.notOk(fs.existsSync(path.join(root, 'new.txt')), 'nothing is committed');
        t.equal(openDescriptors(), descriptors, 'no descriptor is left open');

        worked(t, await request(storage), root);
        t.equal(openDescriptors(), descriptors, 'and none after it');
      });
    }

    // An append in place: its intent record (staged, fsync'd, renamed into place, the root fsync'd), then
    // the new bytes at the file's end, fsync'd. A failure up to there must undo it all.
    const appendFailures: readonly { readonly what: string; readonly call: SystemCall; readonly matches: () => boolean }[] = [
      { what: "the intent record's fsync", call: 'fsync', matches: anyCall },
      { what: "the intent record's link into place", call: 'link', matches: anyCall },
      { what: "the intent record's rename", call: 'rename', matches: anyCall },
      { what: "the root's fsync after it", call: 'fsync', matches: after(1) },
      { what: "the appended bytes' fsync", call: 'fsync', matches: after(2) },
      // The record's removal acknowledges the append: not durable, a crash could bring the record back and cut the
      // append off, so the append is not acknowledged, and its 451 must mean the file is as it was.
      { what: "the root's fsync once the record is removed", call: 'fsync', matches: after(3) },
    ];
    for (const { what, call, matches } of appendFailures) {
      t.test(`an append that fails at ${what} leaves the file as it was, and the append then works`, async (t) => {
        const root = path.join(freshDir(t), 'root');
        const storage = await flavour.open(root);
        fs.writeFileSync(path.join(root, 'stored.txt'), STORED);
        const more = bytesOf('appended\n');
        const failures = failOnce(t, flavour.where(call), matches);
        await t.rejects(upload(storage, 'stored.txt', more, 'append'), { code: ErrorCodes.STORAGE_FAILED, message: 'committing the upload failed (EIO)' });
        t.equal(failures(), 1, 'the injected failure is the one the append met');
        t.ok(fs.readFileSync(path.join(root, 'stored.txt')).equals(STORED), 'the file is as it was');
        t.same(tempFilesIn(root), [], 'no record or temporary file is left');
        const both = Buffer.concat([STORED, more]);
        t.same(await upload(storage, 'stored.txt', more, 'append'), { size: both.length, sha256: sha256(more) }, "the file's new size, and the digest of the bytes received");
        t.ok(fs.readFileSync(path.join(root, 'stored.txt')).equals(both), 'the append is whole');
      });
    }

    // The commit checks that the name is still a regular file, then opens it for the append without following
    // links. Replaced by a link in between, the open fails with ELOOP: the reply for a name that is not a regular
    // file, as at the check. Any other failure of that open is the disk's.
    const appendOpenFailures = [
      { code: 'ELOOP', error: { code: ErrorCodes.EXISTS, message: 'stored.txt exists and is not a regular file' } },
      { code: 'EIO', error: { code: ErrorCodes.STORAGE_FAILED, message: 'committing the upload failed (EIO)' } },
    ] as const;
    for (const { code, error } of appendOpenFailures) {
      t.test(`an append whose file cannot be opened at the commit (${code}): ${error.code}, the file as it was, nothing left`, async (t) => {
        const root = path.join(freshDir(t), 'root');
        const storage = await flavour.open(root);
        fs.writeFileSync(path.join(root, 'stored.txt'), STORED);
        const descriptors = openDescriptors();
        const failures = failOnce(t, flavour.where('open'), onPath('stored.txt'), code);
        await t.rejects(upload(storage, 'stored.txt', bytesOf('appended\n'), 'append'), error);
        t.equal(failures(), 1, 'the injected failure is the one the append met');
        t.ok(fs.readFileSync(path.join(root, 'stored.txt')).equals(STORED), 'the file is as it was');
        t.same(tempFilesIn(root), [], 'no record or temporary file is left');
        t.equal(openDescriptors(), descriptors, 'no descriptor is left open');
        t.same(await upload(storage, 'stored.txt', bytesOf('appended\n'), 'append'), { size: STORED.length + 9, sha256: sha256(bytesOf('appended\n')) }, 'the next append lands');
      });
    }

    // Where there are no hard links (link fails with EPERM), the append's record is created in place with
    // O_EXCL instead. EEXIST there is another server's record, come since: wait for it, then take the name.
    // Anything else is the disk's failure, not a lock held.
    const recordCreateFailures = [
      { code: 'EEXIST', outcome: 'the append lands' },
      { code: 'EIO', outcome: 'the append fails and leaves the file as it was' },
    ] as const;
    for (const { code, outcome } of recordCreateFailures) {
      t.test(`no hard links, and the append's record cannot be created (${code}): ${outcome}`, async (t) => {
        const root = path.join(freshDir(t), 'root');
        const storage = await flavour.open(root);
        fs.writeFileSync(path.join(root, 'stored.txt'), STORED);
        const more = bytesOf('appended\n');
        const linkFailures = failOnce(t, flavour.where('link'), namesStoredRecord, 'EPERM');
        const createFailures = failOnce(t, flavour.where('open'), namesStoredRecord, code);
        const appending = upload(storage, 'stored.txt', more, 'append');
        if (code === 'EEXIST') {
          t.same(await appending, { size: STORED.length + more.length, sha256: sha256(more) }, 'the append is committed');
          t.ok(fs.readFileSync(path.join(root, 'stored.txt')).equals(Buffer.concat([STORED, more])), 'whole');
        } else {
          await t.rejects(appending, { code: ErrorCodes.STORAGE_FAILED, message: 'committing the upload failed (EIO)' });
          t.ok(fs.readFileSync(path.join(root, 'stored.txt')).equals(STORED), 'the file is as it was');
        }
        t.equal(linkFailures(), 1, 'the record was not linked');
        t.equal(createFailures(), 1, 'and its creation in place met the injected failure');
        t.same(tempFilesIn(root), [], 'no record or temporary file is left');
      });
    }

    t.test('a write that fails while the upload goes on is reported by a later write, not first at the commit', async (t) => {
      const root = path.join(freshDir(t), 'root');
      const storage = await flavour.open(root);
      const descriptors = openDescriptors();
      const piece = Buffer.alloc(64 * 1024, 7);
      const pieces = 64; // 4 MiB: several of the async flavour's write-behind batches
      const handle = await storage.beginUpload({ name: 'big.bin', size: piece.length * pieces, mode: 'new', sha256: null });
      const failures = failOnce(t, flavour.where('write'), anyCall);
      let refusedAt: number | null = null;
      for (let at = 0; at < pieces && refusedAt === null; at++) {
        try {
          await storage.writeUpload(handle, piece);
          // Time for a write-behind batch to fail, as the next socket chunk of a real upload would give.
          await new Promise((resolve) => setImmediate(resolve));
        } catch (error) {
          t.match(error, { code: ErrorCodes.STORAGE_FAILED, message: 'writing the upload failed (EIO)' }, 'the error names the step');
          refusedAt = at;
        }
      }
      t.equal(failures(), 1, 'the injected failure is the one the upload met');
      t.not(refusedAt, null, 'a write before the last one was refused');
      t.same(tempFilesIn(root), [], 'no temporary file is left');
      t.equal(openDescriptors(), descriptors, 'no descriptor is left open');
      await storage.abortUpload(handle); // what a server does next, in its cleanup: harmless now
      uploadOfNew.worked(t, await uploadOfNew.request(storage), root);
    });

    // The record's removal failed to become durable, and the append is to be undone under the record taken back.
    // Between its removal and its retaking, another server may take the name: the undo must not touch its work.
    const FOREIGN_RECORD = 'another server holds this record';
    const FOREIGN_BYTES = bytesOf('appended by another server\n');
    const meanwhile = [
      {
        what: 'holds the name now',
        // Its record at the name, when ours is to be taken back: the retaking link fails with a real EEXIST.
        act: (root: string) => fs.writeFileSync(path.join(root, intentFileName('stored.txt')), FOREIGN_RECORD),
        expected: (more: Buffer) => Buffer.concat([STORED, more]),
        leftRecord: [intentFileName('stored.txt')],
      },
      {
        what: 'appended and let go',
        act: (root: string) => fs.appendFileSync(path.join(root, 'stored.txt'), FOREIGN_BYTES),
        expected: (more: Buffer) => Buffer.concat([STORED, more, FOREIGN_BYTES]),
        leftRecord: [],
      },
    ] as const;
    for (const { what, act, expected, leftRecord } of meanwhile) {
      t.test(`an append whose record's removal is not durable, while another server ${what}: 451, and the file is not cut`, async (t) => {
        const root = path.join(freshDir(t), 'root');
        const storage = await flavour.open(root);
        fs.writeFileSync(path.join(root, 'stored.txt'), STORED);
        const more = bytesOf('appended\n');
        const rootSyncFailures = failOnce(t, flavour.where('fsync'), after(3));
        // The first link of the record takes it; the second takes it back.
        const afterTheFirst = after(1);
        const actions = beforeCall(t, flavour.where('link'), (args) => namesStoredRecord(args) && afterTheFirst(), () => act(root));
        await t.rejects(upload(storage, 'stored.txt', more, 'append'), { code: ErrorCodes.STORAGE_FAILED, message: 'committing the upload failed (EIO)' });
        t.equal(rootSyncFailures(), 1, "the root's fsync failed once the record was removed");
        t.equal(actions(), 1, 'the other server came in between');
        t.ok(fs.readFileSync(path.join(root, 'stored.txt')).equals(expected(more)), 'the file is not cut');
        t.same(tempFilesIn(root), leftRecord, "only the other server's record, if it holds one, is left");
        if (leftRecord.length > 0) t.equal(fs.readFileSync(path.join(root, intentFileName('stored.txt')), 'utf8'), FOREIGN_RECORD, 'untouched');
      });
    }

    for (const code of ['EINVAL', 'EISDIR'] as const) {
      t.test(`a root whose directory cannot be fsync'd (${code}, as on some file systems) still takes uploads`, async (t) => {
        const root = path.join(freshDir(t), 'root');
        const storage = await flavour.open(root);
        // The upload's own file first, then the root's directory, which makes its new name durable.
        const failures = failOnce(t, flavour.where('fsync'), after(1), code);
        uploadOfNew.worked(t, await uploadOfNew.request(storage), root);
        t.equal(failures(), 1, "the root's fsync failed, and the commit went on");
        t.same(tempFilesIn(root), [], 'no temporary file is left');
      });
    }

    t.test('creating the storage root: the error names it; the root is created at the next start', async (t) => {
      const root = path.join(freshDir(t), 'root');
      failOnce(t, flavour.where('mkdir'), anyCall);
      await t.rejects(flavour.open(root), { code: ErrorCodes.STORAGE_FAILED, message: 'creating the storage root failed (EIO)' });
      const storage = await flavour.open(root);
      t.same(await storage.list(), [], 'then it opens, empty');
    });
  });
}
