/**
 * `npm run bench`: every server × every scenario, each server as its own
 * process, the clients as load processes released together, the servers' runs
 * alternating within a scenario; tinybench gives mean ± rme of the makespan. Writes the
 * report, its JSON, a timeline SVG per scenario and index.html into
 * results/local/ (git-ignored: the reference run committed in results/, which
 * the guides point at, is never overwritten), and prints the tables and text
 * timelines (or, with --json, the JSON) on stdout; a progress bar goes to
 * stderr.
 *
 *   npm run bench                                   everything (about 6½ minutes on 2 cores)
 *   npm run bench -- --quick                        one run each, about a minute
 *   npm run bench -- --scenario chat --servers sequential,async
 *   npm run bench -- --json > bench.json
 *   npm run bench -- --out results                  a new reference run (then commit it)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_THREADS } from '../servers/cli.js';
import { checkInteger, exitWithFailure, OUTPUT_COLUMNS, outputWidth, UsageError } from '../bin/cli-support.js';
import { socklabCommand } from '../bin/invocation.js';
import { defaultProcessCount, loadCompilerFor, LoadGenerator } from './load/load-generator.js';
import { describeMachine } from './report/machine.js';
import { measureTargets } from './load/measure.js';
import { writeHtmlReport } from './report/report-html.js';
import type { BenchReport } from './report/report-markdown.js';
import { buildScenarioReport } from './report/build-report.js';
import type { ScenarioReport } from './report/report-model.js';
import { textTable } from './report/report-table.js';
import { cpuUseText } from './report/cpu-use.js';
import { wrapText } from './report/format.js';
import { textTimeline } from './report/report-timeline.js';
import { writeResults } from './report/results-files.js';
import { stoppingServersOnInterrupt } from './targets/server-process.js';
import { checkCopySinkCeiling } from './targets/native-copy.js';
import { ceilingCheckSentence } from './report/report-markdown.js';
import { DEFAULT_WARMUP_RUNS, defaultWarmupRuns, SCENARIO_NAMES, SCENARIOS, scenarioParams, type ScenarioName } from './load/scenarios.js';
import { LOCAL_SERVERS, localTargetSpec, targetLabel, type LocalServer, type TargetSpec } from './targets/targets.js';

const REPOSITORY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where a run goes unless --out says otherwise: beside the committed reference run in results/, never over it. */
const LOCAL_RESULTS_DIR = path.join(REPOSITORY, 'results', 'local');
/** A session still running this long after its scheduled start is ended and counted as an error: a stall costs a minute, not the run. */
const SESSION_TIMEOUT_MS = 60_000;
/** The upload that compares the copy-sink with a native copy: large enough to reach full speed, short enough to cost a second. */
const CEILING_CHECK_BYTES = 128 * 1024 * 1024;
/**
 * --quick shortens the longest runs: the slow client trickles half as much
 * (2 s instead of 4), the ceiling's clients send 2,000 PINGs instead of
 * 5,000. Chat stays as homework 2 has it: its makespan is what gets checked
 * against the ideal.
 */
const QUICK_PARAMS: Partial<Record<ScenarioName, Record<string, number>>> = {
  'slow-client': { slowSize: 512 * 1024 },
  ceiling: { requests: 2000 },
};

