/**
 * `socklab demo` as the class sees it: the real binary, a real server and
 * real client processes on loopback (a free port, a temporary root). Plain
 * lines through a pipe, the live screen on a pseudo-terminal, and Ctrl-C,
 * both to the demo alone and to its whole process group as a terminal sends
 * it: afterwards no process of the demo is left and its root is gone.
 * Orders and words only, no timing thresholds.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import tap from 'tap';
import { buildScenarioReport } from '../../bench/report/build-report.js';
import { scenarioParams, SCENARIOS } from '../../bench/load/scenarios.js';
import { blockersOf, clientLines, demoSummary } from '../../bench/demo/summary.js';
import { DemoRun } from '../../bench/demo/state.js';
import { clientBar, PlainView, renderFrame } from '../../bench/demo/views.js';
import { BIN, finished, runCli } from '../clients/run-cli.js';
import { descendantsOf, killAll, plain, processTable, type ProcEntry } from '../docs/lesson-runner.js';
import { requireSystemTools } from '../helpers/system-tool.js';
import { delay, eventually } from '../helpers/wire-fixture.js';
import { chatMeasurements, chatRun, measurement, T0 } from './fixtures.js';

/** The longest a stopped demo may take to end everything. */
const STOP_LIMIT_MS = 15_000;

// ---------------------------------------------------------------------------
// The summary and the screen, from known timelines

tap.test('the summary says who waited for whom, in the order the server served them', async (t) => {
  const report = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat), null, chatMeasurements());
  const sequential = report.targets[0]?.timeline.sessions ?? [];
  const lines = clientLines(sequential);
  t.equal(lines.length, 8);
  t.match(lines[0], /^client 1 waited 0 ms: served at once; served 800 ms$/);
  t.match(lines[1], /^client 2 waited 800 ms for client 1; served 800 ms$/);
  t.match(lines[2], /^client 3 waited 1\.60 s for clients 1 and 2; served 800 ms$/);
  t.match(lines[7], /^client 8 waited 5\.60 s for clients 1, 2, 3, 4, 5, 6 and 7; served 800 ms$/);
  const pool = report.targets[1]?.timeline.sessions ?? [];
  t.same(
    blockersOf(pool[5]!, pool).map((s) => s.client + 1),
    [1, 2, 3, 4],
    'behind a pool of 4 threads, client 6 waited for the 4 clients holding them',
  );
  const text = demoSummary(report).join('\n');
  t.match(text, /^sequential serves one client at a time: while it serves a client it blocks/m);
  t.match(text, /^workers --threads 4 has 4 threads, one per client served: at most 4 clients at once \(here 4\); the others waited/m);
  t.match(text, /^async serves every client at once from one event loop: .*nobody waits \(8 of 8 served at once/m);
  t.match(text, /^ {2}client 8 waited 0 ms: served at once; served 800 ms$/m, 'async: nobody waited');
  t.match(text, /The same scripts took sequential 8\.0× as long as async/, 'and the bench report\'s own sentences');
});

tap.test('a client that failed in the queue says so', async (t) => {
  const run = chatRun(2, 500, 1);
  const [first, second] = run.sessions;
  const failed = { ...second!, greeted: null, quitSent: null, done: T0 + 300, error: { code: 'ECONNRESET', replyCode: null, message: 'reset' } };
  const report = buildScenarioReport('chat', scenarioParams(SCENARIOS.chat, { clients: 2 }), null, [
    measurement({ kind: 'model', model: 'sequential' }, 'sequential', [{ ...run, sessions: [first!, failed] }]),
  ]);
  const lines = clientLines(report.targets[0]?.timeline.sessions ?? []);
  t.match(lines[1], /^client 2 waited in the queue 300 ms for client 1; failed: ECONNRESET$/);
});

