/**
 * From what measuring a scenario gave to its report (report-model.ts): each
 * target's runs summarized against the scenario's ideal, its median run as a
 * timeline from the start instant, and the sentences that open the section.
 */
import type { LoadRunResult } from '../load/load-generator.js';
import { idealMakespanMs, meanMakespanMs, representativeRun, summarizeRuns } from '../load/metrics.js';
import { describeParams, SCENARIOS, type ScenarioName, type ScenarioParams } from '../load/scenarios.js';
import { errorLabel, type SessionTimeline } from '../load/timeline.js';
import { clientsServedAtOnce } from '../targets/targets.js';
import type { RunTimeline, ScenarioReport, TargetMeasurement, TargetReport } from './report-model.js';
import { scenarioSentences } from './sentences.js';
import { summarizeCpu } from './cpu-use.js';

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
      cpu: summarizeCpu(m.runs),
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
