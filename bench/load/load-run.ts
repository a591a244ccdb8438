/**
 * Runs what `socklab load` was asked (bench/load/load-command.ts checks the
 * command line): the load processes, the server (and the ceiling beside it,
 * with --ceiling, their runs alternating), the runs; then prints the report.
 */
import { loadCompilerFor, LoadGenerator } from './load-generator.js';
import { describeMachine } from '../report/machine.js';
import { measureTargets, type LoadRequest } from './measure.js';
import { buildScenarioReport } from '../report/build-report.js';
import type { ScenarioReport, TargetMeasurement } from '../report/report-model.js';
import { wrapText } from '../report/format.js';
import { textTable } from '../report/report-table.js';
import { cpuUseText } from '../report/cpu-use.js';
import { textTimeline } from '../report/report-timeline.js';
import { scenarioIdealIsComputed, SCENARIOS, type ScenarioName, type ScenarioParams } from './scenarios.js';
import { stoppingServersOnInterrupt } from '../targets/server-process.js';
import { targetLabel, type TargetSpec } from '../targets/targets.js';
import { ErrorCodes, SocklabError } from '../../protocol/index.js';
import { socklabCommand } from '../../bin/invocation.js';

/** Everything a load run needs, checked (load-command.ts checks it). */
export interface LoadOptions {
  readonly scenario: ScenarioName;
  readonly params: ScenarioParams;
  readonly target: TargetSpec;
  readonly processes: number;
  readonly arrivalsPerSecond: number | null;
  readonly sessionTimeoutMs: number;
  readonly warmupRuns: number;
  readonly measuredRuns: number;
  /** Measure the ceiling too, with the same load, its runs alternating with the target's. */
  readonly withCeiling: boolean;
  readonly json: boolean;
  /** Columns the text output may use (Infinity with --wide). */
  readonly width: number;
}

export function runLoad(options: LoadOptions): Promise<void> {
  return stoppingServersOnInterrupt('socklab load', 'nothing was measured', () => load(options));
}

async function load(options: LoadOptions): Promise<void> {
  const { scenario, params, processes } = options;
  const load: LoadRequest = { scenario, params, arrivalsPerSecond: options.arrivalsPerSecond, sessionTimeoutMs: options.sessionTimeoutMs };
  const specs: TargetSpec[] = options.withCeiling && options.target.kind !== 'ceiling' ? [{ kind: 'ceiling' }, options.target] : [options.target];
  if (!options.json) {
    const starting = `${scenario}: ${params.clients ?? 0} clients over ${processes} load processes against ${specs.map((spec) => targetLabel(spec)).join(' and ')}${specs.length > 1 ? ', their runs alternating' : ''}...`;
    process.stderr.write(`${wrapText(starting, options.width)}\n`);
  }
  const generator = LoadGenerator.start(processes, loadCompilerFor(scenario));
  let measurements: TargetMeasurement[];
  try {
    // The ceiling's runs and the server's alternate (measureTargets): neither pays for what the other left on the machine.
    const plan = { warmupRuns: options.warmupRuns, measuredRuns: options.measuredRuns, comparePlainLoop: (spec: TargetSpec) => spec === options.target };
    measurements = await measureTargets(generator, specs, load, plan);
  } finally {
    await generator.close();
  }
  const report = buildScenarioReport(scenario, params, load.arrivalsPerSecond, measurements);
  process.stdout.write(options.json ? loadJson(report, processes) : loadText(report, processes, options.width));
  const sessions = measurements.flatMap((m) => m.runs).flatMap((r) => r.sessions);
  if (sessions.length > 0 && sessions.every((s) => s.error !== null)) {
    // Errors are measurements, reported above; but a run in which nothing worked measured nothing.
    throw new SocklabError(ErrorCodes.CONNECTION_FAILED, `every session failed; the first: ${sessions[0]?.error?.message ?? 'unknown'}`);
  }
}

function loadText(report: ScenarioReport, processes: number, width: number): string {
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
  const prose = [
    `${socklabCommand()} load ${report.scenario} ${report.flags}: ${report.targets.map((t) => t.label).join(' and ')}`,
    `${report.targets[0]?.summary.clients ?? 0} clients over ${processes} load processes, ${report.arrivalsPerSecond === null ? 'closed model (all start together)' : `open model (${report.arrivalsPerSecond} session starts/s)`}; start skew (largest of the runs): ${skews}`,
    '',
    report.sentences.join(' '),
    `Ideal makespan: ${report.idealDefinition}${idealHint}.`,
    ...plain,
  ];
  return [
    ...prose.map((paragraph) => wrapText(paragraph, width)),
    '',
    textTable(report, width) + wrapText(cpuUseText(report), width),
    wrapText(textTimeline(report), width),
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