tap.test('the live screen: a row per client with its state, times and bar, the log under it, never wider than the terminal', async (t) => {
  const run = new DemoRun('sequential', 3, 2, 2000);
  run.host = '127.0.0.1';
  run.port = 40000;
  const start = T0;
  run.apply({ client: 0, kind: 'connect-start', at: start });
  run.apply({ client: 1, kind: 'connect-start', at: start });
  run.apply({ client: 0, kind: 'connected', at: start + 1, localPort: 51000 });
  run.apply({ client: 1, kind: 'connected', at: start + 1, localPort: 51001 });
  const greeted = run.apply({ client: 0, kind: 'greeted', at: start + 2 });
  t.same(greeted && [greeted.from, greeted.to], ['waiting', 'served']);
  run.apply({ client: 0, kind: 'reply', at: start + 3, reply: { request: 'ECHO', sentAt: start + 2, at: start + 3, code: 200, count: 1 } });
  const stamp = (ms: number) => new Date(start + ms).toISOString();
  run.addLogLine(`${stamp(2)} serving 127.0.0.1:51000 (#1) after 0.001 s waiting; 0 still waiting`, start + 5);
  run.addLogLine(`${stamp(3)} 127.0.0.1:51001 (#2) waits: 1 in the queue, serving 127.0.0.1:51000 (#1)`, start + 6);
  run.addLogLine('listening on 127.0.0.1:40000', start + 7);
  const now = start + 1000;
  const frame = renderFrame(run, { now, columns: 100, rows: 30, intro: { counter: '', script: '3 clients', expectation: 'one at a time' }, fallbackStart: start });
  const text = frame.map((line) => line.text);
  t.match(text[0], /^socklab demo · sequential server on 127\.0\.0\.1:40000 · 1\.0 s$/);
  const rows = text.filter((line) => /^client \d/.test(line));
  t.equal(rows.length, 3);
  t.match(rows[0], /^client 1 +being served +1\/2 +0\.00 s +1\.00 s +\|=+ +\|$/);
  t.match(rows[1], /^client 2 +waiting in the queue +0\/2 +1\.00 s +- +\|\.+ +\|$/);
  t.match(rows[2], /^client 3 +starting +0\/2 +- +- +\| +\|$/);
  t.ok(text.some((line) => line.includes("'.' waiting in the queue  '=' being served  'x' failed  Ctrl-C stops the demo")), 'the legend');
  const log = text.slice(text.indexOf('server log') + 1);
  t.same(
    log,
    [
      '   +0.002 s  serving 127.0.0.1:51000 (#1, client 1) after 0.001 s waiting; 0 still waiting',
      '   +0.003 s  127.0.0.1:51001 (#2, client 2) waits: 1 in the queue, serving 127.0.0.1:51000 (#1,',
      '              client 1)',
      '   +0.007 s  listening on 127.0.0.1:40000',
    ],
    'the log under the rows, on the run\'s clock (its own timestamps), naming the clients; a line too long for the screen wraps under its text',
  );
  for (const line of frame) t.ok(Array.from(plain(line.render(99, true))).length <= 99, 'fits the width');
  t.ok(renderFrame(run, { now, columns: 100, rows: 12, intro: { counter: '', script: '', expectation: '' }, fallbackStart: start }).length <= 11, 'and the height');
  t.equal(clientBar(run.clients[1]!, start, 1000, 10, now), '..........', 'queued all along');
  const script = '4 clients (processes) start at once: 3 ECHO lines each, 1000 ms apart, then QUIT';
  const narrowFrame = renderFrame(run, { now, columns: 80, rows: 24, intro: { counter: 'run 2 of 3', script, expectation: '' }, fallbackStart: start });
  const narrow = narrowFrame.map((line) => line.text);
  t.match(narrow.find((line) => line.startsWith('client 1')), /^client 1 +being served +0\.00 s +1\.00 s +\|=+ +\|$/, 'on 80 columns the lines column gives way to the bar');
  t.match(narrow.find((line) => line.startsWith('client 2')), /^client 2 +waiting +1\.00 s/, 'and the state says "waiting" (the legend names the queue)');
  t.ok((/\|([ .=x]+)\|$/.exec(narrow.find((line) => line.startsWith('client 1')) ?? '')?.[1]?.length ?? 0) >= 30, 'the bar keeps at least 30 columns');
  t.match(narrow[0], /^sequential server on 127\.0\.0\.1:40000 · run 2 of 3 · 1\.0 s$/, 'the title on one line');
  for (const line of narrowFrame) t.ok(Array.from(line.text).length <= 79, `fits 80 columns: ${line.text}`);
  const shown = narrow.join('\n').replace(/\n +/g, ' ');
  t.ok(shown.includes(`${script}`), 'the script line is wrapped, not cut');
  t.ok(shown.includes('waits: 1 in the queue, serving 127.0.0.1:51000 (#1, client 1)'), 'and so is a long log line');
});

