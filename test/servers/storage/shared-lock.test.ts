/**
 * SharedNameLock across real worker threads, as the workers server uses it:
 * while one thread holds a name, another thread that takes the same name
 * waits for it (it neither goes in nor fails), so the commits, the quota
 * checks and the `new` checks of two workers never interleave.
 */
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { SharedNameLock } from '../../../servers/storage/shared-lock.js';

const HOLD_MS = 300;
/** Where the first worker says it holds the lock (the rest of the array is the event log). */
const HELD_FLAG = 15;

const workerSource = `
  const { workerData } = require('node:worker_threads');
  (async () => {
    const { SharedNameLock } = await import(workerData.lockUrl);
    const lock = new SharedNameLock(workerData.lockBuffer);
    const events = new Int32Array(workerData.events);
    const record = (event) => Atomics.store(events, Atomics.add(events, 0, 1) + 1, event);
    const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    if (workerData.first) {
      lock.withLock('x', () => {
        record(1);
        Atomics.store(events, ${HELD_FLAG}, 1);
        Atomics.notify(events, ${HELD_FLAG});
        pause(${HOLD_MS});
        record(2);
      });
    } else {
      Atomics.wait(events, ${HELD_FLAG}, 0, 10000);
      lock.withLock('x', () => {
        record(3);
        record(4);
      });
    }
  })().catch((error) => { throw error; });
`;

t.test('a thread taking a name another thread holds waits until it is released', async (t) => {
  const lock = new SharedNameLock();
  const events = new SharedArrayBuffer(16 * Int32Array.BYTES_PER_ELEMENT);
  const lockUrl = new URL('../../../servers/storage/shared-lock.js', import.meta.url).href;
  const run = (first: boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(workerSource, { eval: true, workerData: { lockUrl, lockBuffer: lock.buffer, events, first } });
      worker.once('error', reject);
      worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
    });
  await Promise.all([run(true), run(false)]);
  t.same([...new Int32Array(events).slice(1, 5)], [1, 2, 3, 4], 'the second went in only after the first came out');
  t.same([...new Int32Array(lock.buffer)].filter((slot) => slot !== 0), [], 'every slot is free again');
});
