/**
 * examples/python/: the lecture's servers, completed, measured by
 * `socklab load chat --protocol echo` the way socklab's own are. The blocking
 * server draws the staircase (one client after another: the makespan is the
 * clients' scripts end to end), the threaded and the non-blocking ones serve
 * everyone at once (one script). The chat client sends lines until STOP.
 *
 * The load is small (4 clients, 3 lines 750 ms apart: a 1.5 s script) but long
 * next to connecting and answering, so a ±10% band around the ideal tells the
 * two shapes apart on a busy machine and still fails a server that is not
 * what it claims to be.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import tap, { type Test } from 'tap';
import type { RelativeSession, ScenarioReport, TargetReport } from '../../bench/report/report-model.js';
import { finished, runCli } from '../clients/run-cli.js';
import { withLineServer } from '../helpers/line-server.js';
import { EXAMPLES, PYTHON_ENV, withServer } from '../helpers/python-example.js';
import { requireSystemTools } from '../helpers/system-tool.js';

const t = tap;

// The socklab processes started here need not carry tap's process-tracking hooks (see load.test.ts).
delete process.env.NODE_OPTIONS;

const CHAT = { clients: 4, echoes: 3, thinkMs: 750 };
const SCRIPT_MS = (CHAT.echoes - 1) * CHAT.thinkMs;
const TOLERANCE = 0.1;

async function loadChat(t: Test, port: number, serves: string): Promise<TargetReport> {
  const args = ['load', 'chat', '--protocol', 'echo', '--port', String(port), '--serves', serves, '--json'];
  const params = ['--clients', String(CHAT.clients), '--echoes', String(CHAT.echoes), '--think-ms', String(CHAT.thinkMs)];
  const r = await runCli([...args, ...params], { limitMs: 60_000 });
  finished(t, r);
  t.equal(r.code, 0, 'socklab load exits 0', { stderr: r.stderr });
  const { report } = JSON.parse(r.stdout) as { report: ScenarioReport };
  const target = report.targets[0];
  if (target === undefined) throw new Error('no target in the report');
  const sessions = target.timeline.sessions;
  t.equal(sessions.length, CHAT.clients, `${CHAT.clients} sessions`);
  t.same(
    sessions.map((s) => s.error),
    sessions.map(() => null),
    'no errors',
  );
  for (const s of sessions) {
    t.same(
      s.replies.map((r) => `${r.request} ${r.code}`),
      Array.from({ length: CHAT.echoes }, () => 'line null'),
      `client ${s.client + 1}: every line answered`,
    );
  }
  return target;
}

function within(t: Test, makespan: number, expected: number, what: string): void {
  t.ok(
    Math.abs(makespan - expected) <= expected * TOLERANCE,
    `makespan ${makespan.toFixed(0)} ms is within ${TOLERANCE * 100}% of ${what} (${expected} ms)`,
  );
}

const byService = (sessions: readonly RelativeSession[]) => [...sessions].sort((a, b) => (a.greeted ?? Infinity) - (b.greeted ?? Infinity));

t.test('blocking_server.py: one client after another, the staircase', async (t) => {
  if (!requireSystemTools(t, 'python3')) return;
  await withServer(t, 'blocking_server.py', async ({ port }) => {
    const target = await loadChat(t, port, '1');
    t.equal(target.summary.idealMs, CHAT.clients * SCRIPT_MS, 'the ideal with --serves 1: clients × script');
    within(t, target.summary.makespanMs.mean, CHAT.clients * SCRIPT_MS, 'clients × script');
    t.equal(target.summary.maxServedAtOnce, 1, 'never two served at once');
    const served = byService(target.timeline.sessions);
    for (let k = 1; k < served.length; k++) {
      const before = served[k - 1] as RelativeSession;
      const now = served[k] as RelativeSession;
      t.ok((now.greeted ?? 0) > (before.quitSent ?? Infinity), `client ${k + 1} in line got its first answer only after client ${k} hung up`);
    }
  });
});

for (const file of ['threaded_server.py', 'nonblocking_server.py']) {
  t.test(`${file}: every client at once`, async (t) => {
    if (!requireSystemTools(t, 'python3')) return;
    await withServer(t, file, async ({ port }) => {
      const target = await loadChat(t, port, 'all');
      t.equal(target.summary.idealMs, SCRIPT_MS, 'the ideal with --serves all: one script');
      within(t, target.summary.makespanMs.mean, SCRIPT_MS, 'one script');
      t.equal(target.summary.maxServedAtOnce, CHAT.clients, 'all four served at once');
      const sessions = target.timeline.sessions;
      t.ok(Math.max(...sessions.map((s) => s.greeted ?? Infinity)) < Math.min(...sessions.map((s) => s.quitSent ?? 0)), 'all were answered before any hung up');
    });
  });
}

interface ChatRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runChatClient(port: number, stdin: string): Promise<ChatRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [path.join(EXAMPLES, 'chat_client.py'), String(port)], { env: PYTHON_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

const CHAT_INPUT = 'hello\nпривет, сервер\nSTOP\nnot sent\n';

for (const file of ['blocking_server.py', 'threaded_server.py', 'nonblocking_server.py']) {
  t.test(`chat_client.py against ${file}: sends lines, prints the echoes, STOP ends`, async (t) => {
    if (!requireSystemTools(t, 'python3')) return;
    await withServer(t, file, async (server) => {
      const r = await runChatClient(server.port, CHAT_INPUT);
      t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
      t.equal(r.stdout, 'hello\nпривет, сервер\n', 'each line came back, up to STOP');
      // The server logs the hang-up: STOP closed the connection rather than waiting for the end of input.
      await waitFor(() => /closed/.test(server.output()), 5000);
      t.match(server.output(), /127\.0\.0\.1:\d+ closed/, 'the server saw the client leave');
    });
  });
}

/** Sends `pieces` one by one (a pause between them, so each is its own segment), then reads until `expected` bytes came back. */
async function exchangeRaw(port: number, pieces: readonly string[], expectedBytes: number): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const chunks: Buffer[] = [];
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= expectedBytes) resolve();
    });
    socket.once('error', reject);
    socket.once('close', () => resolve());
  });
  for (const piece of pieces) {
    socket.write(piece);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  await done;
  socket.destroy();
  return Buffer.concat(chunks).toString('utf8');
}

