/**
 * Clients against a real server process (`socklab server ...`) that goes away
 * while the client waits for its user:
 * - `socklab chat` says why the connection ended as soon as it ends (idle
 *   timeout, shutdown, SIGKILL), with stdin still open, and exits 1;
 * - the interactive `socklab client` reconnects to a server SIGKILLed and
 *   restarted on the same port and root, keeps the answers given, looks again
 *   at what may have changed (the list, whether the name is taken) and never
 *   appends twice, also when the `226` of an append was lost.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { makeTempRoot, startTestServer } from '../helpers/server.js';
import { readOrNull } from '../helpers/wire-fixture.js';
import { startFaultyProxy } from '../reliability/faulty-proxy.js';
import { ServerProcess } from '../reliability/processes.js';
import { finished, isOneSentence, printed, runCli, type RunResult } from './run-cli.js';
import type { Tap } from '../helpers/tap.js';

let local: string;
t.before(() => {
  local = makeTempRoot('socklab-drops-local-');
});
t.teardown(() => fs.rmSync(local, { recursive: true, force: true }));

/** A real server process on a fresh root; ended (and the root removed) by the test's teardown. */
async function serverProcess(t: Tap, model: ServerModelName, args: readonly string[] = [], port = 0, root?: string): Promise<ServerProcess> {
  const dir = root ?? makeTempRoot(`socklab-drops-${model}-`);
  if (root === undefined) t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const server = await ServerProcess.start(model, { root: dir, port, args: ['--threads', '2', '--quiet', ...args] });
  t.teardown(() => server.crash());
  return server;
}

t.test('chat: the server times us out while nobody types: said at once, with the reply, exit 1', async (t) => {
  const server = await serverProcess(t, 'async', ['--idle-timeout', '1']);
  const started = performance.now();
  const r = await runCli(['chat', '--port', String(server.port)], { keepStdinOpen: true });
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /^socklab: the server closed the connection after an idle timeout: we sent nothing for too long \("421 idle timeout"\)\n$/);
  t.equal(r.stdout, 'socklab/1 async ready\n');
  t.ok(performance.now() - started < 15_000, 'long before anyone typed (stdin never ended)');
});

for (const model of SERVER_MODELS) {
  t.test(`chat: a ${model} server SIGKILLed while nobody types: said at once, exit 1`, async (t) => {
    const server = await serverProcess(t, model);
    let child: ChildProcess | undefined;
    let greeted: Promise<string> | undefined;
    const run = runCli(['chat', '--port', String(server.port)], {
      keepStdinOpen: true,
      stdin: 'first line\n',
      onSpawn: (c) => {
        child = c;
        greeted = printed(c.stdout, /first line\n/);
      },
    });
    await greeted;
    await server.crash();
    const r = await run;
    finished(t, r);
    t.equal(child?.stdin?.writableEnded, false, 'stdin was never ended: the chat did not stop for lack of input');
    t.equal(r.code, 1, 'exit 1');
    t.ok(isOneSentence(r.stderr), r.stderr);
    t.match(r.stderr, /^socklab: the server closed the connection without a word while we waited for your input \(was it stopped or killed\?\)\n$/);
    t.equal(r.stdout, `socklab/1 ${model} ready\nfirst line\n`);
  });
}

t.test('chat: the server shuts down (SIGTERM) while nobody types: it says so, exit 1', async (t) => {
  const server = await serverProcess(t, 'async');
  let greeted: Promise<string> | undefined;
  const run = runCli(['chat', '--port', String(server.port)], {
    keepStdinOpen: true,
    onSpawn: (c) => {
      greeted = printed(c.stdout, /ready\n/);
    },
  });
  await greeted;
  server.kill('SIGTERM');
  const r = await run;
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /^socklab: the server is shutting down and closed the connection \("421 shutting down"\)\n$/);
});

// ---------------------------------------------------------------------------
// The interactive client

function localFile(name: string, content: string): string {
  const file = path.join(local, name);
  fs.writeFileSync(file, content);
  return file;
}

/**
 * The interactive client with its answers given one at a time: `steps` are
 * (what it must have printed on stdout by then, what to do, the answer to type).
 */
interface Step {
  readonly after: RegExp;
  readonly before?: () => Promise<void>;
  readonly answer: string;
}

async function interactive(port: number, first: string, steps: readonly Step[], extra: readonly string[] = []): Promise<RunResult> {
  let child: ChildProcess | undefined;
  let output: Promise<void> | undefined;
  const run = runCli(['client', '--port', String(port), ...extra], {
    keepStdinOpen: true,
    stdin: `${first}\n`,
    limitMs: 60_000,
    onSpawn: (c) => {
      child = c;
      let text = '';
      const seen: ((text: string) => void)[] = [];
      c.stdout?.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        for (const wake of [...seen]) wake(text);
      });
      const waitFor = (pattern: RegExp) =>
        new Promise<void>((resolve) => {
          const check = (all: string) => {
            if (!pattern.test(all)) return;
            seen.splice(seen.indexOf(check), 1);
            resolve();
          };
          seen.push(check);
          check(text);
        });
      output = (async () => {
        for (const step of steps) {
          await waitFor(step.after);
          await step.before?.();
          c.stdin?.write(`${step.answer}\n`);
        }
        c.stdin?.end();
      })();
    },
  });
  const [r] = await Promise.all([run, output]);
  void child;
  return r;
}

/** SIGKILLs `server` and starts the same model again on its port and root (after `meanwhile`, while it is down). */
async function killAndRestart(t: Tap, server: ServerProcess, meanwhile?: () => void): Promise<void> {
  await server.crash();
  meanwhile?.();
  await serverProcess(t, server.model, [], server.port, server.root);
}

