/**
 * One clock for every process of a load run. performance.timeOrigin is the
 * wall-clock instant (ms since the epoch) at which this process started, and
 * performance.now() the monotonic time since then, so their sum is a
 * sub-millisecond, wall-clock-aligned time that every process on the machine
 * reads alike: a timeline recorded in one process lines up with the others.
 */

export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Resolves at (or just after) a shared-clock instant; never early. */
export async function sleepUntil(instant: number): Promise<void> {
  for (let remaining = instant - sharedNow(); remaining > 0; remaining = instant - sharedNow()) await sleep(remaining);
}
