/**
 * Measuring one scenario against one target: start the server as its own
 * process, run the load (warm-up runs, then measured runs, counted and timed
 * by tinybench with each run's makespan as its sample), read the server's CPU
 * time over each run (the load generator reads it at the run's edges) and its
 * peak memory, stop it. `socklab load` and `npm run bench` both go
 * through here (`socklab load` with one measured run and no warm-up unless told).
 */
import { Bench } from 'tinybench';
import type { LoadGenerator, LoadRunRequest, LoadRunResult } from './load-generator.js';
import { makespanMs, mean } from './metrics.js';
import { pingJob } from './ping-load.js';
import { SCENARIOS } from './scenarios.js';
import type { IterationStats, TargetMeasurement } from '../report/report-model.js';
import { startTarget, targetLabel, type TargetSpec } from '../targets/targets.js';

export interface MeasurePlan {
  readonly warmupRuns: number;
  readonly measuredRuns: number;
  /**
   * For a PING-burst scenario (ceiling): after each measured run, the same job done by the plain
   * loop of bench/load/ping-load.ts from this process, against the same server. Alternating the
   * two keeps drift in the machine's speed from favouring either.
   */
  readonly comparePlainLoop: boolean;
  /** Called after every run, warm-up or measured (progress bars). */
  readonly onRun?: () => void;
}

export type LoadRequest = Omit<LoadRunRequest, 'target'>;

export async function measureTarget(generator: LoadGenerator, spec: TargetSpec, load: LoadRequest, plan: MeasurePlan): Promise<TargetMeasurement> {
  const target = await startTarget(spec);
  try {
    const runs: LoadRunResult[] = [];
    let measuring = false;
    const plainLoopRates: number[] = [];
    const script = SCENARIOS[load.scenario].script;
    const plainLoopRequests = plan.comparePlainLoop && script.kind === 'ping-burst' ? script.requests(load.params) : null;
    // Read by the load generator at the start instant and at the run's end, so that it counts the run and nothing else.
    const serverCpuSeconds = () => target.usage()?.cpuSeconds ?? null;
    // time: 0 makes the iteration counts exact: tinybench runs until both its time budget and the count are met.
    const bench = new Bench({
      iterations: plan.measuredRuns,
      time: 0,
      warmup: plan.warmupRuns > 0,
      warmupIterations: plan.warmupRuns,
      warmupTime: 0,
      throws: true,
      retainSamples: true,
    });
    bench.add(
      target.label,
      async () => {
        const run = await generator.run({ ...load, target: target.endpoints, serverCpuSeconds });
        if (measuring) {
          runs.push(run);
          if (plainLoopRequests !== null) {
            const { host, pingPort } = target.endpoints;
            plainLoopRates.push((await pingJob(pingPort, run.sessions.length, plainLoopRequests, host)).perSecond);
          }
        }
        plan.onRun?.();
        return { overriddenDuration: makespanMs(run) };
      },
      {
        async: true,
        beforeAll: (mode) => {
          measuring = mode === 'run';
        },
      },
    );
    await bench.run();
    const stats = iterationStats(bench, plan.warmupRuns);
    const usage = target.usage();
    const plainLoop =
      plainLoopRates.length === 0
        ? null
        : {
            connections: runs[0]?.sessions.length ?? 0,
            runs: plainLoopRates.length,
            requestsPerSecond: mean(plainLoopRates),
          };
    return {
      spec,
      // A server elsewhere is known by its address until its greeting names its model.
      label: spec.kind === 'remote' ? targetLabel(spec, runs.find((run) => run.serverModel !== null)?.serverModel ?? null) : target.label,
      runs,
      stats,
      resources: usage === null ? null : { cpuSecondsPerRun: mean(runs.map((run) => run.cpu.serverCpuSeconds ?? 0)), peakRssBytes: usage.peakRssBytes },
      plainLoop,
    };
  } finally {
    await target.stop();
  }
}

function iterationStats(bench: Bench, warmupRuns: number): IterationStats | null {
  const result = bench.tasks[0]?.result;
  if (result === undefined || !('latency' in result)) return null;
  const { latency } = result;
  return { warmupRuns, samples: latency.samplesCount, meanMs: latency.mean, rmePercent: Number.isFinite(latency.rme) ? latency.rme : 0, sdMs: latency.sd };
}
