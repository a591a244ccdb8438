/**
 * The Python examples (examples/python/) as the tests run them: a server on a
 * free port, found by its "listening on" line, and stopped with Ctrl-C, which
 * must end it cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { childEnv } from './child-env.js';

export const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/python');
/** Among others, PYTHONDONTWRITEBYTECODE: Python must not write __pycache__ into the repository. */
export const PYTHON_ENV = childEnv();
const START_LIMIT_MS = 15_000;

export interface RunningServer {
  readonly port: number;
  readonly child: ChildProcess;
  output(): string;
  /** Ctrl-C; resolves with its exit code. */
  interrupt(): Promise<number | null>;
}

/** Starts an example server on a free port (`args` say so: the line servers take the port alone) and waits for its "listening on" line. */
export function startServer(file: string, args: readonly string[] = ['0']): Promise<RunningServer> {
  const child = spawn('python3', [path.join(EXAMPLES, file), ...args], { env: PYTHON_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not say where it listens within ${START_LIMIT_MS / 1000} s: ${output}`));
    }, START_LIMIT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const port = /listening on 127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      if (port === undefined) return;
      clearTimeout(timer);
      resolve({
        port: Number(port),
        child,
        output: () => output,
        interrupt: () => {
          if (child.exitCode === null) child.kill('SIGINT');
          return exited;
        },
      });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before listening: ${output}`));
    });
  });
}

/** Runs `fn` against a freshly started example server, and checks that Ctrl-C stops it cleanly. */
export async function withServer(t: Test, file: string, fn: (server: RunningServer) => Promise<void>, args?: readonly string[]): Promise<void> {
  const server = await startServer(file, args);
  t.teardown(() => void server.child.kill('SIGKILL'));
  try {
    await fn(server);
  } finally {
    const code = await server.interrupt();
    t.equal(code, 0, `${file} stops cleanly on Ctrl-C (exit 0)`);
    t.match(server.output(), /stopped/, 'and says so');
  }
}

