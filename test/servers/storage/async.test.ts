/**
 * What only AsyncStorage has: its file slots. A read or an upload holds one
 * from its open to its close, commit or abort, whatever way it ends; a call
 * that finds none free waits for one, in turn, and past the bounded wait fails
 * with BUSY (`450`), never silently. A slot lost on some path would, one lost
 * slot at a time, leave the async server answering `450` to everyone.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ErrorCodes } from '../../../protocol/errors.js';
import { AsyncStorage } from '../../../servers/storage/async.js';
import { TEMP_PREFIX, type ReadHandle } from '../../../servers/storage/types.js';
import { busyPastTimers } from '../../helpers/socket-pair.js';

const BUSY_AFTER_MS = 200;

async function oneSlot(t: Test): Promise<{ root: string; storage: AsyncStorage }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-slots-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'a.txt'), 'hello');
  const storage = await AsyncStorage.open(root, { fileSlots: { count: 1, waitMs: BUSY_AFTER_MS } });
  return { root, storage };
}

const busy = { code: ErrorCodes.BUSY, message: 'all 1 file slots stayed in use for 0.2 s' };

/** The one slot is free: a read can take it, and while it holds it the next call is refused. */
async function slotIsFree(t: Test, storage: AsyncStorage, after: string): Promise<void> {
  const reading = await storage.openRead('a.txt');
  await t.rejects(storage.openRead('a.txt'), busy, `after ${after}: the slot is free again, and there is only one`);
  await storage.closeRead(reading);
}

t.test('a call that finds no free slot fails with BUSY after the wait, and the slot serves the next call once released', async (t) => {
  const { storage } = await oneSlot(t);
  const reading = await storage.openRead('a.txt');
  const calls: [string, () => Promise<unknown>][] = [
    ['openRead', () => storage.openRead('a.txt')],
    ['stat', () => storage.stat('a.txt')],
    ['beginUpload', () => storage.beginUpload({ name: 'b.txt', size: 1, mode: 'new', sha256: null })],
  ];
  for (const [what, call] of calls) {
    const began = performance.now();
    await t.rejects(call(), busy, `${what}: BUSY`);
    t.ok(performance.now() - began >= BUSY_AFTER_MS - 20, `${what}: after the wait`);
  }
  await storage.closeRead(reading);
  await slotIsFree(t, storage, 'the close');
});

t.test('a call waiting for a slot gets the one released, and only it', async (t) => {
  const { storage } = await oneSlot(t);
  const reading = await storage.openRead('a.txt');
  const waiting = storage.stat('a.txt');
  await new Promise((resolve) => setTimeout(resolve, 20));
  await storage.closeRead(reading);
  t.same((await waiting).size, 5, 'the waiting call was served');
  await slotIsFree(t, storage, 'the waiting call');

  const first = await storage.openRead('a.txt');
  const queued = [storage.openRead('a.txt'), storage.openRead('a.txt')];
  await storage.closeRead(first);
  const [granted, refused] = await Promise.allSettled(queued);
  t.equal(granted?.status, 'fulfilled', 'the first in line gets the released slot');
  t.equal(refused?.status, 'rejected', 'the second keeps waiting, then is refused: one release is one slot');
  if (granted?.status === 'fulfilled') await storage.closeRead(granted.value);
  await slotIsFree(t, storage, 'both');
});

t.test('a slot freed in the turn the wait runs out is granted, not refused: the verdict waits for the poll', async (t) => {
  const { storage } = await oneSlot(t);
  const reading = await storage.openRead('a.txt');
  const waiting = storage.stat('a.txt');
  // The close finishes on the thread pool while this thread is busy past the wait: its completion and the
  // wait's timer are both due in the next turn, and Node runs timers first.
  await new Promise((resolve) => setTimeout(resolve, 50));
  await busyPastTimers(BUSY_AFTER_MS + 50, () => void storage.closeRead(reading));
  const [result] = await Promise.allSettled([waiting]);
  t.equal(result?.status, 'fulfilled', 'the waiting call got the slot the close freed');
  await slotIsFree(t, storage, 'the late grant');
});

t.test('every way a read or an upload ends gives its slot back, once', async (t) => {
  const { root, storage } = await oneSlot(t);
  const plan = (name: string, size: number, sha256: string | null = null) => ({ name, size, mode: 'new' as const, sha256 });

  await t.rejects(storage.openRead('absent'), { code: ErrorCodes.NOT_FOUND });
  await slotIsFree(t, storage, 'a read of an absent name');

  await t.rejects(storage.beginUpload(plan('a.txt', 1)), { code: ErrorCodes.EXISTS });
  await slotIsFree(t, storage, 'a refused upload');

  const committed = await storage.beginUpload(plan('b.txt', 2));
  await storage.writeUpload(committed, Buffer.from('hi'));
  await storage.commitUpload(committed);
  await storage.abortUpload(committed);
  await slotIsFree(t, storage, 'a commit (and an abort after it)');

  const mismatched = await storage.beginUpload(plan('c.txt', 2, '0'.repeat(64)));
  await storage.writeUpload(mismatched, Buffer.from('hi'));
  await t.rejects(storage.commitUpload(mismatched), { code: ErrorCodes.CHECKSUM_MISMATCH });
  await storage.abortUpload(mismatched);
  await slotIsFree(t, storage, 'a failed commit (and an abort after it)');

  const aborted = await storage.beginUpload(plan('d.txt', 2));
  await storage.abortUpload(aborted);
  await storage.abortUpload(aborted);
  await slotIsFree(t, storage, 'an abort, twice');

  const reading: ReadHandle = await storage.openRead('a.txt');
  await storage.closeRead(reading);
  await storage.closeRead(reading);
  await slotIsFree(t, storage, 'a close, twice');

  t.same(fs.readdirSync(root).filter((name) => name.startsWith(TEMP_PREFIX)), [], 'no temporary file is left');
});
