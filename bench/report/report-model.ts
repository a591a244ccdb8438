/**
 * The data every report is drawn from (the terminal tables, the Markdown
 * report, the SVG timelines, the JSON): per scenario, per target, the summary
 * of its runs, the timeline of its median run (in ms from the start instant),
 * and what the server process used. build-report.ts builds it from the
 * measurements.
 */
import type { LoadRunResult, RunCpu } from '../load/load-generator.js';
import type { TargetSummary } from '../load/metrics.js';
import type { ScenarioName, ScenarioParams } from '../load/scenarios.js';
import type { TargetSpec } from '../targets/targets.js';
import type { SessionTimeline } from '../load/timeline.js';

/** tinybench's statistics of the makespan over the measured iterations. */
export interface IterationStats {
  readonly warmupRuns: number;
  readonly samples: number;
  readonly meanMs: number;
  /** Relative margin of error, %: the 95% confidence half-width over the mean. */
  readonly rmePercent: number;
  readonly sdMs: number;
}

export interface ServerResources {
  /** Server CPU (user + system) per measured run, seconds, from the start instant to the last load process's report. */
  readonly cpuSecondsPerRun: number;
  readonly peakRssBytes: number;
}

/** The plain request/response PING loop (bench/load/ping-load.ts) over as many connections, same server, same run. */
export interface PlainLoopResult {
  readonly connections: number;
  /** Plain-loop runs, one after each measured run of the scenario. */
  readonly runs: number;
  /** Their mean. */
  readonly requestsPerSecond: number;
}

/** What measuring one target gave, before it is summarized. */
export interface TargetMeasurement {
  readonly spec: TargetSpec;
  readonly label: string;
  readonly runs: readonly LoadRunResult[];
  readonly stats: IterationStats | null;
  readonly resources: ServerResources | null;
  readonly plainLoop: PlainLoopResult | null;
}

/**
 * A session as reports show it: its times in ms from the run's start instant,
 * its error as the label tables count it by.
 */
export type RelativeSession = Omit<SessionTimeline, 'uploadedBytes' | 'error'> & { readonly error: string | null };

export interface RunTimeline {
  readonly startSkewMs: number;
  readonly sessions: readonly RelativeSession[];
}

/**
 * Where the machine's CPU went during the measured runs (means per run): the
 * load processes' CPU (the server's is in ServerResources) and how busy the
 * cores were, so that a run that measured the machine rather than the model
 * can say so.
 */
export interface CpuUse {
  /** From the start instant to the last load process's report. */
  readonly windowMs: number;
  /** The load processes' user + system CPU seconds, summed over them. */
  readonly loadCpuSeconds: number;
  /** How busy the machine's cores were over the window (/proc/stat); null where it cannot be read. */
  readonly machine: {
    readonly cores: number;
    /** All cores: 1 − idle ÷ total. */
    readonly busyShare: number;
    /** Per core, cpu0 first. */
    readonly coreBusyShares: readonly number[];
  } | null;
  /** Each measured run's own figures, in the order they ran (the server's CPU among them). */
  readonly runs: readonly RunCpu[];
}

export interface TargetReport {
  readonly label: string;
  readonly spec: TargetSpec;
  readonly summary: TargetSummary;
  readonly stats: IterationStats | null;
  readonly resources: ServerResources | null;
  /** Absent from reports recorded before socklab measured it. */
  readonly cpu?: CpuUse;
  readonly plainLoop: PlainLoopResult | null;
  /** The run with the median makespan. */
  readonly timeline: RunTimeline;
}

export interface ScenarioReport {
  readonly scenario: ScenarioName;
  readonly params: ScenarioParams;
  /** The flags that reproduce it: `socklab load chat --clients 8 ...`. */
  readonly flags: string;
  readonly arrivalsPerSecond: number | null;
  readonly idealDefinition: string;
  readonly sentences: readonly string[];
  readonly targets: readonly TargetReport[];
}