tap.test('plain lines: a server line naming a client not yet heard from waits for it, then for no one', async (t) => {
  const written: string[] = [];
  const view = new PlainView((text) => written.push(text), Date.now(), Date.now);
  const run = new DemoRun('sequential', 2, 1, 0);
  // The server saw client 2's connection before client 2's process said which port it has.
  view.serverLine(run, { at: Date.now(), text: 'connection from 127.0.0.1:40001 (#1)' });
  await delay(700);
  t.same(written, [], 'held past the reorder window while the port is unknown');
  const change = run.apply({ client: 1, kind: 'connected', at: Date.now(), localPort: 40001 });
  if (change !== null) view.change(run, change);
  await eventually(() => written.length === 2, 'the held line and the one after it printed');
  t.match(written[0], /server: connection from 127\.0\.0\.1:40001 \(#1, client 2\)\n$/, 'printed with the client named');
  t.match(written[1], /client 2: /, 'and the line after it, in time order');
  // A connection no client owns (nothing will ever report it) is held for a while, not for ever.
  view.serverLine(run, { at: Date.now(), text: 'connection from 127.0.0.1:40999 (#2)' });
  await eventually(() => written.length === 3, 'the unnamed line printed after its hold');
  t.match(written[2], /server: connection from 127\.0\.0\.1:40999 \(#2\)\n$/);
  view.close();
});

// ---------------------------------------------------------------------------
// The real thing

/** Those of `pids` still running (the process table leaves zombies out: they run nothing and hold nothing). */
function stillRunning(pids: readonly number[]): ProcEntry[] {
  return processTable().filter((p) => pids.includes(p.pid));
}

const rootOf = (output: string) => /root (\/\S*socklab-bench-sequential-\S+)/.exec(output)?.[1];

tap.test('plain lines through a pipe: each state change and server line, then the timeline and who waited for whom', async (t) => {
  const r = await runCli(['demo', '--clients', '3', '--messages', '2', '--think-ms', '300']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  t.notMatch(out, /\x1b\[/, 'no escape sequences in a pipe');
  t.match(out, /^\d\d:\d\d:\d\d\.\d{3} +\+\d+\.\d{3} s {2}demo: sequential server; 3 clients \(processes\) start at once/);
  for (const client of [1, 2, 3]) {
    for (const state of ['connecting', 'waiting in the queue', 'being served', 'done']) {
      t.match(out, new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} +\\+\\d+\\.\\d{3} s  client ${client}: ${state}`, 'm'), `client ${client}: ${state}`);
    }
  }
  t.match(out, /server: socklab sequential server listening on 127\.0\.0\.1:\d+/, 'the server log, on a free port');
  t.match(out, /server: \S+ \(#2, client \d\) waits: 1 in the queue, serving \S+ \(#1, client \d\)/, 'the queue, with the clients named');
  t.match(out, /\nFinal timeline:\nsequential: makespan .*\n {2}client \d \|\.*=+ *\|\n/);
  const summary = out.slice(out.indexOf('Who waited, and why:'));
  t.match(summary, /^Who waited, and why:\nsequential serves one client at a time/);
  const [first, second, third] = summary.split('\n').filter((line) => line.startsWith('  client '));
  t.match(first, /^ {2}client \d waited /);
  t.notMatch(first, / for client/, 'the first served waited for nobody');
  t.match(second, /^ {2}client \d waited .* for client \d;/, 'the second waited for the first');
  t.match(third, /^ {2}client \d waited .* for clients \d and \d;/, 'the third for both');
  t.match(
    out,
    /The same load, measured \(a table, repeatable\):\n {2}(socklab|npx socklab|node \S+\/dist\/bin\/socklab\.js) load chat sequential --clients 3 --echoes 2 --think-ms 300\n$/,
    'a command that runs where the user is',
  );
  const root = rootOf(out);
  t.ok(root !== undefined && !fs.existsSync(root), `the temporary root ${root} is removed`);
});

tap.test('--server all: the three models one after the other, then their timelines together', async (t) => {
  const r = await runCli(['demo', '--server', 'all', '--clients', '2', '--messages', '2', '--think-ms', '100']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /demo: sequential server \(run 1 of 3\)[^]*demo: workers --threads 1 server \(run 2 of 3\)[^]*demo: async server \(run 3 of 3\)/, 'fewer threads than clients, so the pool queues');
  t.match(r.stdout, /Final timelines, one under the other on the same time scale:\nsequential: [^]*\nworkers --threads 1: [^]*\nasync: /);
  t.match(r.stdout, /^sequential serves one client at a time/m);
  t.match(r.stdout, /^workers --threads 1 has 1 thread, one per client served: at most 1 client at once/m);
  t.match(r.stdout, /^async serves every client at once/m);
  for (const server of ['sequential', 'workers --threads 1', 'async']) t.match(r.stdout, new RegExp(`^ {2}\\S.* load chat ${server} --clients 2 --echoes 2 --think-ms 100$`, 'm'), `the command that measures ${server}`);
  const times = [...r.stdout.matchAll(/^\d\d:\d\d:\d\d\.\d{3} +\+(\d+\.\d{3}) s/gm)].map((m) => Number(m[1]));
  t.ok(times.length > 20 && times.every((time, i) => i === 0 || time >= times[i - 1]!), 'the clients\' and the server\'s lines in time order: the clock never runs backwards');
  t.notMatch(r.stdout, /Ctrl-C again/, 'the server stopped by the demo is not told to press Ctrl-C');
});

tap.test('on a terminal: the live screen, then the same ending', async (t) => {
  if (!requireSystemTools(t, 'script')) return; // script(1) gives the demo a terminal
  const script = spawnSync('script', ['-qec', `stty cols 120 rows 35; ${process.execPath} ${BIN} demo --clients 2 --messages 2 --think-ms 300`, '/dev/null'], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, TERM: 'xterm-256color' },
  });
  t.equal(script.status, 0, script.stderr);
  const screen = script.stdout;
  t.match(screen, /\x1b\[\?25l/, 'the cursor is hidden while the screen is live');
  t.match(screen, /\x1b\[\?25h/, 'and shown again');
  t.match(screen, /\x1b\[\d+A/, 'the screen is redrawn in place');
  const text = plain(screen);
  t.match(text, /socklab demo · sequential server on 127\.0\.0\.1:\d+/);
  t.match(text, /client 1 +(waiting in the queue|being served)/);
  t.match(text, /client 2 +(waiting in the queue|being served)/);
  t.match(text, /client 1 +done/);
  t.match(text, /server log/);
  t.match(text, /Final timeline:[^]*Who waited, and why:/);
});

/** Starts a demo that runs a while, waits until it serves someone, stops it as `how` says, and checks nothing is left. */
async function stopMidRun(t: Pick<typeof tap, 'ok' | 'equal' | 'match' | 'same'>, how: 'demo alone' | 'process group'): Promise<void> {
  const child = spawn(process.execPath, [BIN, 'demo', '--clients', '3', '--messages', '5', '--think-ms', '1000'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: how === 'process group',
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const pid = child.pid ?? 0;
  try {
    await eventually(() => /client \d: being served/.test(stdout), 'a client is being served', 30_000).catch(() => {}); // the match below says what was seen
    t.match(stdout, /client \d: being served/, 'a client is being served');
    const tree = descendantsOf(pid);
    t.ok(tree.filter((p) => p.cmdline.includes('load-worker.js')).length === 3, 'three client processes run');
    t.ok(tree.some((p) => p.cmdline.includes('server sequential')), 'and the server');

    if (how === 'process group') process.kill(-pid, 'SIGINT');
    else child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_LIMIT_MS);
    const { code, signal } = await exited;
    clearTimeout(timer);
    t.equal(signal, null, 'the demo ended by itself');
    t.equal(code, 0, `it exits 0 after a clean stop: ${stderr}`);
    t.match(stdout, /Stopped \(SIGINT\): the server and the 3 client processes have ended, the temporary root is removed\.\n$/);
    t.same(stillRunning(tree.map((p) => p.pid)), [], 'no process of the demo is left');
    const root = rootOf(stdout);
    t.ok(root !== undefined && !fs.existsSync(root), `the temporary root ${root} is removed`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    killAll(descendantsOf(pid));
  }
}

tap.test('Ctrl-C to the demo alone ends the server and every client', async (t) => {
  await stopMidRun(t, 'demo alone');
});

tap.test('Ctrl-C as a terminal sends it, to the whole process group, ends everything too', async (t) => {
  await stopMidRun(t, 'process group');
});

tap.test('bad flags are refused in one sentence', async (t) => {
  const r = await runCli(['demo', '--clients', '0']);
  t.equal(r.code, 2);
  t.equal(r.stderr, 'socklab: --clients must be a whole number from 1 to 32, not 0\n');
});
