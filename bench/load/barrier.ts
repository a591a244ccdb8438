/**
 * The start barrier of a load run. Every load process gets ready (its script
 * prepared, its payloads hashed, its code warm), says so, and waits; once all
 * are ready the parent names one start instant on the shared clock, a little
 * in the future, and each process waits until exactly then. The spread of the
 * instants at which they actually started is the start skew, reported with
 * every run: it bounds how "together" the clients really started.
 */
import { sharedNow, sleep } from './shared-clock.js';

/** Why a barrier could not release its participants. */
export class BarrierError extends Error {
  override readonly name = 'BarrierError';

  constructor(
    readonly code: 'READY_TIMEOUT' | 'PARTICIPANT_LOST',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Parent side: counts participants in, then hands out one start instant.
 * A participant that is lost (its process exited) fails the barrier at once,
 * rather than after the timeout.
 */
export class StartBarrier {
  private readonly ready = new Set<number>();
  private settle: { resolve: () => void; reject: (error: BarrierError) => void } | null = null;
  private failure: BarrierError | null = null;

  constructor(readonly participants: number) {}

  get waitingFor(): number {
    return this.participants - this.ready.size;
  }

  arrive(participant: number): void {
    if (participant < 0 || participant >= this.participants) throw new RangeError(`no participant ${participant} in a barrier of ${this.participants}`);
    this.ready.add(participant);
    if (this.waitingFor === 0) this.settle?.resolve();
  }

  lose(participant: number, why: string): void {
    this.failure ??= new BarrierError('PARTICIPANT_LOST', `load process ${participant} was lost before the start: ${why}`);
    this.settle?.reject(this.failure);
  }

  /** Resolves once every participant has arrived. */
  allReady(timeoutMs: number): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.waitingFor === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new BarrierError('READY_TIMEOUT', `${this.waitingFor} of ${this.participants} load processes were not ready after ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      const done = (settled: () => void) => {
        clearTimeout(timer);
        this.settle = null;
        settled();
      };
      this.settle = { resolve: () => done(resolve), reject: (error) => done(() => reject(error)) };
    });
  }
}

/**
 * How far ahead of now to put the start instant: the "start" message must
 * reach every process, and each must be back asleep, before the instant comes.
 * Writing one IPC message costs well under a millisecond; the margin covers a
 * loaded machine where a process may wait a few ms for a core.
 */
export function chooseStartInstant(participants: number, now = sharedNow()): number {
  const BASE_LEAD_MS = 60;
  const LEAD_PER_PARTICIPANT_MS = 2;
  return now + BASE_LEAD_MS + LEAD_PER_PARTICIPANT_MS * participants;
}

/** Spread between the earliest and the latest actual start, in ms. */
export function startSkewMs(actualStarts: readonly number[]): number {
  if (actualStarts.length === 0) return 0;
  return Math.max(...actualStarts) - Math.min(...actualStarts);
}

/** Until this close to the instant, a process sleeps in its event loop (timers are only ms-precise). */
const COARSE_SLEEP_MARGIN_MS = 15;
const precisionSleeper = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

/**
 * Participant side: returns at the start instant, with the shared-clock time
 * it actually returned (never before the instant).
 *
 * The last stretch is a blocking Atomics.wait, not a spin: with 32 processes
 * on 2 cores, spinning processes take turns on the cores and some would only
 * see the instant several scheduler slices late, whereas sleepers are all woken
 * by the kernel's high-resolution timer at once. Only the sub-0.1 ms that a
 * timed wait may come back early is spun.
 */
export async function waitForStartInstant(instant: number, clock: () => number = sharedNow): Promise<number> {
  const coarse = instant - clock() - COARSE_SLEEP_MARGIN_MS;
  if (coarse > 0) await sleep(coarse);
  const remaining = instant - clock();
  if (remaining > 0) Atomics.wait(precisionSleeper, 0, 0, remaining);
  let now = clock();
  while (now < instant) now = clock();
  return now;
}
