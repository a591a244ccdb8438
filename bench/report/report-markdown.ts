/** The Markdown report of a bench run: the machine, then a section per scenario. */
import type { MachineInfo } from './machine.js';
import type { ScenarioReport } from './report-model.js';
import { markdownTable } from './report-table.js';
import { cpuUseMarkdown } from './cpu-use.js';
import type { CeilingCheck } from '../targets/native-copy.js';

export interface BenchRunInfo {
  readonly createdAt: string;
  readonly command: string;
  readonly quick: boolean;
  readonly warmupRuns: number;
  readonly measuredRuns: number;
  readonly durationSeconds: number;
}

/** When the run was made, for a heading: `2026-11-27 19:25:59 UTC`. */
export function runDate(run: Pick<BenchRunInfo, 'createdAt'>): string {
  return run.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/**
 * How much was measured and how long it took, after the command: the same
 * words in every report. A scenario that warmed up more than the others (the
 * crowd: enough runs for a fresh server to compile its code) is named.
 */
export function runExtent({ run, scenarios }: Pick<BenchReport, 'run' | 'scenarios'>): string {
  const otherWarmups = scenarios.flatMap(({ scenario, targets }) => {
    const warmupRuns = targets.find((target) => target.stats !== null)?.stats?.warmupRuns;
    return warmupRuns === undefined || warmupRuns === run.warmupRuns ? [] : [`${scenario}: ${warmupRuns}`];
  });
  const warmups = otherWarmups.length === 0 ? '' : ` (${otherWarmups.join(', ')}, enough for a fresh server to compile its per-session code)`;
  return `${run.measuredRuns} measured run(s) per server and scenario after ${run.warmupRuns} warm-up run(s)${warmups}; took ${Math.round(run.durationSeconds)} s`;
}

export interface BenchReport {
  readonly schema: 'socklab-bench/1';
  readonly run: BenchRunInfo;
  readonly machine: MachineInfo;
  /** The copy-sink ceiling against a native copy (absent in older reports, and when no copy-sink ran). */
  readonly ceilingCheck?: CeilingCheck;
  readonly scenarios: readonly ScenarioReport[];
}

/** What the copy-sink ceiling is, how far it is from what the machine itself does, and what the sha256 costs on top of it. */
export function ceilingCheckSentence(check: CeilingCheck): string {
  const sink = `The copy-sink ceiling (bare Node: socket reads of up to 1 MiB, 1 MiB writes in flight on libuv's thread pool, then fsync) moved a ${check.bytes / 1024 / 1024} MiB upload at ${Math.round(check.copySinkMiBps)} MiB/s`;
  // Every "×" here divides the rates as printed (medians of the rounds), so that a reader can check it and none contradicts them.
  const nativeMiBps = check.native?.MiBps;
  const hashSink = check.hashSinkMiBps;
  const hashing =
    hashSink === undefined
      ? ''
      : ` The hash-sink (the same, also computing each upload's sha256 on its one thread, as a server that checks what it stores must) moved it at ${Math.round(hashSink)} MiB/s` +
        `${nativeMiBps === undefined ? '' : `, ${(hashSink / nativeMiBps).toFixed(2)}× the native copy`}, ${(hashSink / check.copySinkMiBps).toFixed(2)}× the copy-sink: ` +
        "the socklab servers check every upload's sha256 too, so that much of their distance from the ceiling on bytes is the hashing's, not their model's.";
  if (check.native === null) return `${sink}; no native copy tool (socat or nc) is installed here, so how far that is from the machine itself was not measured.${hashing}`;
  const ratio = (check.copySinkMiBps / check.native.MiBps).toFixed(2);
  // Rounded as printed: "1.00×" needs no explaining.
  const faster =
    Number(ratio) > 1
      ? ' Faster than the native copy: the copy-sink reads the socket on one thread while libuv\'s pool writes the file on others, where the native tool reads, then writes, on one.'
      : '';
  return `${sink}, ${ratio}× a native copy on this machine (${check.native.tool}: ${Math.round(check.native.MiBps)} MiB/s; both medians of the rounds, which alternated).${faster} "% of ceiling" on bytes is against the copy-sink, not the native copy.${hashing}`;
}

/** `svgFile(scenario)` names the timeline picture written beside the report. */
export function markdownReport(report: BenchReport, svgFile: (scenario: string) => string): string {
  const { run, machine } = report;
  const skews = report.scenarios.map(startSkew);
  const worst = skews.reduce((a, b) => (b.skewMs > a.skewMs ? b : a), { skewMs: 0, processes: 0 });
  const out: string[] = [
    `# socklab bench, ${runDate(run)}`,
    '',
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`,
    `- Node ${machine.node}, socklab commit ${machine.gitCommit}`,
    `- Command: \`${run.command}\`: ${runExtent(report)}`,
    `- Start skew (spread of the load processes' actual start instants): at most ${worst.skewMs.toFixed(2)} ms (${worst.processes} processes)`,
    ...(report.ceilingCheck === undefined ? [] : [`- Ceilings: ${ceilingCheckSentence(report.ceilingCheck)}`]),
    '',
    'Each server ran as its own process, started afresh for each scenario; the clients were separate processes released together at a barrier. ' +
      'The ceiling is bare Node doing the same work: a copy sink (it greets, answers every line, copies each upload into a file and fsyncs it, with the round trips of a socklab session: `150` before the data, `226` after it, `221` to QUIT) for the scripted scenarios, a line server for the PINGs of the ceiling scenario. ' +
      'Makespan is from the common start instant to the last client done (mean ± relative margin of error at 95% over the measured runs, n = samples). ' +
      'Queue wait is TCP connect to greeting; session time is from the scheduled start to done; percentiles pool every session of every measured run (HDR histogram). ' +
      '"Most at once" counts clients between their greeting and their QUIT at the same instant. Server CPU is per run; peak RSS is over the whole scenario. ' +
      "Under each table, the CPU of each run from the start instant to the last load process's report: the server's and the load processes' CPU seconds, the cores they amount to (CPU seconds ÷ the run's time), and the share of the machine's cores that was busy (/proc/stat, all processes).",
    '',
  ];
  for (const [index, scenario] of report.scenarios.entries()) {
    const skew = skews[index] ?? startSkew(scenario);
    out.push(
      `## ${scenario.scenario}`,
      '',
      scenario.sentences.join(' '),
      '',
      `\`socklab load ${scenario.scenario} ${scenario.flags}\` (start skew at most ${skew.skewMs.toFixed(2)} ms over ${skew.processes} load processes). Ideal makespan: ${scenario.idealDefinition}.`,
      '',
      markdownTable(scenario),
      ...[cpuUseMarkdown(scenario)].filter((text) => text !== ''),
      `![${scenario.scenario} timeline: one row per client, time across](${svgFile(scenario.scenario)})`,
      '',
    );
  }
  return out.join('\n');
}

/** The worst start skew of a scenario's runs, and over how many load processes. */
function startSkew(scenario: ScenarioReport): { skewMs: number; processes: number } {
  return {
    skewMs: Math.max(0, ...scenario.targets.map((t) => t.summary.startSkewMs.max)),
    processes: Math.max(0, ...scenario.targets.map((t) => new Set(t.timeline.sessions.map((s) => s.process)).size)),
  };
}
