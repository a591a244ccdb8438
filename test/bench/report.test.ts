/** The report, from known timelines: sentences, the table, the text timeline, the SVG, Markdown, JSON and the files in results/. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { MachineInfo } from '../../bench/report/machine.js';
import { ceilingCheckSentence, markdownReport, runExtent, type BenchReport } from '../../bench/report/report-markdown.js';
import { buildScenarioReport } from '../../bench/report/build-report.js';
import type { ScenarioReport } from '../../bench/report/report-model.js';
import { timelineSvg, tickValues, niceCeiling } from '../../bench/report/report-svg.js';
import { markdownTable, textTable } from '../../bench/report/report-table.js';
import { textTimeline, timelineRows } from '../../bench/report/report-timeline.js';
import { benchJson, resultStamp, writeResults } from '../../bench/report/results-files.js';
import { scenarioParams, SCENARIOS } from '../../bench/load/scenarios.js';
import { chatMeasurements, chatRun, measurement, session, T0 } from './fixtures.js';

const chat = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat), null, chatMeasurements());

const machine: MachineInfo = { cpuModel: 'Test CPU <x>', cores: 2, memoryGiB: 24, os: 'Linux test', node: 'v20.0.0', gitCommit: 'abc1234' };
const bench: BenchReport = {
  schema: 'socklab-bench/1',
  run: { createdAt: '2025-01-02T03:04:05.678Z', command: 'npm run bench -- --quick', quick: true, warmupRuns: 0, measuredRuns: 1, durationSeconds: 61.2 },
  machine,
  scenarios: [chat],
};

t.test('each target is measured against its own ideal: ⌈8 ÷ k⌉ × 0.8 s', async (t) => {
  t.same(
    chat.targets.map((target) => [target.label, target.summary.idealMs, target.summary.maxServedAtOnce]),
    [
      ['sequential', 6400, 1],
      ['workers --threads 4', 1600, 4],
      ['async', 800, 8],
      ['ceiling', 800, 8],
    ],
  );
  t.equal(chat.flags, '--clients 8 --echoes 5 --think-ms 200');
});

t.test("the ideal's definition works its example out for the parameters given", async (t) => {
  t.match(chat.idealDefinition, /\(5 ECHO 200 ms apart = 4 gaps = 800 ms\)/);
  const slower = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat, { echoes: 3, thinkMs: 500 }), null, []);
  t.match(slower.idealDefinition, /\(3 ECHO 500 ms apart = 2 gaps = 1\.00 s\)/);
  const trickle = SCENARIOS['slow-client'];
  t.match(trickle.idealDefinition(scenarioParams(trickle, { slowSize: 2 * 1024 * 1024, slowRate: 512 * 1024 })), /\(2\.0 MiB at 512 KiB\/s = 4\.00 s\)/);
  t.match(trickle.idealDefinition(scenarioParams(trickle, { slowRate: 1024 * 1024 })), /\(1\.0 MiB at 1\.0 MiB\/s = 1\.00 s\).* so 1\.00 s on every server/);
});

t.test('the sentences say what the numbers show', async (t) => {
  t.equal(chat.sentences.length, 3);
  const [concurrency, makespan, story] = chat.sentences;
  t.match(concurrency, /^Sequential: one client at a time, the k-th client served waited ≈ \(k−1\) × 800 ms; /);
  t.match(concurrency, /workers --threads 4: at most 4 of 8 clients served at once, queue wait up to 800 ms; /);
  t.match(concurrency, /async: all 8 clients served at once \(queue wait p95 0 ms\)\.$/);
  t.match(makespan, /^Makespan: sequential 6\.40 s \(1\.00× ideal\), workers --threads 4 1\.60 s \(1\.00× ideal\), async 801 ms \(1\.00× ideal\), ceiling 801 ms/);
  t.match(story, /took sequential 8\.0× as long as async/);
});

t.test('a sequential queue that is not a straight line is not described as one', async (t) => {
  // Client 1 holds the server for 4 s; the others need next to nothing: waits 0, 4, 4, 4 s.
  const sessions = [0, 1, 2, 3].map((client) => {
    const greeted = client === 0 ? T0 : T0 + 4000 + client;
    const quitSent = client === 0 ? T0 + 4000 : greeted + 0.5;
    return session({ client, greeted, quitSent, done: quitSent + 0.25 });
  });
  const report = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat, { clients: 4 }), null, [
    measurement({ kind: 'model', model: 'sequential' }, 'sequential', [{ ...chatRun(4, 1, 1), sessions }]),
  ]);
  t.match(report.sentences[0], /^Sequential: one client at a time, queue wait p50 4\.00 s, up to 4\.00 s\.$/);
});

t.test('the table has a row per server and a column per measure', async (t) => {
  const table = markdownTable(chat);
  const lines = table.trimEnd().split('\n');
  t.equal(lines.length, 2 + 4, 'header, alignment row, four servers');
  t.match(lines[0], /^\| server \| makespan \| ideal \| × ideal \| % of ceiling \| queue wait p50 \/ p95 \/ max \| session p50 \/ p95 \/ p99 \/ max \| sessions\/s \| most at once \| server CPU s \| peak RSS \| errors \|$/);
  t.notMatch(lines[0], /MiB\/s|PING\/s/, 'no upload or PING column where nothing was uploaded or pinged');
  t.match(lines[2], /^\| sequential \| 6\.40 s \| 6\.40 s \| 1\.00 \| 12\.5% \| 2\.40 \/ 5\.60 \/ 5\.60 s \| 3\.20 \/ 6\.40 \/ 6\.40 \/ 6\.40 s \| 1\.25 \| 1 of 8 \| 0\.25 \| 64\.0 MiB \| 0 \|$/);
  t.match(lines[4], /^\| async \| 801 ms \| 800 ms \| 1\.00 \| 100% \| 0 \/ 0 \/ 0 ms \|/);
  const [header = '', , sequential = ''] = textTable(chat).split('\n');
  t.match(sequential, /^sequential +6\.40 s +6\.40 s/);
  t.equal(sequential.indexOf('6.40 s') + '6.40 s'.length, header.indexOf('makespan') + 'makespan'.length, 'text: numbers right-aligned under their header');
});

t.test('on the terminal the table fits 100 columns: cut into tables that each begin with the server, nothing left out', async (t) => {
  const wide = textTable(chat);
  t.ok(Math.max(...wide.split('\n').map((line) => line.length)) > 100, 'the one-line table is wider than 100 columns');
  t.equal(textTable(chat, Number.POSITIVE_INFINITY), wide, 'unlimited (--wide): the one-line table');
  for (const width of [100, 80]) {
    const narrow = textTable(chat, width);
    const lines = narrow.split('\n');
    t.ok(Math.max(...lines.map((line) => line.length)) <= width, `every line fits ${width} columns`);
    const tables = narrow.trimEnd().split('\n\n');
    t.ok(tables.length >= 2, `${tables.length} tables`);
    for (const table of tables) {
      const rows = table.split('\n').slice(3);
      t.same(
        rows.map((row) => row.split(/ {2,}/)[0]),
        ['sequential', 'workers --threads 4', 'async', 'ceiling'],
        'each table has a row per server, named first',
      );
    }
    for (const header of ['makespan', 'ideal', 'queue wait', 'p50 / p95 / p99 / max', 'most', 'at once', 'peak', 'RSS', 'errors']) t.ok(narrow.includes(header), `${width}: the ${header} column is there`);
  }
  t.match(
    textTable(chat, 100),
    /^sequential +2\.40 \/ 5\.60 \/ 5\.60 s +3\.20 \/ 6\.40 \/ 6\.40 \/ 6\.40 s +0\.25 +64\.0 MiB +0$/m,
    'in 100 columns: the run in one table, what the clients waited and the server spent in the other',
  );
  t.equal(textTable(chat, 250), wide, 'where the whole table fits, it is one table');
});

t.test('the makespan cell shows mean ± rme and the sample count when there are several runs', async (t) => {
  const twice = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat), null, [
    { ...measurement({ kind: 'model', model: 'async' }, 'async', [chatRun(8, 800, 8), chatRun(8, 800, 8)]), stats: { warmupRuns: 1, samples: 2, meanMs: 801, rmePercent: 2.345, sdMs: 1 } },
  ]);
  t.match(markdownTable(twice), /\| async \| 801 ms ±2\.3% \(n=2\) \|/);
});

t.test('the text timeline: a row per client in the order served, queued then served', async (t) => {
  const text = textTimeline(chat);
  const sequential = text.split('\n').slice(1, 9);
  t.match(sequential[0], /^ {2}client 1 \|=======/, 'the first client is served at once');
  t.match(sequential[7], /^ {2}client 8 \|\.{40,}=+ *\|$/, 'the last one queued for most of the run');
  t.match(text, /async: makespan 801 ms, ideal 800 ms, 8 of 8 served at once\n {2}client 1 \|=+ +\|/);
  t.match(text, /'\.' queued, '=' served, 'x' error\n$/);
  t.same(
    timelineRows(chat.targets[0]?.timeline.sessions ?? []).map((row) => row.client),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
});

t.test('the SVG: a panel per server, a bar per queued and per served stretch, the ideal, a legend', async (t) => {
  const svg = timelineSvg(chat);
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="[\d.]+"/);
  t.match(svg, /<\/svg>\n$/);
  const bars = (colour: string) => svg.split(`fill="${colour}"`).length - 1;
  t.equal(bars('#2b6cb0'), 4 * 8 + 1, 'a served bar per client per server, plus its legend swatch');
  t.equal(bars('#f0a030'), 7 + 4 + 1, 'queued bars: 7 behind the sequential server, 4 behind the pool, plus the legend');
  t.equal(svg.split('stroke-dasharray').length - 1, 4 + 1, 'an ideal line per panel, plus the legend');
  for (const label of ['sequential', 'workers --threads 4', 'async', 'ceiling', 'waiting in the queue', 'being served', 'ideal makespan']) {
    t.ok(svg.includes(label), `shows "${label}"`);
  }
  t.match(svg, />8 s</, 'the axis ends on a round tick past the longest run');
});

t.test('text in the SVG is escaped', async (t) => {
  const report = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat, { clients: 2 }), null, [
    measurement({ kind: 'remote', host: 'a<b>&"c"', port: 1 }, 'a<b>&"c":1', [chatRun(2, 100, 2)]),
  ]);
  const svg = timelineSvg(report);
  t.ok(svg.includes('a&lt;b&gt;&amp;&quot;c&quot;:1'));
  t.notOk(svg.includes('a<b>'));
});

t.test('axis ticks are round numbers', async (t) => {
  t.equal(niceCeiling(6401), 8000);
  t.equal(niceCeiling(801), 1000);
  t.same(tickValues(8000), [0, 2000, 4000, 6000, 8000]);
  t.same(tickValues(1000), [0, 200, 400, 600, 800, 1000]);
});

t.test('the run line names a scenario that warmed up more than the others, and only such a one', async (t) => {
  const warmedUp = (scenario: ScenarioReport, warmupRuns: number): ScenarioReport => ({
    ...scenario,
    targets: scenario.targets.map((target) => ({ ...target, stats: target.stats && { ...target.stats, warmupRuns } })),
  });
  const run = { ...bench.run, command: 'npm run bench', quick: false, warmupRuns: 1 };
  const crowd = { ...warmedUp(chat, 3), scenario: 'crowd' as const };
  t.equal(
    runExtent({ run, scenarios: [warmedUp(chat, 1), crowd] }),
    '1 measured run(s) per server and scenario after 1 warm-up run(s) (crowd: 3, enough for a fresh server to compile its per-session code); took 61 s',
  );
  t.equal(runExtent({ run, scenarios: [warmedUp(chat, 1)] }), '1 measured run(s) per server and scenario after 1 warm-up run(s); took 61 s');
});

t.test('the Markdown report: the machine, then per scenario its sentences, table and picture', async (t) => {
  const markdown = markdownReport(bench, (scenario) => `stamp-${scenario}.svg`);
  t.match(markdown, /^# socklab bench, 2025-01-02 03:04:05 UTC\n/);
  t.match(markdown, /- Machine: Test CPU <x>, 2 cores, 24 GiB, Linux test\n- Node v20\.0\.0, socklab commit abc1234\n/);
  t.match(markdown, /`npm run bench -- --quick`: 1 measured run\(s\) per server and scenario after 0 warm-up run\(s\); took 61 s/);
  t.match(markdown, /at most 3\.50 ms \(8 processes\)/, 'the worst start skew');
  t.match(markdown, /\n## chat\n\nSequential: one client at a time/);
  t.match(markdown, /`socklab load chat --clients 8 --echoes 5 --think-ms 200` \(start skew at most 3\.50 ms over 8 load processes\)\. Ideal makespan: a client's script lasts/);
  t.match(markdown, /\| sequential \| 6\.40 s \|/);
  t.match(markdown, /!\[chat timeline: one row per client, time across\]\(stamp-chat\.svg\)/);
});

t.test('the JSON is the report, whole: it parses back to the same data', async (t) => {
  const parsed = JSON.parse(benchJson(bench)) as BenchReport;
  t.same(parsed, JSON.parse(JSON.stringify(bench)));
  t.equal(parsed.scenarios[0]?.targets[0]?.timeline.sessions.length, 8);
  t.equal(parsed.scenarios[0]?.targets[0]?.timeline.sessions[7]?.greeted, 5600, 'times are ms from the start instant');
});

t.test('results/: report, JSON, an SVG per scenario, and latest.md / latest.json for the newest run', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-results-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.equal(resultStamp(bench.run.createdAt), '2025-01-02T03-04-05Z');
  const written = writeResults(dir, bench);
  t.same(fs.readdirSync(dir).sort(), ['2025-01-02T03-04-05Z-chat.svg', '2025-01-02T03-04-05Z.json', '2025-01-02T03-04-05Z.md', 'latest.json', 'latest.md']);
  t.equal(written.markdown, path.join(dir, '2025-01-02T03-04-05Z.md'));
  t.equal(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8'), fs.readFileSync(written.json, 'utf8'));
  const latest = fs.readFileSync(path.join(dir, 'latest.md'), 'utf8');
  t.match(latest, /\[2025-01-02T03-04-05Z\]\(2025-01-02T03-04-05Z\.md\)/);
  t.match(latest, /\(2025-01-02T03-04-05Z-chat\.svg\)/);
  t.match(fs.readFileSync(written.markdown, 'utf8'), /\(2025-01-02T03-04-05Z-chat\.svg\)/, 'the report links its own SVG');
});

t.test('the report says what the copy-sink ceiling is and how far it is from a native copy', async (t) => {
  const socat = 'socat -u -b 262144 from loopback into a file, then fsync';
  const measured = ceilingCheckSentence({ bytes: 128 * 1024 * 1024, copySinkMiBps: 912.4, native: { tool: socat, MiBps: 1003.7 } });
  t.match(measured, /moved a 128 MiB upload at 912 MiB\/s, 0\.91× a native copy on this machine \(socat -u -b 262144 [^:]*: 1004 MiB\/s; both medians of the rounds/);
  t.match(measured, /"% of ceiling" on bytes is against the copy-sink, not the native copy/);
  t.notMatch(measured, /hash-sink/, 'a report from before the hash-sink was measured says nothing of it');
  t.notMatch(measured, /Faster than the native copy/, 'below the native copy, nothing to explain');
  const faster = ceilingCheckSentence({ bytes: 128 * 1024 * 1024, copySinkMiBps: 1250, native: { tool: socat, MiBps: 1040 } });
  t.match(faster, /1\.20× a native copy on this machine \([^)]*\)\. Faster than the native copy: the copy-sink reads the socket on one thread while libuv's pool writes the file on others/, 'above it, why');
  t.notMatch(ceilingCheckSentence({ bytes: 1, copySinkMiBps: 1004, native: { tool: 'nc', MiBps: 1000 } }), /Faster/, '1.00× as printed: nothing to explain');
  // A run's rounds can disagree with its medians (a faster copy-sink in most rounds, a lower median rate):
  // the × is the printed rates' ratio, so it never calls a lower rate faster.
  const slower = ceilingCheckSentence({ bytes: 128 * 1024 * 1024, copySinkMiBps: 1032, native: { tool: socat, MiBps: 1038 } });
  t.match(slower, /1032 MiB\/s, 0\.99× a native copy[^)]*: 1038 MiB\/s;/);
  t.notMatch(slower, /Faster/);
  const unmeasured = ceilingCheckSentence({ bytes: 128 * 1024 * 1024, copySinkMiBps: 900, native: null });
  t.match(unmeasured, /no native copy tool \(socat or nc\) is installed here/);
  t.notMatch(unmeasured, /×/);
});

t.test('the report says what computing the sha256 costs on top of the copy-sink (the hash-sink), so that the servers\' rows on bytes read against it', async (t) => {
  const native = { tool: 'socat -u -b 262144 from loopback into a file, then fsync', MiBps: 1085 };
  const measured = ceilingCheckSentence({ bytes: 128 * 1024 * 1024, copySinkMiBps: 987.6, hashSinkMiBps: 661.7, native });
  t.match(measured, /0\.91× a native copy on this machine/, 'the copy-sink part as before');
  t.match(measured, /The hash-sink \([^)]*sha256[^)]*\) moved it at 662 MiB\/s, 0\.61× the native copy, 0\.67× the copy-sink: /);
  t.match(measured, /so that much of their distance from the ceiling on bytes is the hashing's, not their model's\.$/);
  const noNative = ceilingCheckSentence({ bytes: 128 * 1024 * 1024, copySinkMiBps: 900, hashSinkMiBps: 600, native: null });
  t.match(noNative, /was not measured\. The hash-sink \([^)]*\) moved it at 600 MiB\/s, 0\.67× the copy-sink: /, 'without a native tool, only against the copy-sink');
});
