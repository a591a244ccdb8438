/**
 * Runs what `socklab load` was asked (bench/load-command.ts checks the
 * command line): the load processes, the server (and the ceiling first, with
 * --ceiling), the runs; then prints the report.
 */
import type { LoadOptions } from './load-command.js';
import { LoadGenerator } from './lib/load-generator.js';
import { describeMachine } from './lib/machine.js';
import { measureTarget, type LoadRequest } from './lib/measure.js';
import { buildScenarioReport, type ScenarioReport, type TargetMeasurement } from './lib/report-model.js';
import { textTable } from './lib/report-table.js';
import { textTimeline } from './lib/report-timeline.js';
import { scenarioIdealIsComputed, SCENARIOS } from './lib/scenarios.js';
import { targetLabel, type TargetSpec } from './lib/targets.js';
import { ErrorCodes, SocklabError } from '../protocol/index.js';

export async function runLoad(options: LoadOptions): Promise<void> {
  const { scenario, params, processes } = options;
  const load: LoadRequest = { scenario, params, arrivalsPerSecond: options.arrivalsPerSecond, sessionTimeoutMs: options.sessionTimeoutMs };
  const specs: TargetSpec[] = options.withCeiling && options.target.kind !== 'ceiling' ? [{ kind: 'ceiling' }, options.target] : [options.target];
  if (!options.json) {
    process.stderr.write(`${scenario}: ${params.clients ?? 0} clients over ${processes} load processes against ${specs.map(targetLabel).join(', then ')}...\n`);
  }
  const generator = LoadGenerator.start(processes);
  const measurements: TargetMeasurement[] = [];
  try {
    for (const spec of specs) {
      const plan = { warmupRuns: options.warmupRuns, measuredRuns: options.measuredRuns, comparePlainLoop: spec === options.target };
      measurements.push(await measureTarget(generator, spec, load, plan));
    }
  } finally {
    await generator.close();
  }
  const report = buildScenarioReport(scenario, params, load.arrivalsPerSecond, measurements);
  process.stdout.write(options.json ? loadJson(report, processes) : loadText(report, processes));
  const sessions = measurements.flatMap((m) => m.runs).flatMap((r) => r.sessions);
  if (sessions.length > 0 && sessions.every((s) => s.error !== null)) {
    // Errors are measurements, reported above; but a run in which nothing worked measured nothing.
    throw new SocklabError(ErrorCodes.CONNECTION_FAILED, `every session failed; the first: ${sessions[0]?.error?.message ?? 'unknown'}`);
  }
}

function loadText(report: ScenarioReport, processes: number): string {
  const skews = report.targets.map((t) => `${t.label} ${t.summary.startSkewMs.max.toFixed(2)} ms`).join(', ');
  const idealHint = idealUnknownHint(report);
  const plain = report.targets.flatMap((t) =>
    t.plainLoop === null
      ? []
      : [
          `Load generator check (${t.label}): the scripted clients drove ${Math.round(t.summary.pingsPerSecond ?? 0)} PING/s; ` +
            `the plain loop doing the same job from one process (${t.plainLoop.connections} connections), ${Math.round(t.plainLoop.requestsPerSecond)} PING/s.`,
        ],
  );
  return [
    `socklab load ${report.scenario} ${report.flags}: ${report.targets.map((t) => t.label).join(', then ')}`,
    `${report.targets[0]?.summary.clients ?? 0} clients over ${processes} load processes, ${report.arrivalsPerSecond === null ? 'closed model (all start together)' : `open model (${report.arrivalsPerSecond} session starts/s)`}; start skew (largest of the runs): ${skews}`,
    '',
    report.sentences.join(' '),
    `Ideal makespan: ${report.idealDefinition}${idealHint}.`,
    ...plain,
    '',
    textTable(report),
    textTimeline(report),
  ].join('\n');
}

/** What would give a target its missing ideal: the ceiling, or (for a server socklab did not start) --serves. */
function idealUnknownHint(report: ScenarioReport): string {
  const unknown = report.targets.filter((t) => t.summary.idealMs === null);
  if (unknown.some((t) => t.spec.kind !== 'remote')) return ' (add --ceiling to measure it)';
  if (unknown.length > 0 && scenarioIdealIsComputed(SCENARIOS[report.scenario], report.params)) {
    return ' (add --serves to compute it: how many clients that server serves at once, 1 for a blocking server, all when nobody waits)';
  }
  return '';
}

function loadJson(report: ScenarioReport, processes: number): string {
  return `${JSON.stringify({ schema: 'socklab-load/1', createdAt: new Date().toISOString(), machine: describeMachine(), processes, report }, null, 2)}\n`;
}
