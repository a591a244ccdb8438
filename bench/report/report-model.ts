/**
 * The data every report is drawn from (the terminal tables, the Markdown
 * report, the SVG timelines, the JSON): per scenario, per target, the summary
 * of its runs, the timeline of its median run (in ms from the start instant),
 * and what the server process used.
 */
import type { LoadRunResult } from '../load/load-generator.js';
import { idealMakespanMs, meanMakespanMs, representativeRun, summarizeRuns, type TargetSummary } from '../load/metrics.js';
import { describeParams, SCENARIOS, type ScenarioName, type ScenarioParams } from '../load/scenarios.js';
import { scenarioSentences } from './sentences.js';
import { clientsServedAtOnce, type TargetSpec } from '../targets/targets.js';
import { errorLabel, type SessionTimeline } from '../load/timeline.js';

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
  /** Server CPU (user + system) per measured run, seconds. */
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

export interface TargetReport {
  readonly label: string;
  readonly spec: TargetSpec;
  readonly summary: TargetSummary;
  readonly stats: IterationStats | null;
  readonly resources: ServerResources | null;
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

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

export function relativeTimeline(run: LoadRunResult): RunTimeline {
  const from = (instant: number | null) => (instant === null ? null : round3(instant - run.startAt));
  return {
    startSkewMs: round3(run.startSkewMs),
    sessions: run.sessions.map((s: SessionTimeline) => ({
      client: s.client,
      process: s.process,
      role: s.role,
      scheduledStart: round3(s.scheduledStart - run.startAt),
      connectStart: from(s.connectStart),
      connected: from(s.connected),
      greeted: from(s.greeted),
      quitSent: from(s.quitSent),
      done: round3(s.done - run.startAt),
      error: s.error === null ? null : errorLabel(s.error),
      replies: s.replies.map((r) => ({ ...r, sentAt: round3(r.sentAt - run.startAt), at: round3(r.at - run.startAt) })),
    })),
  };
}

/** Summarizes each target's runs against the scenario's ideal (see idealMakespanMs). */
export function buildScenarioReport(
  scenarioName: ScenarioName,
  params: ScenarioParams,
  arrivalsPerSecond: number | null,
  measurements: readonly TargetMeasurement[],
): ScenarioReport {
  const scenario = SCENARIOS[scenarioName];
  const ceiling = measurements.find((m) => m.spec.kind === 'ceiling');
  const ceilingMakespan = ceiling === undefined ? null : meanMakespanMs(ceiling.runs);
  const targets = measurements.map((m): TargetReport => {
    const sample = representativeRun(m.runs);
    const atOnce = clientsServedAtOnce(m.spec, sample.serverModel);
    const idealMs = idealMakespanMs(scenario, params, sample.planned, atOnce, ceilingMakespan);
    return {
      label: m.label,
      spec: m.spec,
      summary: summarizeRuns(m.runs, idealMs),
      stats: m.stats,
      resources: m.resources,
      plainLoop: m.plainLoop,
      timeline: relativeTimeline(sample),
    };
  });
  return {
    scenario: scenarioName,
    params,
    flags: describeParams(scenario, params) + (arrivalsPerSecond === null ? '' : ` --rate ${arrivalsPerSecond}`),
    arrivalsPerSecond,
    idealDefinition: scenario.idealDefinition(params),
    sentences: scenarioSentences(scenario.story, targets),
    targets,
  };
}
