/**
 * One clock for every process of a load run, in wall-clock milliseconds with
 * sub-millisecond resolution, so that a timeline recorded in one process lines
 * up with the others and with the server's ISO-stamped log lines.
 *
 * It is the kernel's monotonic clock (process.hrtime), which every process on
 * the machine reads alike, plus one wall-clock anchor. The anchor must be the
 * *same number* in every process: each process deriving its own from
 * performance.timeOrigin (sampled once at start-up) disagreed by up to 12 ms
 * when 32 processes started at once on 2 cores, which showed up as start skew
 * that was really clock error. So the parent hands its anchor to each load
 * process (`adoptClockAnchor`).
 */

function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** shared time = monotonic time + this; only as wall-accurate as this process's own start-up sample, but identical everywhere once adopted. */
let wallMinusMonotonicMs = performance.timeOrigin + performance.now() - monotonicMs();

export function sharedNow(): number {
  return monotonicMs() + wallMinusMonotonicMs;
}

/** This process's anchor, to hand to the processes that must share its clock. */
export function clockAnchor(): number {
  return wallMinusMonotonicMs;
}

/** Use another process's anchor (see clockAnchor), so that both read the same time. */
export function adoptClockAnchor(anchor: number): void {
  if (!Number.isFinite(anchor)) throw new RangeError(`a clock anchor must be a finite number of ms, not ${anchor}`);
  wallMinusMonotonicMs = anchor;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Resolves at (or just after) a shared-clock instant; never early. */
export async function sleepUntil(instant: number): Promise<void> {
  for (let remaining = instant - sharedNow(); remaining > 0; remaining = instant - sharedNow()) await sleep(remaining);
}
