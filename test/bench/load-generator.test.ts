/**
 * A load process that dies fails the run with a typed error that says how it
 * died: a command tells a Ctrl-C (the terminal's SIGINT reaches the load
 * processes too) from a crash by the error's signal, not by its wording.
 * And load processes run on the compiler their script calls for.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import t from 'tap';
import { killedBySignal } from '../../bench/demo/command.js';
import { LoadGenerator, LoadGeneratorError, loadCompilerFor } from '../../bench/load/load-generator.js';
import { SCENARIO_NAMES } from '../../bench/load/scenarios.js';
import { socklabEndpoints } from '../../bench/load/script-client.js';
import { startFakeServer } from '../clients/run-cli.js';
import type { Tap } from '../helpers/tap.js';

/** Accepts connections and never greets, so a session waits; `onConnection` runs as each arrives. */
async function silentServer(t: Tap, onConnection: () => void = () => {}): Promise<number> {
  const server = await startFakeServer(onConnection);
  t.teardown(() => server.close());
  return server.port;
}

function chatRun(port: number) {
  return {
    scenario: 'chat' as const,
    params: { clients: 1, echoes: 1, thinkMs: 0 },
    target: socklabEndpoints('127.0.0.1', port),
    arrivalsPerSecond: null,
    sessionTimeoutMs: 30_000,
  };
}

/** One load process, closed at the test's end, and its pid (a test without one fails: kill(0) would signal the whole group). */
function oneLoadProcess(t: Tap): { readonly generator: LoadGenerator; readonly pid: number } {
  const generator = LoadGenerator.start(1, 'baseline');
  t.teardown(() => generator.close());
  const [pid] = generator.processIds;
  if (pid === undefined) throw new Error('the load process has no pid');
  return { generator, pid };
}

t.test('a load process killed between runs: the next run fails before its start, with the signal', async (t) => {
  const { generator, pid } = oneLoadProcess(t);
  process.kill(pid, 'SIGTERM');
  const failure = await generator.run(chatRun(await silentServer(t))).catch((error: unknown) => error);
  t.ok(failure instanceof LoadGeneratorError, 'a LoadGeneratorError');
  t.match(failure, { code: 'BARRIER', signal: 'SIGTERM', message: /load process 0 was lost before the start: load process 0 .*killed by SIGTERM/ });
});

t.test('a load process killed by SIGINT in the middle of a run: the run fails, and the error names SIGINT', async (t) => {
  const { generator, pid } = oneLoadProcess(t);
  // Once its session is connected (and waits for a greeting that never comes): the Ctrl-C.
  const port = await silentServer(t, () => process.kill(pid, 'SIGINT'));
  const failure = await generator.run(chatRun(port)).catch((error: unknown) => error);
  t.ok(failure instanceof LoadGeneratorError, 'a LoadGeneratorError');
  t.match(failure, { code: 'WORKER_EXITED', signal: 'SIGINT', message: /killed by SIGINT/ });
});

t.test('load processes that exited on their own: the run fails, and no signal is named', async (t) => {
  const generator = LoadGenerator.start(1, 'baseline');
  await generator.close();
  const failure = await generator.run(chatRun(await silentServer(t))).catch((error: unknown) => error);
  t.ok(failure instanceof LoadGeneratorError, 'a LoadGeneratorError');
  t.match(failure, { code: 'BARRIER', signal: null, message: /exited with code 0/ });
});

t.test("the demo counts a load process's SIGINT, SIGTERM or SIGHUP as a stop, by the error's signal", async (t) => {
  const lost = (signal: NodeJS.Signals | null) => new LoadGeneratorError('BARRIER', `load process 0 was lost before the start: load process 0 killed by ${signal}`, { signal });
  t.equal(killedBySignal(lost('SIGINT')), 'SIGINT');
  t.equal(killedBySignal(lost('SIGHUP')), 'SIGHUP');
  t.equal(killedBySignal(lost('SIGKILL')), null, 'SIGKILL is a crash, not a stop');
  t.equal(killedBySignal(lost(null)), null);
  t.equal(killedBySignal(new Error('load process 0 killed by SIGINT')), null, 'words alone are not a signal');
});

/** Runs `stoppingServersOnInterrupt` around work that fails with `failure` (JavaScript source), in a process of its own. */
function commandFailingWith(failure: string) {
  const module = (file: string) => JSON.stringify(new URL(file, import.meta.url).href);
  const source = [
    `import { stoppingServersOnInterrupt } from ${module('../../bench/targets/server-process.js')};`,
    `import { LoadGeneratorError } from ${module('../../bench/load/load-generator.js')};`,
    `await stoppingServersOnInterrupt('socklab load', 'nothing was measured', () => Promise.reject(${failure}));`,
  ].join('\n');
  return spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: 30_000 });
}

t.test("a command whose load process got the terminal's SIGINT ends as interrupted (exit 130); other failures stay failures", async (t) => {
  const interrupted = commandFailingWith("new LoadGeneratorError('WORKER_EXITED', 'load process 0 killed by SIGINT', { signal: 'SIGINT' })");
  t.equal(interrupted.status, 130, 'exit 130');
  t.match(interrupted.stderr, /^socklab load: interrupted \(Ctrl-C\); nothing was measured\./);

  const crashed = commandFailingWith("new LoadGeneratorError('WORKER_EXITED', 'load process 0 killed by SIGKILL', { signal: 'SIGKILL' })");
  t.not(crashed.status, 130, 'a SIGKILL is not a Ctrl-C');
  t.notMatch(crashed.stderr, /interrupted/);

  const worded = commandFailingWith("new Error('load process 0 killed by SIGINT')");
  t.not(worded.status, 130, 'an error that only says so is not one either');
});

/** The load process's command line, once it runs the load worker (until then, fork's child may still show ours). */
async function workerCommandLine(pid: number): Promise<string[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv.some((arg) => arg.endsWith('load-worker.js'))) return argv;
    if (performance.now() > deadline) throw new Error(`load process ${pid} never ran the load worker: ${argv.join(' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('session scripts run on baseline code, a PING burst on the optimizing compiler', async (t) => {
  for (const name of SCENARIO_NAMES) t.equal(loadCompilerFor(name), name === 'ceiling' ? 'optimizing' : 'baseline', name);
  for (const compiler of ['baseline', 'optimizing'] as const) {
    const generator = LoadGenerator.start(1, compiler);
    t.teardown(() => generator.close());
    const [pid] = generator.processIds;
    if (pid === undefined) throw new Error('the load process has no pid');
    const argv = await workerCommandLine(pid);
    t.equal(argv.includes('--max-opt=1'), compiler === 'baseline', `${compiler}: ${argv.join(' ')}`);
  }
});
