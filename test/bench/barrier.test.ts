/** The start barrier: counting processes in, failing fast, and releasing at one instant. */
import t from 'tap';
import { BarrierError, chooseStartInstant, StartBarrier, startSkewMs, waitForStartInstant } from '../../bench/load/barrier.js';
import { sharedNow } from '../../bench/load/shared-clock.js';

t.test('the barrier opens once every participant has arrived, in any order', async (t) => {
  const barrier = new StartBarrier(3);
  let open = false;
  const opened = barrier.allReady(5000).then(() => (open = true));
  barrier.arrive(2);
  barrier.arrive(0);
  barrier.arrive(2); // a repeated arrival counts once
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(open, false, 'two of three is not all');
  t.equal(barrier.waitingFor, 1);
  barrier.arrive(1);
  await opened;
  t.equal(open, true);
});

t.test('a barrier everyone already reached is open at once', async (t) => {
  const barrier = new StartBarrier(1);
  barrier.arrive(0);
  await t.resolves(barrier.allReady(10));
});

t.test('a participant that never arrives fails the barrier after the timeout, saying how many are missing', async (t) => {
  const barrier = new StartBarrier(4);
  barrier.arrive(0);
  barrier.arrive(1);
  const error = await barrier.allReady(30).catch((e: unknown) => e);
  t.type(error, BarrierError);
  t.equal((error as BarrierError).code, 'READY_TIMEOUT');
  t.match((error as BarrierError).message, /2 of 4 load processes were not ready/);
});

t.test('a lost participant fails the barrier at once, not after the timeout', async (t) => {
  const barrier = new StartBarrier(2);
  const waiting = barrier.allReady(60_000);
  const started = performance.now();
  barrier.lose(1, 'exited with code 1');
  const error = await waiting.catch((e: unknown) => e);
  t.equal((error as BarrierError).code, 'PARTICIPANT_LOST');
  t.match((error as BarrierError).message, /load process 1 .*exited with code 1/);
  t.ok(performance.now() - started < 1000, 'failed without waiting for the timeout');
  await t.rejects(barrier.allReady(10), { code: 'PARTICIPANT_LOST' }, 'and stays failed');
});

t.test('arriving as a participant the barrier does not have is a bug, said at once', async (t) => {
  t.throws(() => new StartBarrier(2).arrive(2), RangeError);
});

t.test('the start instant lies ahead, further for more processes', async (t) => {
  const now = 1000;
  t.ok(chooseStartInstant(1, now) > now);
  t.ok(chooseStartInstant(32, now) > chooseStartInstant(1, now));
});

t.test('start skew is the spread between the earliest and the latest start', async (t) => {
  t.equal(startSkewMs([105.5, 100, 103.25]), 5.5);
  t.equal(startSkewMs([42]), 0);
  t.equal(startSkewMs([]), 0);
});

t.test('a participant waits until the instant, never returns before it, and reports when it did', async (t) => {
  const instant = sharedNow() + 40;
  const started = await waitForStartInstant(instant);
  t.ok(started >= instant, 'not early');
  t.ok(sharedNow() >= instant);
  // A loose bound: on a busy machine a process may wait for a core; early is what must never happen.
  t.ok(started - instant < 250, `returned ${(started - instant).toFixed(2)} ms after the instant`);
});

t.test('an instant already past returns at once, with the time now', async (t) => {
  const before = sharedNow();
  const started = await waitForStartInstant(before - 1000);
  t.ok(started >= before && started - before < 250);
});

t.test('the wait reads the clock it is given: a fake clock moves it, and the result is that clock\'s', async (t) => {
  let now = 0;
  const clock = () => (now += 0.25);
  const started = await waitForStartInstant(10, clock);
  t.ok(started >= 10 && started < 10.5, `returned at ${started} on the fake clock`);
});
