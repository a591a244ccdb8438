/**
 * `socklab load` end to end, small: each server started as its own process,
 * client processes against it, and the test checks what a class would
 * observe, from the timelines. Orders and counts only, no timing
 * thresholds: a loaded machine may stretch every time, but not change who was
 * greeted before whom.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tap from 'tap';
import { LoadGenerator } from '../../bench/load/load-generator.js';
import { measureTargets } from '../../bench/load/measure.js';
import { buildScenarioReport } from '../../bench/report/build-report.js';
import type { RelativeSession, ScenarioReport, TargetReport } from '../../bench/report/report-model.js';
import { runsToWarmUp, SESSIONS_TO_WARM_UP, type ScenarioName, type ScenarioParams } from '../../bench/load/scenarios.js';
import { startServerProcess } from '../../bench/targets/server-process.js';
import type { TargetSpec } from '../../bench/targets/targets.js';
import { BIN, finished, runCli } from '../clients/run-cli.js';
import { eventually } from '../helpers/wire-fixture.js';

type Assert = Pick<typeof tap, 'equal' | 'same'>;
const t = tap;

interface LoadJson {
  readonly schema: string;
  readonly processes: number;
  readonly report: ScenarioReport;
}

// The socklab processes started here (the command, its server, its load processes) need not carry tap's
// process-tracking hooks: loading them into every one of a dozen node processes per run costs seconds.
delete process.env.NODE_OPTIONS;

/** `socklab load ... --json`, the real binary. */
async function load(t: Pick<typeof tap, 'notOk'>, args: readonly string[]): Promise<LoadJson> {
  const r = await runCli(['load', ...args, '--json']);
  finished(t, r);
  if (r.code !== 0) throw new Error(`socklab load ${args.join(' ')} exited with ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as LoadJson;
}

/**
 * Four clients, two ECHO lines 300 ms apart each, then QUIT. The script is
 * long next to how far apart the clients may start on a loaded 2-core
 * machine, so "all at once" cannot be missed because one started late.
 */
const SMALL_CHAT = { clients: 4, echoes: 2, thinkMs: 300 };

/**
 * The chat runs share one set of four load processes (as the bench does);
 * each server is started as its own process, as `socklab load` starts it.
 */
let generator: LoadGenerator;
t.before(() => {
  generator = LoadGenerator.start(SMALL_CHAT.clients, 'baseline');
});
t.teardown(() => generator.close());

async function measure(scenario: ScenarioName, params: ScenarioParams, spec: TargetSpec): Promise<TargetReport> {
  const load = { scenario, params, arrivalsPerSecond: null, sessionTimeoutMs: 30_000 };
  const measured = await measureTargets(generator, [spec], load, { warmupRuns: 0, measuredRuns: 1, comparePlainLoop: () => false });
  const target = buildScenarioReport(scenario, params, null, measured).targets[0];
  if (target === undefined) throw new Error('no target in the report');
  return target;
}

const chatAgainst = (spec: TargetSpec) => measure('chat', SMALL_CHAT, spec);

function byGreeting(sessions: readonly RelativeSession[]): RelativeSession[] {
  return [...sessions].sort((a, b) => (a.greeted ?? Infinity) - (b.greeted ?? Infinity));
}

function checkCompleteChats(t: Assert, target: TargetReport): void {
  const sessions = target.timeline.sessions;
  t.equal(sessions.length, 4, 'four sessions');
  t.equal(new Set(sessions.map((s) => s.process)).size, 4, 'each in its own load process');
  t.same(
    sessions.map((s) => s.error),
    [null, null, null, null],
    'no errors',
  );
  for (const s of sessions) t.same(s.replies.map((r) => `${r.request} ${r.code}`), ['ECHO 200', 'ECHO 200', 'QUIT 221'], `client ${s.client + 1}: two echoes, then bye`);
}

t.test('sequential: one client at a time, each greeted only after the one before it said QUIT', async (t) => {
  const target = await chatAgainst({ kind: 'model', model: 'sequential' });
  checkCompleteChats(t, target);
  const served = byGreeting(target.timeline.sessions);
  for (let k = 1; k < served.length; k++) {
    const before = served[k - 1] as RelativeSession;
    const now = served[k] as RelativeSession;
    // QUIT is stamped before it is sent, the greeting after it arrives: an order that holds across processes.
    t.ok((now.greeted ?? 0) > (before.quitSent ?? Infinity), `client ${k + 1} in line was greeted after client ${k} sent QUIT`);
    t.ok((now.greeted ?? 0) - (now.connected ?? 0) > (before.greeted ?? 0) - (before.connected ?? 0), 'and had waited longer in the queue');
  }
  t.equal(target.summary.maxServedAtOnce, 1, 'never two served at once');
});

t.test('workers --threads 2: at most two at once, the others wait for a thread', async (t) => {
  const target = await chatAgainst({ kind: 'model', model: 'workers', threads: 2 });
  checkCompleteChats(t, target);
  t.equal(target.label, 'workers --threads 2');
  t.equal(target.summary.maxServedAtOnce, 2, 'two at once, never three');
  const served = byGreeting(target.timeline.sessions);
  const firstQuit = Math.min(...served.slice(0, 2).map((s) => s.quitSent ?? Infinity));
  t.ok((served[2]?.greeted ?? 0) > firstQuit, 'the third client was greeted only after one of the first two sent QUIT');
});

t.test('async: every client served at once', async (t) => {
  const target = await chatAgainst({ kind: 'model', model: 'async' });
  checkCompleteChats(t, target);
  const sessions = target.timeline.sessions;
  const lastGreeting = Math.max(...sessions.map((s) => s.greeted ?? Infinity));
  const firstQuit = Math.min(...sessions.map((s) => s.quitSent ?? 0));
  t.ok(lastGreeting < firstQuit, 'all four were greeted before any of them sent QUIT');
  t.equal(target.summary.maxServedAtOnce, 4);
  t.equal(target.summary.idealMs, 300, 'ideal: one script of (2 − 1) × 300 ms');
});

t.test('many connections per process, uploads committed with their sha256', async (t) => {
  const target = await measure('crowd', { clients: 12, size: 2048 }, { kind: 'model', model: 'async' });
  const sessions = target.timeline.sessions;
  t.equal(sessions.length, 12);
  t.same(
    [0, 1, 2, 3].map((process) => sessions.filter((s) => s.process === process).length),
    [3, 3, 3, 3],
    'three connections in each of the four processes',
  );
  for (const s of sessions) t.same(s.replies.map((r) => `${r.request} ${r.code}`), ['PUT 150', 'PUT data 226', 'QUIT 221'], `client ${s.client + 1}`);
  t.equal(target.summary.errors, 0);
});

t.test("each run records where the CPU went: the clients' own CPU, the server's, the machine's busy share", async (t) => {
  const target = await measure('crowd', { clients: 8, size: 256 * 1024 }, { kind: 'model', model: 'async' });
  const cpu = target.cpu;
  if (cpu === undefined) throw new Error('no CPU figures recorded');
  t.ok(cpu.windowMs > 0, `a window of ${cpu.windowMs} ms`);
  t.ok(cpu.loadCpuSeconds > 0, `load processes: ${cpu.loadCpuSeconds} CPU s`);
  t.ok((target.resources?.cpuSecondsPerRun ?? -1) >= 0, 'the server: its CPU over the same window');
  if (process.platform === 'linux') {
    t.equal(cpu.machine?.cores, os.cpus().length, 'every core of the machine');
    t.ok((cpu.machine?.busyShare ?? -1) > 0 && (cpu.machine?.busyShare ?? 2) <= 1, `busy share ${cpu.machine?.busyShare}`);
    t.equal(cpu.machine?.coreBusyShares.length, os.cpus().length);
  } else {
    t.equal(cpu.machine, null, 'no /proc/stat: no busy share');
  }
});

t.test('the ceiling scenario drives the bare line server and checks itself against the plain loop', async (t) => {
  const result = await load(t, ['ceiling', '--clients', '2', '--requests', '200']);
  const target = result.report.targets[0];
  t.equal(target?.label, 'ceiling');
  t.equal(result.processes, 1, 'one load process for the PING bursts, like the plain loop');
  t.same(
    (target?.timeline.sessions ?? []).map((s) => s.replies.map((r) => `${r.request} ${r.code}`)),
    [
      ['PING×200 200', 'QUIT 200'],
      ['PING×200 200', 'QUIT 200'],
    ],
    'the line server answers QUIT like any line',
  );
  t.ok((target?.summary.pingsPerSecond ?? 0) > 0);
  t.equal(target?.plainLoop?.connections, 2);
  t.ok((target?.plainLoop?.requestsPerSecond ?? 0) > 0, 'the plain loop ran against the same server');
});

t.test('several targets: their runs alternate, the order reversed every round, after the warm-up', async (t) => {
  const load = { scenario: 'chat' as const, params: { ...SMALL_CHAT, echoes: 1 }, arrivalsPerSecond: null, sessionTimeoutMs: 30_000 };
  const specs: TargetSpec[] = [
    { kind: 'model', model: 'async' },
    { kind: 'model', model: 'sequential' },
  ];
  let runs = 0;
  const [first, second] = await measureTargets(generator, specs, load, { warmupRuns: 1, measuredRuns: 3, comparePlainLoop: () => false, onRun: () => runs++ });
  t.equal(runs, 8, 'every run, warm-up or measured, of both');
  t.same([first?.label, second?.label], ['async', 'sequential'], 'in the order given');
  const starts = (runs: readonly { startAt: number }[] | undefined) => (runs ?? []).map((run) => run.startAt);
  const [a1, a2, a3] = starts(first?.runs);
  const [b1, b2, b3] = starts(second?.runs);
  t.equal(first?.stats?.samples, 3, 'three measured runs each');
  // Round 0 (warm-up) went async, sequential; round 1 goes sequential, async; round 2 async, sequential; round 3 reversed again.
  const inTurn = [b1, a1, a2, b2, b3, a3];
  t.notOk(inTurn.includes(undefined), 'every measured run recorded');
  t.same([...inTurn].sort((x, y) => (x ?? 0) - (y ?? 0)), inTurn, `runs started in turn: B A, A B, B A (${inTurn.join(', ')})`);
});

t.test('warm-up: how many runs reach the sessions a fresh server needs to compile its code, within bounds', async (t) => {
  t.equal(runsToWarmUp(1000), 3, `1000 clients: 3 runs for ${SESSIONS_TO_WARM_UP} sessions`);
  t.equal(runsToWarmUp(1500), 2);
  t.equal(runsToWarmUp(SESSIONS_TO_WARM_UP), 1);
  t.equal(runsToWarmUp(100_000), 1, 'at least one');
  t.equal(runsToWarmUp(10), 5, 'at most five: a crowd of ten is not warmed up for minutes');
  t.equal(runsToWarmUp(0), 5);
});

t.test("a comparison with the ceiling warms the servers up first (the crowd: its sessions' worth), a single look starts cold, --warmup wins", async (t) => {
  const crowd = ['crowd', 'async', '--clients', '1500', '--procs', '4'];
  const warmupsOf = (json: LoadJson) => json.report.targets.map((target) => `${target.label} ${target.stats?.warmupRuns}`);
  t.same(warmupsOf(await load(t, [...crowd, '--ceiling'])), ['ceiling 2', 'async 2'], '1500 clients with --ceiling: two warm-up runs each');
  t.same(warmupsOf(await load(t, crowd)), ['async 0'], 'without --ceiling: none');
  t.same(warmupsOf(await load(t, [...crowd, '--ceiling', '--warmup', '1'])), ['ceiling 1', 'async 1'], '--warmup 1: one');
});

t.test('a server is named, or reached with --host; neither is a usage error', async (t) => {
  const r = await runCli(['load', 'chat']);
  finished(t, r);
  t.equal(r.code, 2);
  t.match(r.stderr, /name a server to start \(sequential, workers, async, ceiling\) or give --host and --port/);
});

t.test('a scenario left out, or a word that is none (a server named first): the scenarios are listed, not "Unknown arguments"', async (t) => {
  const scenarios = 'chat, upload, slow-client, crowd, ceiling';
  for (const [args, expected] of [
    [['load'], `socklab: name a scenario first: ${scenarios} (socklab load <scenario> --help)\n`],
    [['load', '--clients', '3'], `socklab: name a scenario first: ${scenarios} (socklab load <scenario> --help)\n`],
    [['load', 'async', 'chat'], `socklab: there is no scenario "async": name a scenario first: ${scenarios} (socklab load <scenario> --help)\n`],
  ] as const) {
    const r = await runCli(args);
    finished(t, r);
    t.equal(r.code, 2, `${args.join(' ')}: a usage error`);
    t.equal(r.stderr, expected);
  }
});

t.test('a server reached with --host is named by the model its greeting gives, and its address', async (t) => {
  const server = await startServerProcess('async');
  t.teardown(() => server.stop());
  const target = await chatAgainst({ kind: 'remote', host: '127.0.0.1', port: server.port });
  t.equal(target.label, `async at 127.0.0.1:${server.port}`);
  checkCompleteChats(t, target);
});

t.test('Ctrl-C on socklab load: one message, exit 130, the server stopped and its temporary root removed', async (t) => {
  // A temporary directory of the run's own: other programs' socklab-bench-* directories in /tmp are not this test's business.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-load-interrupt-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const child = spawn(process.execPath, [BIN, 'load', 'chat', 'sequential', '--clients', '2', '--echoes', '30', '--think-ms', '200'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, which gets the SIGINT as a terminal's Ctrl-C would send it
    env: { ...process.env, TMPDIR: tmp },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const roots = () => fs.readdirSync(tmp).filter((name) => name.startsWith('socklab-bench-'));
  try {
    await eventually(() => roots().length > 0, 'the server has its temporary root', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the clients are under way
    process.kill(-(child.pid ?? 0), 'SIGINT');
    t.equal(await exited, 130, 'exit code 130, as for any program Ctrl-C ended');
    t.match(stderr, /^socklab load: interrupted \(Ctrl-C\); nothing was measured\.\nThe servers it started are stopped and their temporary roots removed\.\n$/m);
    t.equal(stdout, '', 'no table: nothing was measured');
    t.same(roots(), [], 'no temporary root left behind');
  } finally {
    if (child.exitCode === null) process.kill(-(child.pid ?? 0), 'SIGKILL');
  }
});