const args = await yargs(hideBin(process.argv))
  .scriptName('npm run bench --')
  .usage('$0 [options]\n\nEvery socklab server against every load scenario; results into results/.')
  .option('quick', { type: 'boolean', default: false, describe: 'one measured run per server and scenario, no warm-up (about a minute on 2 cores)' })
  .option('iterations', { type: 'number', describe: 'measured runs per server and scenario (default 5; 1 with --quick)' })
  .option('warmup', { type: 'number', describe: 'warm-up runs before them (default 1, the crowd 3: enough for a fresh server to compile its code; 0 with --quick)' })
  .option('scenario', { type: 'string', default: SCENARIO_NAMES.join(','), describe: `scenarios, comma-separated: ${SCENARIO_NAMES.join(', ')}` })
  .option('servers', { type: 'string', default: LOCAL_SERVERS.join(','), describe: `servers, comma-separated: ${LOCAL_SERVERS.join(', ')}` })
  .option('few-threads', { type: 'number', default: 4, describe: 'workers also runs with this many threads (fewer than the clients, so the pool queue shows); 0: not' })
  .option('json', { type: 'boolean', default: false, describe: 'print the results as JSON on stdout (progress stays on stderr)' })
  .option('out', {
    type: 'string',
    default: path.relative(process.cwd(), LOCAL_RESULTS_DIR) || '.',
    describe: 'directory for the report, JSON, SVG and index.html (git-ignored; "--out results" replaces the committed reference run)',
  })
  .option('wide', { type: 'boolean', default: false, describe: `tables with every column on one line (about 190 columns); without it, the output fits ${OUTPUT_COLUMNS}` })
  .example('$0 --quick', 'all servers and scenarios, one run each')
  .example('$0 --scenario chat,slow-client --servers sequential,async', 'a subset')
  .strict()
  .help()
  .parseAsync();

function listOption<T extends string>(value: string, allowed: readonly T[], option: string): T[] {
  const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const item of items) if (!(allowed as readonly string[]).includes(item)) throw new UsageError(`${option}: "${item}" is not one of ${allowed.join(', ')}`);
  if (items.length === 0) throw new UsageError(`${option} names nothing`);
  return items as T[];
}

/** The servers of one scenario, workers twice: at its default pool size and with fewer threads than clients. */
function targetsFor(servers: readonly LocalServer[], fewThreads: number): TargetSpec[] {
  return servers.flatMap((server): TargetSpec[] => {
    if (server !== 'workers') return [localTargetSpec(server)];
    const pools = fewThreads > 0 && fewThreads !== DEFAULT_THREADS ? [DEFAULT_THREADS, fewThreads] : [DEFAULT_THREADS];
    return pools.map((threads) => localTargetSpec('workers', threads));
  });
}