for (const file of ['blocking_server.py', 'threaded_server.py', 'nonblocking_server.py']) {
  t.test(`${file} answers each line once, however TCP cuts the bytes`, async (t) => {
    if (!requireSystemTools(t, 'python3')) return;
    await withServer(t, file, async ({ port }) => {
      const split = await exchangeRaw(port, ['hel', 'lo\nwor', 'ld\none\ntwo\n'], 'hello\nworld\none\ntwo\n'.length);
      t.equal(split, 'hello\nworld\none\ntwo\n', 'a line in pieces, and several lines in one piece');
      // Far more than one recv() returns, in one write: lines are cut at every recv()'s edge, and none may be lost or doubled.
      const burst = Array.from({ length: 50_000 }, (_, i) => `line ${i}\n`).join('');
      t.equal(await exchangeRaw(port, [burst], Buffer.byteLength(burst)), burst, '50,000 lines at once, each answered in order');
    });
  });
}

t.test('chat_client.py sends exactly the lines before STOP, and says so when nothing listens', async (t) => {
  if (!requireSystemTools(t, 'python3')) return;
  let port = 0;
  await withLineServer(async (server) => {
    port = server.port;
    const r = await runChatClient(port, CHAT_INPUT);
    t.equal(r.code, 0);
    t.same(server.received, ['hello', 'привет, сервер'], 'STOP and what follows it were not sent');
  });
  const refused = await runChatClient(port, 'hello\n');
  t.equal(refused.code, 1, 'nothing listens: exit 1');
  t.match(refused.stderr, `cannot connect to 127.0.0.1:${port}`, 'with one sentence');
  t.notMatch(refused.stderr, /Traceback/, 'not a traceback');
});

async function waitFor(condition: () => boolean, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  while (!condition() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
}