for (const model of SERVER_MODELS) {
  t.test(`client: a ${model} server SIGKILLed and restarted at "name on the server:": it reconnects, asks again what changed, appends once`, async (t) => {
    const server = await serverProcess(t, model);
    const file = localFile(`notes-${model}.txt`, 'our lines\n');
    const name = `notes-${model}.txt`;
    const r = await interactive(server.port, file, [
      {
        after: /name on the server: /,
        // While it is down, someone creates the name the user is about to choose.
        before: () => killAndRestart(t, server, () => fs.writeFileSync(path.join(server.root, name), 'their line\n')),
        answer: '',
      },
      { after: /Overwrite or append\? \[o\/a\/c\] /, answer: 'a' },
    ]);
    finished(t, r);
    t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
    t.match(
      r.stderr,
      /^socklab: the server closed the connection without a word while we waited for your input \(was it stopped or killed\?\); reconnecting in \d\.\d s \(retry 1 of 8\)\n$/,
      'it said what was under way, and that it reconnects',
    );
    t.notMatch(r.stderr, /in the middle of the upload/, 'not an upload: nothing had been sent');
    t.match(r.stdout, new RegExp(`reconnected to 127\\.0\\.0\\.1:${server.port}: socklab/1 ${model} ready`));
    t.match(r.stdout, new RegExp(`the server's files changed while we were reconnecting; now:\\n.*\\n.*${name.replace('.', '\\.')}`), 'the list, again');
    t.match(r.stdout, new RegExp(`${name.replace('.', '\\.')} exists on the server \\(11 bytes\\)\\. Overwrite or append\\?`), 'the name is taken now: asked');
    t.equal(readOrNull(server.root, name)?.toString(), 'their line\nour lines\n', 'appended, once');
  });
}

t.test('client: killed while the user decides between overwrite and append: the answer is carried out once after reconnecting', async (t) => {
  const server = await serverProcess(t, 'sequential');
  fs.writeFileSync(path.join(server.root, 'log.txt'), 'line 1\n');
  const r = await interactive(server.port, localFile('more.txt', 'line 2\n'), [
    { after: /name on the server: /, answer: 'log.txt' },
    { after: /Overwrite or append\? \[o\/a\/c\] /, before: () => killAndRestart(t, server), answer: 'a' },
  ]);
  finished(t, r);
  t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
  t.match(r.stderr, /^socklab: the server closed the connection while you were deciding whether to overwrite or append log\.txt; the file on the server is as it was; reconnecting in \d\.\d s \(retry 1 of 8\)\n$/);
  t.equal((r.stdout.match(/Overwrite or append\?/g) ?? []).length, 1, 'not asked again: the file is as it was when the user answered');
  t.equal(readOrNull(server.root, 'log.txt')?.toString(), 'line 1\nline 2\n');
});

t.test('client: the file changed while the server was down: the answer is not applied to it; asked again', async (t) => {
  const server = await serverProcess(t, 'async');
  fs.writeFileSync(path.join(server.root, 'log.txt'), 'line 1\n');
  const r = await interactive(server.port, localFile('more2.txt', 'line 2\n'), [
    { after: /name on the server: /, answer: 'log.txt' },
    {
      after: /Overwrite or append\? \[o\/a\/c\] /,
      before: () => killAndRestart(t, server, () => fs.appendFileSync(path.join(server.root, 'log.txt'), 'THEIR LINE\n')),
      answer: 'o',
    },
    { after: /\(18 bytes\)\. Overwrite or append\? \[o\/a\/c\] /, answer: 'a' },
  ]);
  finished(t, r);
  t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
  t.match(r.stderr, /socklab: log\.txt changed on the server while we were reconnecting; your answer was about the file as it was, so it is not applied/);
  t.equal(readOrNull(server.root, 'log.txt')?.toString(), 'line 1\nTHEIR LINE\nline 2\n', 'the second answer (append) onto the file as it is now');
});

t.test('client: the 226 of an append is lost: STAT and GET find it committed; it is not appended again', async (t) => {
  const server = await startTestServer('async');
  t.teardown(() => server.close());
  const proxy = await startFaultyProxy(server.port, (n) => (n === 1 ? { kind: 'drop-226' } : { kind: 'pass' }));
  t.teardown(() => proxy.close());
  fs.writeFileSync(path.join(server.root, 'log.txt'), 'line 1\n');
  const r = await interactive(proxy.port, localFile('more3.txt', 'line 2\n'), [
    { after: /name on the server: /, answer: 'log.txt' },
    { after: /Overwrite or append\? \[o\/a\/c\] /, answer: 'a' },
  ]);
  finished(t, r);
  t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
  t.match(r.stderr, /after all of log\.txt was sent but before confirming it.*reconnecting in \d\.\d s \(retry 1 of 8\)/);
  t.match(r.stdout, /committed by the attempt whose confirmation was lost/);
  t.equal(proxy.puts.length, 1, 'the PUT was sent once');
  t.equal(readOrNull(server.root, 'log.txt')?.toString(), 'line 1\nline 2\n', 'appended exactly once');
});

t.test('client --retry 0: a lost connection ends it, naming the step really under way', async (t) => {
  const server = await serverProcess(t, 'async');
  const r = await interactive(server.port, localFile('unsent.txt', 'x\n'), [{ after: /name on the server: /, before: async () => void (await server.crash()), answer: '' }], ['--retry', '0']);
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /^socklab: the server closed the connection without a word while we waited for your input/);
});
