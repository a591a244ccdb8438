/**
 * The clock every process of a load run shares: a time read in a child process
 * must fall between two reads in the parent that bracket it, or timelines from
 * different load processes do not line up (and start skew is partly clock error).
 */
import { fork, type ChildProcess } from 'node:child_process';
import t from 'tap';
import { adoptClockAnchor, clockAnchor, sharedNow } from '../../bench/load/shared-clock.js';

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    // Each round adds its listeners: take both off when either fires, or they pile up on the child.
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`the clock child exited (${code})`));
    };
    const onMessage = (message: unknown) => {
      child.off('exit', onExit);
      resolve(message as T);
    };
    child.once('message', onMessage);
    child.once('exit', onExit);
  });
}

t.test('a time read in another process falls between two reads here that bracket it', async (t) => {
  // Several children started at once: each one's own start-up clock sample is
  // the thing that used to differ between processes.
  const children = Array.from({ length: 8 }, () => fork(new URL('./clock-child.js', import.meta.url), { execArgv: [] }));
  t.teardown(() => children.forEach((child) => child.kill()));
  await Promise.all(children.map((child) => nextMessage(child)));
  for (const [index, child] of children.entries()) {
    child.send({ anchor: clockAnchor() });
    for (let round = 0; round < 10; round++) {
      const answer = nextMessage<{ now: number }>(child);
      const before = sharedNow();
      child.send({ ping: true });
      const { now } = await answer;
      const after = sharedNow();
      if (now < before || now > after) {
        t.fail(`child ${index} read ${now.toFixed(3)}, outside [${before.toFixed(3)}, ${after.toFixed(3)}]: off by ${(now < before ? now - before : now - after).toFixed(3)} ms`);
        return;
      }
    }
    t.pass(`child ${index} agrees with this process`);
  }
});

t.test('the shared clock reads wall-clock time, so that it lines up with the server log\'s ISO stamps', async (t) => {
  const lag = Math.abs(sharedNow() - Date.now());
  t.ok(lag < 50, `within 50 ms of Date.now() (${lag.toFixed(1)} ms)`);
});

t.test('an anchor that is not a number of ms is refused', async (t) => {
  const anchor = clockAnchor();
  t.throws(() => adoptClockAnchor(Number.NaN), RangeError);
  t.equal(clockAnchor(), anchor, 'and the clock is unchanged');
});
