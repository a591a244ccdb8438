/**
 * Measuring one scenario against its targets: start each server as its own
 * process, run the load (warm-up runs, then measured runs, the targets' runs
 * interleaved; tinybench turns each target's makespans into its statistics),
 * read each server's CPU time over each run (the load generator reads it at
 * the run's edges) and its peak memory, stop them. `socklab load` and
 * `npm run bench` both go through here (`socklab load` with one measured run
 * and no warm-up unless told).
 */
import { Bench } from 'tinybench';
import type { LoadGenerator, LoadRunRequest, LoadRunResult } from './load-generator.js';
import { makespanMs, mean } from './metrics.js';
import { pingJob } from './ping-load.js';
import { SCENARIOS } from './scenarios.js';
import type { IterationStats, TargetMeasurement } from '../report/report-model.js';
import { startTarget, targetLabel, type RunningTarget, type TargetSpec } from '../targets/targets.js';

export interface MeasurePlan {
  readonly warmupRuns: number;
  readonly measuredRuns: number;
  /**
   * For a PING-burst scenario (ceiling): whether, after each measured run against `spec`, the same
   * job is done by the plain loop of bench/load/ping-load.ts from this process, against the same
   * server. Alternating the two keeps drift in the machine's speed from favouring either.
   */
  readonly comparePlainLoop: (spec: TargetSpec) => boolean;
  /** Called after every run, warm-up or measured (progress bars). */
  readonly onRun?: () => void;
}

export type LoadRequest = Omit<LoadRunRequest, 'target'>;

/** One target: its server, and what its runs have measured so far. */
interface Measuring {
  readonly spec: TargetSpec;
  readonly target: RunningTarget;
  readonly runs: LoadRunResult[];
  readonly plainLoopRates: number[];
  /** PINGs per session for the plain loop after each measured run; null: no plain loop. */
  readonly plainLoopRequests: number | null;
}

/**
 * Several targets under the same load, their runs interleaved: one run of
 * each in turn, the order reversed every other round (A B, B A, A B, ...).
 * Whatever drifts on the machine meanwhile falls on each alike. Measured one
 * after the other, the later target would pay for what the earlier left
 * behind: on ext4, creating a file in a directory whose inode group holds
 * many inodes deleted in the last minute scans past each of them, and one
 * target's thousand deleted uploads made the next one's cost several times
 * the CPU.
 */
export async function measureTargets(generator: LoadGenerator, specs: readonly TargetSpec[], load: LoadRequest, plan: MeasurePlan): Promise<TargetMeasurement[]> {
  const started: Measuring[] = [];
  const script = SCENARIOS[load.scenario].script;
  try {
    for (const spec of specs) {
      const plainLoopRequests = plan.comparePlainLoop(spec) && script.kind === 'ping-burst' ? script.requests(load.params) : null;
      started.push({ spec, target: await startTarget(spec), runs: [], plainLoopRates: [], plainLoopRequests });
    }
    for (let round = 0; round < plan.warmupRuns + plan.measuredRuns; round++) {
      const measured = round >= plan.warmupRuns;
      for (const measuring of round % 2 === 0 ? started : [...started].reverse()) {
        await runOnce(generator, measuring, load, measured);
        plan.onRun?.();
      }
    }
    const measurements: TargetMeasurement[] = [];
    for (const measuring of started) measurements.push(await measurementOf(measuring, plan.warmupRuns));
    return measurements;
  } finally {
    await Promise.all(started.map(({ target }) => target.stop()));
  }
}

async function runOnce(generator: LoadGenerator, measuring: Measuring, load: LoadRequest, measured: boolean): Promise<void> {
  const { target } = measuring;
  // Read by the load generator at the start instant and at the run's end, so that it counts the run and nothing else.
  const serverCpuSeconds = () => target.usage()?.cpuSeconds ?? null;
  const run = await generator.run({ ...load, target: target.endpoints, serverCpuSeconds });
  if (!measured) return;
  measuring.runs.push(run);
  if (measuring.plainLoopRequests !== null) {
    const { host, pingPort } = target.endpoints;
    measuring.plainLoopRates.push((await pingJob(pingPort, run.sessions.length, measuring.plainLoopRequests, host)).perSecond);
  }
}

async function measurementOf({ spec, target, runs, plainLoopRates }: Measuring, warmupRuns: number): Promise<TargetMeasurement> {
  const usage = target.usage();
  return {
    spec,
    // A server elsewhere is known by its address until its greeting names its model.
    label: spec.kind === 'remote' ? targetLabel(spec, runs.find((run) => run.serverModel !== null)?.serverModel ?? null) : target.label,
    runs,
    stats: await iterationStats(runs.map(makespanMs), warmupRuns),
    resources: usage === null ? null : { cpuSecondsPerRun: mean(runs.map((run) => run.cpu.serverCpuSeconds ?? 0)), peakRssBytes: usage.peakRssBytes },
    plainLoop: plainLoopRates.length === 0 ? null : { connections: runs[0]?.sessions.length ?? 0, runs: plainLoopRates.length, requestsPerSecond: mean(plainLoopRates) },
  };
}

/** tinybench's statistics over the measured runs, each run's makespan its sample. */
async function iterationStats(makespans: readonly number[], warmupRuns: number): Promise<IterationStats | null> {
  if (makespans.length === 0) return null;
  // time: 0 makes the iteration count exact: tinybench runs until both its time budget and the count are met.
  const bench = new Bench({ iterations: makespans.length, time: 0, warmup: false, throws: true, retainSamples: true });
  let next = 0;
  bench.add('runs', async () => ({ overriddenDuration: makespans[next++] ?? 0 }), { async: true });
  await bench.run();
  const result = bench.tasks[0]?.result;
  if (result === undefined || !('latency' in result)) return null;
  const { latency } = result;
  return { warmupRuns, samples: latency.samplesCount, meanMs: latency.mean, rmePercent: Number.isFinite(latency.rme) ? latency.rme : 0, sdMs: latency.sd };
}