async function main(): Promise<void> {
  const began = performance.now();
  const createdAt = new Date().toISOString();
  const scenarios = listOption(args.scenario, SCENARIO_NAMES, '--scenario');
  const servers = listOption(args.servers, LOCAL_SERVERS, '--servers');
  const measuredRuns = checkInteger(args.iterations ?? (args.quick ? 1 : 5), '--iterations', 1, 1000);
  const warmupAsked = args.warmup === undefined ? null : checkInteger(args.warmup, '--warmup', 0, 1000);
  const paramsOf = (name: ScenarioName) => scenarioParams(SCENARIOS[name], args.quick ? QUICK_PARAMS[name] : {});
  const warmupRunsOf = (name: ScenarioName) => warmupAsked ?? (args.quick ? 0 : defaultWarmupRuns(SCENARIOS[name], paramsOf(name)));
  const targets = targetsFor(servers, checkInteger(args['few-threads'], '--few-threads', 0, 1024));

  const progress = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'bench {bar} {value}/{total} runs | {task} | {duration_formatted}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  const totalRuns = scenarios.reduce((runs, name) => runs + targets.length * (warmupRunsOf(name) + measuredRuns), 0);
  const onTTY = process.stderr.isTTY === true;
  if (onTTY) progress.start(totalRuns, 0, { task: 'starting' });

  // How far the copy-sink ceiling is from the machine itself (a native copy), so that "% of ceiling" can be read against it,
  // and what the sha256 every socklab server computes costs on top of it (the hash-sink).
  const usesCopySink = servers.includes('ceiling') && scenarios.some((name) => name !== 'chat' && name !== 'ceiling');
  if (usesCopySink && !onTTY) process.stderr.write('checking the copy-sink and hash-sink ceilings against a native copy\n');
  const ceilingCheck = usesCopySink ? await checkCopySinkCeiling(CEILING_CHECK_BYTES, args.quick ? 1 : 3) : null;

  const reports: ScenarioReport[] = [];
  // Load processes are kept from scenario to scenario when as many, on the same compiler, are needed: starting them costs seconds.
  const generators = new Map<string, LoadGenerator>();
  try {
    for (const name of scenarios) {
      const params = paramsOf(name);
      const warmupRuns = warmupRunsOf(name);
      const processes = defaultProcessCount(params.clients ?? 1, SCENARIOS[name].defaultProcesses);
      const compiler = loadCompilerFor(name);
      const generatorKey = `${processes} ${compiler}`;
      const generator = generators.get(generatorKey) ?? LoadGenerator.start(processes, compiler);
      generators.set(generatorKey, generator);
      const task = `${name} × ${targets.map((spec) => targetLabel(spec)).join(', ')}`;
      if (onTTY) progress.update({ task });
      else process.stderr.write(`${task}: ${warmupRuns} warm-up + ${measuredRuns} measured run(s) each, their runs alternating\n`);
      const load = { scenario: name, params, arrivalsPerSecond: null, sessionTimeoutMs: SESSION_TIMEOUT_MS };
      // The ceiling scenario checks the load generator itself: the plain PING loop does the same job against the same line server.
      const plan = { warmupRuns, measuredRuns, comparePlainLoop: (spec: TargetSpec) => spec.kind === 'ceiling', onRun: () => onTTY && progress.increment() };
      // Every server's runs alternate with the others' (measureTargets), so none pays for what another left on the machine.
      const measurements = await measureTargets(generator, targets, load, plan);
      reports.push(buildScenarioReport(name, params, null, measurements));
    }
  } finally {
    if (onTTY) progress.stop();
    await Promise.all([...generators.values()].map((generator) => generator.close()));
  }

  const report: BenchReport = {
    schema: 'socklab-bench/1',
    run: {
      createdAt,
      command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
      quick: args.quick,
      // Most scenarios' warm-up; one that warmed up more says so in its targets' stats (runExtent names it).
      warmupRuns: warmupAsked ?? (args.quick ? 0 : DEFAULT_WARMUP_RUNS),
      measuredRuns,
      durationSeconds: (performance.now() - began) / 1000,
    },
    machine: describeMachine(),
    ...(ceilingCheck === null ? {} : { ceilingCheck }),
    scenarios: reports,
  };
  const out = path.resolve(args.out);
  const written = writeResults(out, report);
  const html = writeHtmlReport(out, report);
  if (args.json) {
    process.stdout.write(written.jsonText);
  } else {
    const width = outputWidth(args.wide);
    if (ceilingCheck !== null) process.stdout.write(`${wrapText(ceilingCheckSentence(ceilingCheck), width)}\n`);
    for (const scenario of reports) {
      process.stdout.write(`\n## ${scenario.scenario}  (${socklabCommand()} load ${scenario.scenario} ${scenario.flags})\n${wrapText(scenario.sentences.join(' '), width)}\n\n`);
      process.stdout.write(`${textTable(scenario, width)}${wrapText(cpuUseText(scenario), width)}\n${wrapText(textTimeline(scenario), width)}`);
    }
    process.stdout.write(`\n`);
  }
  const shown = (file: string) => {
    const relative = path.relative(process.cwd(), file);
    return relative === '' || relative.startsWith('..') ? file : relative;
  };
  const timelines = `${written.svgs.length} SVG timeline${written.svgs.length === 1 ? '' : 's'}`;
  process.stderr.write(
    `bench took ${Math.round(report.run.durationSeconds)} s. This run's report: ${shown(html)} (open it in a browser);\n` +
      `beside it ${path.basename(written.markdown)}, ${path.basename(written.json)} and ${timelines}; ${shown(path.join(out, 'latest.md'))} points at the newest run there.\n`,
  );
}

stoppingServersOnInterrupt('npm run bench', 'no results were written', main).catch(exitWithFailure);
