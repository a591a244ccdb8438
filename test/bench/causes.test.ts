/**
 * The sentences that explain a result, on recorded runs: an earlier
 * reference run kept in test/bench/recorded/ (recorded before the CPU figures
 * existed, with async serving 843 of 1000 at once in its crowd), and small
 * hand-made records for the situations it does not show (saturated cores, a
 * server above the ceiling, a wait that was the load generator's). Each
 * sentence must come with the right figures when its situation arises, and
 * not at all when it does not.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { causeSentences } from '../../bench/report/causes.js';
import { buildScenarioReport } from '../../bench/report/build-report.js';
import type { BenchReport } from '../../bench/report/report-markdown.js';
import type { CpuUse, ScenarioReport, TargetReport } from '../../bench/report/report-model.js';
import { tableCells } from '../../bench/report/report-table.js';
import { scenarioSentences } from '../../bench/report/sentences.js';
import { scenarioParams, SCENARIOS, type ScenarioStory } from '../../bench/load/scenarios.js';
import { chatMeasurements, chatRun, measurement, session, T0 } from './fixtures.js';

const REFERENCE_RUN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/bench/recorded/2026-11-27T19-25-59Z.json');
const reference = JSON.parse(fs.readFileSync(REFERENCE_RUN, 'utf8')) as BenchReport;

function referenceScenario(name: string): ScenarioReport {
  const scenario = reference.scenarios.find((s) => s.scenario === name);
  if (scenario === undefined) throw new Error(`no ${name} in the reference run`);
  return scenario;
}

/** The sentences the reference run's figures give today (its JSON keeps those of the day it was recorded). */
const sentencesOf = (scenario: ScenarioReport) => scenarioSentences(SCENARIOS[scenario.scenario].story, scenario.targets);

const chatTargets = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat), null, chatMeasurements()).targets;

interface Figures {
  readonly makespanMs?: number;
  readonly mibPerSecond?: number;
  readonly pingsPerSecond?: number;
  /** Server CPU seconds per run; null: not measured (a remote server). */
  readonly serverCpu?: number | null;
  readonly loadCpu?: number;
  /** The machine's busy share; null: /proc/stat could not be read. */
  readonly busy?: number | null;
  readonly windowMs?: number;
  readonly runs?: number;
  readonly rmePercent?: number;
}

/** One of the chat fixture's targets with the figures a test needs. */
function target(label: 'sequential' | 'workers --threads 4' | 'async' | 'ceiling', figures: Figures): TargetReport {
  const base = chatTargets.find((t) => t.label === label);
  if (base === undefined) throw new Error(`no ${label} in the chat fixture`);
  const makespan = figures.makespanMs ?? 1000;
  const runs = figures.runs ?? 1;
  const cpu: CpuUse = {
    windowMs: figures.windowMs ?? makespan,
    loadCpuSeconds: figures.loadCpu ?? 0.1,
    machine: figures.busy === null ? null : { cores: 2, busyShare: figures.busy ?? 0.3, coreBusyShares: [figures.busy ?? 0.3, figures.busy ?? 0.3] },
    runs: [],
  };
  return {
    ...base,
    summary: {
      ...base.summary,
      runs,
      makespanMs: { mean: makespan, min: makespan, max: makespan },
      mibPerSecond: figures.mibPerSecond ?? null,
      pingsPerSecond: figures.pingsPerSecond ?? null,
    },
    stats: { warmupRuns: 0, samples: runs, meanMs: makespan, rmePercent: figures.rmePercent ?? 0, sdMs: 0 },
    resources: figures.serverCpu === null ? null : { cpuSecondsPerRun: figures.serverCpu ?? 0.1, peakRssBytes: 1 },
    cpu,
  };
}

/** The servers whose "% of ceiling" cell reads above 100%. */
function aboveTheCeiling(report: ScenarioReport): string[] {
  const { columns, rows } = tableCells(report);
  const percent = columns.findIndex((c) => c.header === '% of ceiling');
  if (percent < 0) return [];
  return rows.filter((row) => Number.parseFloat(row[percent] ?? '') > 100).map((row) => row[0] ?? '');
}

const saturationOf = (sentences: readonly string[]) => sentences.filter((s) => s.includes('measured the machine'));

