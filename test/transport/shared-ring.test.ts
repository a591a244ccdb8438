/**
 * transport/shared-ring.ts: bytes through a ring across its wrap, and a
 * thread asleep on a word woken by the bell, with its sleeper flag up only
 * while it sleeps.
 */
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { copyIntoRing, copyOutOfRing, ringBell, sleepWhile, sleepWhileAsync } from '../../transport/shared-ring.js';
import { delay, eventually } from '../helpers/wire-fixture.js';
import type { Tap } from '../helpers/tap.js';

t.test('bytes copied in at any counter come out the same, across the wrap and past 2^31', async (t) => {
  const ring = Buffer.from(new SharedArrayBuffer(16));
  const source = Uint8Array.from({ length: 40 }, (_, i) => i + 1);
  for (const at of [0, 5, 12, 15, 0x7ffffffa | 0, 0xfffffffc | 0]) {
    ring.fill(0);
    copyIntoRing(ring, at, source, 3, 16);
    t.same([...copyOutOfRing(ring, at, 16)], [...source.subarray(3, 19)], `a full ring at counter ${at}`);
    copyIntoRing(ring, at, source, 30, 7);
    t.same([...copyOutOfRing(ring, at, 7)], [...source.subarray(30, 37)], `a part at counter ${at}`);
  }
  copyIntoRing(ring, 0, source, 0, 4);
  const copied = copyOutOfRing(ring, 0, 4);
  ring.fill(0xff);
  t.same([...copied], [1, 2, 3, 4], 'what comes out is a copy, not a view of the ring');
});

t.test('a copy writes exactly its range: the ring around it keeps its bytes, at any alignment', async (t) => {
  const ring = Buffer.from(new SharedArrayBuffer(64));
  const source = Buffer.from(Uint8Array.from({ length: 100 }, (_, i) => i + 1));
  for (const [at, from, count] of [
    [5, 3, 7],
    [8, 0, 24],
    [61, 11, 9], // wraps: 3 bytes at the end, 6 at the start
    [13, 1, 1],
  ] as const) {
    ring.fill(0xee);
    copyIntoRing(ring, at, source, from, count);
    const expected = Buffer.alloc(64, 0xee);
    for (let i = 0; i < count; i++) expected[(at + i) & 63] = source[from + i] ?? 0;
    t.same([...ring], [...expected], `${count} bytes at ${at}, from ${from}`);
    t.same([...copyOutOfRing(ring, at, count)], [...source.subarray(from, from + count)], `and back out (${count} at ${at})`);
  }
});

t.test('sleepWhile: returns at once when the word moved, times out when it did not, the flag down afterwards', async (t) => {
  const words = new Int32Array(new SharedArrayBuffer(8));
  ringBell(words, 0, 1);
  t.equal(words[0], 1, 'the bell counts');
  t.equal(sleepWhile(words, 0, 0, 1), 'not-equal', 'a bell rung before the sleep is not missed');
  t.equal(words[1], 0);
  t.equal(sleepWhile(words, 0, 1, 1, 10), 'timed-out');
  t.equal(words[1], 0, 'the flag is down after a timeout too');
  t.equal(await sleepWhileAsync(words, 1, async () => words[1]), 1, 'the flag is up while the event loop waits');
  t.equal(words[1], 0);
});

/** A thread that sleeps on word 0 of `words` (sleepWhile with flag word 1, or a bare Atomics.wait); resolves with how its wait ended. */
function sleeperThread(t: Tap, words: Int32Array, how: 'sleepWhile' | 'bare', timeoutMs: number): Promise<string> {
  // The bare sleeper marks word 2 just before its wait, and raises no flag.
  const script = `
    import { workerData, parentPort } from 'node:worker_threads';
    const { sleepWhile } = await import(workerData.module);
    const { words, how, timeoutMs } = workerData;
    if (how === 'bare') Atomics.store(words, 2, 1);
    parentPort.postMessage(how === 'bare' ? Atomics.wait(words, 0, 0, timeoutMs) : sleepWhile(words, 0, 0, 1, timeoutMs));
  `;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(script)}`), {
    workerData: { module: new URL('../../transport/shared-ring.js', import.meta.url).href, words, how, timeoutMs },
  });
  t.teardown(() => worker.terminate());
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

t.test('a thread asleep on the bell wakes when it rings', async (t) => {
  const words = new Int32Array(new SharedArrayBuffer(12));
  const woken = sleeperThread(t, words, 'sleepWhile', 20_000);
  await eventually(() => Atomics.load(words, 1) === 1, 'the thread raises its flag to sleep');
  const rungAt = Date.now();
  ringBell(words, 0, 1);
  t.match(await woken, /^(ok|not-equal)$/, 'woken by the bell (or it saw the bell before its wait)');
  t.ok(Date.now() - rungAt < 10_000, 'long before its own timeout');
  t.equal(Atomics.load(words, 1), 0, 'its flag is down');
});

t.test('a bell only counts, with no wake-up (a system call), when the flag is down or the ringer says not to wake', async (t) => {
  for (const [what, wake] of [['with the sleeper flag down', true], ['with wake false', false]] as const) {
    const words = new Int32Array(new SharedArrayBuffer(12));
    if (!wake) Atomics.store(words, 1, 1);
    const slept = sleeperThread(t, words, 'bare', 1000);
    await eventually(() => Atomics.load(words, 2) === 1, 'the thread is about to wait');
    await delay(100); // and now waits
    ringBell(words, 0, 1, wake);
    t.equal(words[0], 1, `the bell counts ${what}`);
    // 'not-equal' only if the thread had not begun its wait yet on a very busy machine; 'ok' is a wake-up.
    t.not(await slept, 'ok', `and wakes no one ${what}`);
  }
});
