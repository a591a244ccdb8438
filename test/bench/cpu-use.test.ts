/** The CPU figures of a report: runs summarized, the cores they amount to, the lines under each table in every form. */
import t from 'tap';
import type { RunCpu } from '../../bench/load/load-generator.js';
import { buildScenarioReport } from '../../bench/report/build-report.js';
import { cpuFigures, cpuUseMarkdown, cpuUseText, summarizeCpu } from '../../bench/report/cpu-use.js';
import { markdownReport, type BenchReport } from '../../bench/report/report-markdown.js';
import { htmlReport } from '../../bench/report/report-html.js';
import type { ScenarioReport } from '../../bench/report/report-model.js';
import { scenarioParams, SCENARIOS } from '../../bench/load/scenarios.js';
import { chatMeasurements } from './fixtures.js';

const run = (cpu: RunCpu) => ({ cpu });

t.test('runs summarized: means per run, the busy share per core too', async (t) => {
  const summary = summarizeCpu([
    run({ windowMs: 1000, loadCpuSeconds: 1.0, serverCpuSeconds: 0.5, machine: { cores: 2, busyShare: 0.9, coreBusyShares: [1.0, 0.8] } }),
    run({ windowMs: 1200, loadCpuSeconds: 1.4, serverCpuSeconds: 0.7, machine: { cores: 2, busyShare: 0.7, coreBusyShares: [0.8, 0.6] } }),
  ]);
  t.equal(summary.windowMs, 1100);
  t.equal(summary.loadCpuSeconds.toFixed(6), '1.200000');
  t.equal(summary.machine?.cores, 2);
  t.equal(summary.machine?.busyShare.toFixed(6), '0.800000');
  t.same(summary.machine?.coreBusyShares.map((share) => share.toFixed(6)), ['0.900000', '0.700000']);
  t.same(
    summary.runs.map((r) => r.serverCpuSeconds),
    [0.5, 0.7],
    "each run's own figures are kept, the server's CPU among them",
  );
});

t.test('a run whose /proc/stat could not be read leaves the busy share unknown, not wrong', async (t) => {
  const summary = summarizeCpu([
    run({ windowMs: 1000, loadCpuSeconds: 1, serverCpuSeconds: null, machine: { cores: 2, busyShare: 0.9, coreBusyShares: [0.9, 0.9] } }),
    run({ windowMs: 1000, loadCpuSeconds: 1, serverCpuSeconds: null, machine: null }),
  ]);
  t.equal(summary.machine, null);
  t.equal(summary.loadCpuSeconds, 1);
});

const chat = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat), null, chatMeasurements());

t.test('cores used: CPU seconds ÷ the run window; what the machine did besides', async (t) => {
  const sequential = chat.targets[0];
  if (sequential === undefined) throw new Error('no sequential target');
  const f = cpuFigures(sequential);
  // The fixture: 0.25 CPU s of server, 0.1 of clients, 20% of 2 cores busy, over a window of 6401 + 2 ms.
  t.equal(f.runMs, 6403);
  t.equal(f.serverCores?.toFixed(4), (0.25 / 6.403).toFixed(4));
  t.equal(f.loadCores?.toFixed(4), (0.1 / 6.403).toFixed(4));
  t.equal(f.otherCpuSeconds?.toFixed(4), (0.2 * 2 * 6.403 - 0.35).toFixed(4));
  const { cpu: _, ...recordedBefore } = sequential;
  const old = cpuFigures(recordedBefore);
  t.equal(old.runMs, sequential.summary.makespanMs.mean, 'a report from before the window was recorded: the makespan');
  t.equal(old.loadCpuSeconds, null);
  t.equal(old.busyShare, null);
});

t.test('under the terminal table: a heading, then a target a line, labels aligned', async (t) => {
  const text = cpuUseText(chat);
  const lines = text.trimEnd().split('\n');
  t.equal(lines[0], 'CPU per run: CPU s (cores used) of the server and of the clients; busy share of the 2 cores (each):');
  t.equal(lines.length, 1 + 4);
  t.equal(lines[1], '  sequential           server 0.25 s (0.04 cores), clients 0.10 s (0.02 cores), busy 20% (25%, 15%)');
  t.equal(lines[3], '  async                server 0.25 s (0.31 cores), clients 0.10 s (0.12 cores), busy 20% (25%, 15%)');
  for (const line of lines) t.ok(line.length <= 100, `fits 100 columns: ${line.length}`);
});

t.test('in the Markdown and HTML reports: the same figures as a list under the table', async (t) => {
  t.match(cpuUseMarkdown(chat), /^CPU per run: .*:\n\n- sequential: server 0\.25 s \(0\.04 cores\), clients 0\.10 s \(0\.02 cores\), busy 20% \(25%, 15%\)\n/);
  const bench: BenchReport = {
    schema: 'socklab-bench/1',
    run: { createdAt: '2025-01-02T03:04:05.678Z', command: 'npm run bench -- --quick', quick: true, warmupRuns: 0, measuredRuns: 1, durationSeconds: 1 },
    machine: { cpuModel: 'Test CPU', cores: 2, memoryGiB: 1, os: 'Linux', node: 'v20.0.0', gitCommit: 'abc1234' },
    scenarios: [chat],
  };
  const markdown = markdownReport(bench, (scenario) => `${scenario}.svg`);
  t.match(markdown, /\| ceiling \| [^\n]*\|\n\nCPU per run: [^\n]*\n\n- sequential: [^\n]*\n- workers --threads 4: [^\n]*\n- async: [^\n]*\n- ceiling: [^\n]*\n\n!\[chat timeline/);
  t.match(htmlReport(bench), /<ul class="cpu meta">\n<li><b>sequential<\/b>: server 0\.25 s \(0\.04 cores\), clients 0\.10 s/);
});

t.test('a report recorded before these figures existed shows no CPU lines at all', async (t) => {
  const old: ScenarioReport = { ...chat, targets: chat.targets.map(({ cpu: _, ...target }) => target) };
  t.equal(cpuUseText(old), '');
  t.equal(cpuUseMarkdown(old), '');
});