t.test('the reference run: async behind workers on bytes is explained, with the figures of that run', async (t) => {
  const upload = referenceScenario('upload');
  const sentences = sentencesOf(upload);
  t.equal(sentences.length, 4, 'the three that say what happened, and one that says why');
  t.equal(
    sentences[3],
    'Async moved fewer bytes per second than workers --threads 4 (152 against 182 MiB/s): ' +
      "the gap is within the runs' spread (makespan 851 ms ±9.0% against 722 ms ±16.5%); async used 0.81 cores, workers --threads 4 0.93.",
  );
  // The figures, by hand: 0.692 CPU s ÷ 0.851 s and 0.67 ÷ 0.722; |851 − 722| = 129 ms ≤ 9.0% of 851 + 16.5% of 722 = 196 ms.
  const byLabel = (label: string) => upload.targets.find((target) => target.label === label);
  t.equal(((byLabel('async')?.resources?.cpuSecondsPerRun ?? 0) / 0.8515).toFixed(2), '0.81');
  t.equal(((byLabel('workers --threads 4')?.resources?.cpuSecondsPerRun ?? 0) / 0.7224).toFixed(2), '0.93');
});

t.test("the reference run: async's 843 of 1000 at once is explained by where the clients' wait went", async (t) => {
  const crowd = referenceScenario('crowd');
  const sentences = sentencesOf(crowd);
  t.equal(sentences.length, 4);
  const [why = ''] = sentences.slice(3);
  t.match(why, /^Async served at most 843 of 1000 clients at once, not all: in its median run the greetings came over 1\.37 s while a greeted session lasted 901 ms \(median\), so the first clients had left before the last were greeted\. /);
  t.match(why, /The wait was the server's: clients waited up to 1\.28 s connected but not yet greeted while async used 1\.08 cores \(2\.19 CPU seconds in 2\.03 s\): its one event loop was busy the whole run; /);
  t.match(why, /clients began connecting up to 93\.6 ms after their start \(start skew 66\.0 ms\) and took up to 132 ms to connect\.$/);
  t.notMatch(why, /ceiling/, 'the ceiling served all 1000 at once: nothing to explain there');
});

t.test('the reference run: where the story holds, no sentence explains it away', async (t) => {
  for (const name of ['chat', 'slow-client', 'ceiling']) {
    const sentences = sentencesOf(referenceScenario(name));
    t.equal(sentences.length, 3, `${name}: only what happened`);
  }
  for (const scenario of reference.scenarios) {
    t.same(saturationOf(sentencesOf(scenario)), [], `${scenario.scenario}: no busy share recorded, so no claim about the machine`);
    t.same(aboveTheCeiling(scenario), [], `${scenario.scenario}: no "% of ceiling" above 100% in this run`);
  }
});

t.test('saturated cores: the run measured the machine, not the model, said with its figures', async (t) => {
  const async = target('async', { busy: 0.97, loadCpu: 1.4, serverCpu: 0.6, windowMs: 1030 });
  t.same(causeSentences('queue', [async]), [
    'During the async run the 2 cores were 97% busy (1.40 core-seconds of load processes, 0.60 of server, in 1.03 s): this run measured the machine, not the model.',
  ]);

  const pool = target('workers --threads 4', { busy: 0.92, loadCpu: 1.2, serverCpu: 0.7, windowMs: 1050, runs: 5 });
  const both = causeSentences('queue', [pool, { ...async, summary: { ...async.summary, runs: 5 } }]);
  t.same(both, [
    'During the workers --threads 4 runs the 2 cores were 92% busy (per run: 1.20 core-seconds of load processes, 0.70 of server, in 1.05 s); ' +
      'during the async runs the 2 cores were 97% busy (per run: 1.40 core-seconds of load processes, 0.60 of server, in 1.03 s): these runs measured the machine, not the model.',
  ]);
});

t.test('saturated by other programs: their share is named, as most of it', async (t) => {
  // 95% of 2 cores over 1 s = 1.90 core-seconds busy; server and clients 0.20 of it.
  const [sentence] = causeSentences('queue', [target('async', { busy: 0.95, loadCpu: 0.1, serverCpu: 0.1, windowMs: 1000 })]);
  t.equal(
    sentence,
    'During the async run the 2 cores were 95% busy (0.10 core-seconds of load processes, 0.10 of server, 1.70 of other processes, the most of it, in 1.00 s): this run measured the machine, not the model.',
  );
});

t.test('no claim about the machine below 90% busy, or where /proc/stat was not read', async (t) => {
  t.same(causeSentences('queue', [target('async', { busy: 0.89, loadCpu: 1.4, serverCpu: 0.35 })]), []);
  t.same(causeSentences('queue', [target('async', { busy: null, loadCpu: 1.4, serverCpu: 0.6 })]), []);
  const { cpu: _, ...recordedBefore } = target('async', { busy: 0.99 });
  t.same(causeSentences('queue', [recordedBefore]), [], 'a report from before the figures existed');
});

/** What is said of async and a pool of 4 threads on the same work. */
function asyncAgainstWorkers(story: ScenarioStory, async: Figures, workers: Figures): string[] {
  return causeSentences(story, [target('workers --threads 4', workers), target('async', async)]);
}

t.test('async behind workers on bytes because one event loop cannot use the second core', async (t) => {
  t.same(asyncAgainstWorkers('bytes', { mibPerSecond: 150, serverCpu: 1.0, windowMs: 1000 }, { mibPerSecond: 190, serverCpu: 1.6, windowMs: 1000 }), [
    'Async moved fewer bytes per second than workers --threads 4 (150 against 190 MiB/s): workers --threads 4 used 1.60 cores, async 1.00: ' +
      "async's one event loop cannot use a second core.",
  ]);
});

t.test("async behind workers on PINGs in a saturated run: the machine's share and the clients' cores", async (t) => {
  const sentences = asyncAgainstWorkers(
    'rate',
    { pingsPerSecond: 20_000, serverCpu: 0.7, busy: 0.96, loadCpu: 1.1, windowMs: 1000 },
    { pingsPerSecond: 25_000, serverCpu: 0.8, busy: 0.7, windowMs: 1000 },
  );
  t.equal(sentences.length, 2, 'the saturated run, then the contradiction');
  t.match(sentences[0], /^During the async run the 2 cores were 96% busy/);
  t.equal(
    sentences[1],
    'Async answered fewer PINGs per second than workers --threads 4 (20000 against 25000 PING/s): ' +
      "the cores were 96% busy during async's run (its load processes used 1.10 cores), 70% during workers --threads 4's; async used 0.70 cores, workers --threads 4 0.80.",
  );
});

t.test('async behind workers with more CPU for the same work, and when nothing measured explains it', async (t) => {
  const workers = target('workers --threads 4', { mibPerSecond: 200, serverCpu: 0.8, windowMs: 2000 });
  t.same(asyncAgainstWorkers('bytes', { mibPerSecond: 150, serverCpu: 1.2, windowMs: 2000 }, { mibPerSecond: 200, serverCpu: 0.8, windowMs: 2000 }), [
    'Async moved fewer bytes per second than workers --threads 4 (150 against 200 MiB/s): async spent 1.20 CPU seconds per run on the same work, workers --threads 4 0.80; ' +
      'async used 0.60 cores, workers --threads 4 0.40.',
  ]);
  const idle = target('async', { mibPerSecond: 150, serverCpu: 0.84, windowMs: 2000, busy: 0.4 });
  t.same(causeSentences('bytes', [{ ...workers, cpu: { ...(workers.cpu as CpuUse), machine: { cores: 2, busyShare: 0.45, coreBusyShares: [0.5, 0.4] } } }, idle]), [
    'Async moved fewer bytes per second than workers --threads 4 (150 against 200 MiB/s): the CPU figures do not explain it ' +
      '(async used 0.42 cores, workers --threads 4 0.40, the cores 40% and 45% busy); with a single run each, run-to-run spread is not measured (--iterations).',
  ]);
  const remote = { ...idle, resources: null };
  t.match(causeSentences('bytes', [workers, remote])[0], /: no CPU figures were recorded for these servers to explain it\.$/);
});

t.test('async within 5% of workers, or ahead of them, needs no explaining', async (t) => {
  const workers = { mibPerSecond: 200, serverCpu: 1.6 };
  t.same(asyncAgainstWorkers('bytes', { mibPerSecond: 191, serverCpu: 1.0 }, workers), []);
  t.same(asyncAgainstWorkers('bytes', { mibPerSecond: 240, serverCpu: 1.0 }, workers), []);
  t.same(asyncAgainstWorkers('queue', { mibPerSecond: 100, serverCpu: 1.0 }, workers), [], 'not a throughput scenario');
});

t.test('a server above 100% of the ceiling is never left unexplained', async (t) => {
  const ceiling = target('ceiling', { makespanMs: 630, serverCpu: 0.6, windowMs: 630 });
  const workers = target('workers --threads 4', { makespanMs: 600, serverCpu: 0.96, windowMs: 600 });
  const async = target('async', { makespanMs: 700, serverCpu: 0.5, windowMs: 700 });
  const sentences = causeSentences('scale', [workers, async, ceiling]);
  t.same(sentences, [
    'Workers --threads 4 came out above the ceiling (105% of it by makespan: 600 ms against 630 ms): ' +
      "workers --threads 4 used 1.60 cores, the ceiling 0.95: the ceiling's one event loop cannot use a second core.",
  ]);

  // The table's column shows the same 105%, and every cell above 100% has its sentence.
  const report: ScenarioReport = { ...buildScenarioReport('chat', scenarioParams(SCENARIOS.chat), null, []), targets: [workers, async, ceiling] };
  const above = aboveTheCeiling(report);
  t.same(above, ['workers --threads 4']);
  for (const label of above) t.ok(sentences.some((s) => s.toLowerCase().startsWith(`${label} came out above the ceiling`)), `${label}'s cell is explained`);
});

t.test('above the ceiling by bytes or PINGs, explained by the spread of the runs', async (t) => {
  const ceiling = target('ceiling', { makespanMs: 1000, mibPerSecond: 200, serverCpu: 0.5, runs: 5, rmePercent: 8 });
  const async = target('async', { makespanMs: 1010, mibPerSecond: 210, serverCpu: 0.55, runs: 5, rmePercent: 6 });
  t.same(causeSentences('bytes', [async, ceiling]), [
    "Async came out above the ceiling (105% by MiB/s: 210 against 200): the gap is within the runs' spread (makespan 1.00 s ±8.0% against 1.01 s ±6.0%); " +
      'the ceiling used 0.50 cores, async 0.54.',
  ]);
  const pinging = target('async', { pingsPerSecond: 51_000, serverCpu: 0.5 });
  t.match(causeSentences('rate', [pinging, { ...ceiling, summary: { ...ceiling.summary, pingsPerSecond: 50_000 } }])[0], /^Async came out above the ceiling \(102% by PING\/s: 51000 against 50000\): /);
});

t.test('at 100% of the ceiling, as the table rounds it, there is nothing to explain', async (t) => {
  const ceiling = target('ceiling', { makespanMs: 1000, mibPerSecond: 200 });
  t.same(causeSentences('bytes', [target('async', { makespanMs: 996, mibPerSecond: 200.5 }), ceiling]), []);
});

/** A crowd of 20 on async where client k is greeted 50 ms after client k − 1 and served 100 ms. */
function staggeredCrowd(place: 'clients' | 'server' | 'plan'): ScenarioReport {
  const sessions = Array.from({ length: 20 }, (_, client) => {
    const late = client * 50;
    const scheduledStart = place === 'plan' ? T0 + late : T0;
    const connectStart = place === 'clients' || place === 'plan' ? T0 + late : T0;
    const connected = connectStart + 1;
    const greeted = place === 'server' ? connected + late + 1 : connected + 1;
    return session({ client, scheduledStart, connectStart, connected, greeted, quitSent: greeted + 100, done: greeted + 101 });
  });
  const cpu = { windowMs: 1000, loadCpuSeconds: 0.1, serverCpuSeconds: 0.2, machine: { cores: 2, busyShare: 0.3, coreBusyShares: [0.3, 0.3] } };
  const run = { ...chatRun(20, 100, 20), sessions, cpu };
  const async = { ...measurement({ kind: 'model', model: 'async' }, 'async', [run]), resources: { cpuSecondsPerRun: 0.2, peakRssBytes: 1 } };
  return buildScenarioReport('crowd', scenarioParams(SCENARIOS.crowd, { clients: 20 }), null, [async]);
}

const storyOf = (report: ScenarioReport): ScenarioStory => SCENARIOS[report.scenario].story;

t.test("async not all at once because the clients started late: the wait was the load generator's", async (t) => {
  const crowd = staggeredCrowd('clients');
  t.equal(crowd.targets[0]?.summary.maxServedAtOnce, 2, 'greeted 50 ms apart, served 100 ms: two at a time');
  t.same(causeSentences(storyOf(crowd), crowd.targets), [
    'Async served at most 2 of 20 clients at once, not all: in its median run the greetings came over 950 ms while a greeted session lasted 100 ms (median), ' +
      "so the first clients had left before the last were greeted. The wait was the load generator's: clients began connecting up to 950 ms after their start " +
      '(start skew 9.50 ms) and took up to 1.00 ms to connect, the load processes using 0.10 cores; once connected, they waited up to 1.00 ms for the greeting ' +
      'while async used 0.20 cores (0.20 CPU seconds in 1.00 s).',
  ]);
});

t.test("async not all at once because the server greeted late: the wait was the server's", async (t) => {
  const crowd = staggeredCrowd('server');
  const [sentence] = causeSentences(storyOf(crowd), crowd.targets);
  t.match(sentence, /^Async served at most 2 of 20 clients at once, not all: in its median run the greetings came over 950 ms /);
  t.match(sentence, /The wait was the server's: clients waited up to 951 ms connected but not yet greeted while async used 0\.20 cores/);
  t.notMatch(sentence, /event loop was busy/, 'at 0.20 cores its event loop was not the limit');
});

t.test('clients planned to arrive one after the other are not expected all at once', async (t) => {
  const crowd = staggeredCrowd('plan');
  t.equal(crowd.targets[0]?.summary.maxServedAtOnce, 2);
  t.same(causeSentences(storyOf(crowd), crowd.targets), []);
});

t.test('the chat fixture, all servers as their models say, on a quiet machine: no cause sentence at all', async (t) => {
  t.same(causeSentences('queue', chatTargets), []);
  t.equal(scenarioSentences('queue', chatTargets).length, 3);
});
