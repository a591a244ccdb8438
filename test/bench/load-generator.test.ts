/**
 * A load process that dies fails the run with a typed error that says how it
 * died: a command tells a Ctrl-C (the terminal's SIGINT reaches the load
 * processes too) from a crash by the error's signal, not by its wording.
 */
import net from 'node:net';
import t from 'tap';
import { LoadGenerator, LoadGeneratorError } from '../../bench/load/load-generator.js';
import { socklabEndpoints } from '../../bench/load/script-client.js';
import type { Tap } from '../helpers/tap.js';

/** Accepts connections and never greets: a session waits for its greeting until its process is killed. */
async function silentServer(t: Tap): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
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

function waitForExit(pid: number): Promise<void> {
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch {
        clearInterval(poll);
        resolve();
      }
    }, 20);
  });
}

t.test('a load process killed between runs: the next run fails before its start, with the signal', async (t) => {
  const generator = LoadGenerator.start(1);
  t.teardown(() => generator.close());
  const [pid] = generator.processIds;
  t.ok(pid !== undefined && pid > 0, 'the load process has a pid');
  process.kill(pid ?? 0, 'SIGTERM');
  await waitForExit(pid ?? 0);
  // The parent learns of the exit from its own event loop: give it the turn.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const failure = await generator.run(chatRun(await silentServer(t))).then(
    () => null,
    (error: unknown) => error,
  );
  t.ok(failure instanceof LoadGeneratorError, 'a LoadGeneratorError');
  t.match(failure, { code: 'BARRIER', signal: 'SIGTERM', message: /load process 0 was lost before the start: load process 0 killed by SIGTERM/ });
});

t.test('a load process killed by SIGINT in the middle of a run: the run fails, and the error names SIGINT', async (t) => {
  const generator = LoadGenerator.start(1);
  t.teardown(() => generator.close());
  const port = await silentServer(t);
  const [pid] = generator.processIds;
  const running = generator.run(chatRun(port));
  // The session is connected and waits for the greeting that never comes; then the Ctrl-C.
  setTimeout(() => process.kill(pid ?? 0, 'SIGINT'), 1500);
  const failure = await running.then(
    () => null,
    (error: unknown) => error,
  );
  t.ok(failure instanceof LoadGeneratorError, 'a LoadGeneratorError');
  t.match(failure, { code: 'WORKER_EXITED', signal: 'SIGINT' });
});

t.test('a load process that exits on its own carries no signal', async (t) => {
  const error = new LoadGeneratorError('WORKER_EXITED', 'load process 0 exited with code 1');
  t.equal(error.signal, null);
});
