/**
 * Runs the real socklab binary (dist/bin/socklab.js) as a subprocess, with
 * piped stdin/stdout/stderr (so never a TTY), always bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type tap from 'tap';

export const BIN = fileURLToPath(new URL('../../bin/socklab.js', import.meta.url));
/** No client run in these tests may take longer than this; past it the process is killed and the test fails. */
export const RUN_LIMIT_MS = 20_000;

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
  /** True when the process had to be killed after its time limit (`limitMs`). */
  readonly timedOut: boolean;
  readonly limitMs: number;
}

export interface RunOptions {
  /** Written to stdin, which is then closed. Leave undefined for an empty stdin. */
  readonly stdin?: string | Buffer;
  readonly cwd?: string;
  /** Called once the process is started (to signal it, watch its output...). */
  readonly onSpawn?: (child: ChildProcess) => void;
  /** Kill the process after this long (default RUN_LIMIT_MS): for runs that wait on purpose, such as retries. */
  readonly limitMs?: number;
  /** Leave stdin open after `stdin`: the test writes the rest (or ends it) through the child from onSpawn. */
  readonly keepStdinOpen?: boolean;
  /** Run as this user (the test runs as root): what a student without privileges sees. */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** The nobody user: what a student without privileges sees, where the tests run as root (CI), whom no permission stops. */
export const NOBODY = { uid: 65534, gid: 65534 } as const;

/** The user to run the CLI as for file permissions to apply: this one, or nobody when this one is root. */
export function unprivilegedUser(): RunOptions['user'] {
  return process.getuid?.() === 0 ? NOBODY : undefined;
}

let nodeCopy: string | null = null;

/**
 * This node, where another user may run it: itself, or a copy when it lies
 * where others may not enter (CI's Node 24 is under /root).
 */
function nodeOthersMayRun(): string {
  const othersMayEnter = (file: string): boolean => {
    for (let at = path.dirname(file); ; at = path.dirname(at)) {
      if ((fs.statSync(at).mode & 0o001) === 0) return false;
      if (path.dirname(at) === at) return true;
    }
  };
  if (othersMayEnter(process.execPath)) return process.execPath;
  if (nodeCopy === null) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-node-'));
    fs.chmodSync(dir, 0o755);
    nodeCopy = path.join(dir, 'node');
    fs.copyFileSync(process.execPath, nodeCopy);
    fs.chmodSync(nodeCopy, 0o755);
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return nodeCopy;
}

export function runCli(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const limitMs = options.limitMs ?? RUN_LIMIT_MS;
    const env = { ...process.env };
    delete env.SOCKLAB_DEBUG;
    // tap's process-info hook (put back into every spawn's NODE_OPTIONS) writes under the repository, which
    // another user may not: `env -u` takes it out on the far side of the spawn.
    const [command, ...commandArgs] =
      options.user === undefined ? [process.execPath, BIN, ...args] : ['env', '-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE', nodeOthersMayRun(), BIN, ...args];
    const child = spawn(command as string, commandArgs, { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], uid: options.user?.uid, gid: options.user?.gid });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => {}); // the client may exit before reading all of it
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const out = Buffer.concat(stdout);
      resolve({ code, signal, stdout: out.toString('utf8'), stdoutBytes: out, stderr: Buffer.concat(stderr).toString('utf8'), timedOut, limitMs });
    });
    options.onSpawn?.(child);
    if (options.keepStdinOpen === true) child.stdin.write(options.stdin ?? '');
    else child.stdin.end(options.stdin ?? '');
  });
}

/** Resolves once everything `stream` printed so far (from when this is called) matches `pattern`; rejects after `timeoutMs`. */
export function printed(stream: NodeJS.ReadableStream | null, pattern: RegExp, timeoutMs = RUN_LIMIT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    if (stream === null) return reject(new Error('no such stream'));
    let text = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`nothing matching ${pattern} was printed within ${timeoutMs} ms; printed: ${JSON.stringify(text)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (!pattern.test(text)) return;
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(text);
    };
    stream.on('data', onData);
  });
}

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function sha256File(file: string): string {
  return sha256(fs.readFileSync(file));
}

/** A port nothing listens on: bound once, then closed again. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A stand-in server, for behaviour a real one never shows on purpose (dying mid-upload...). */
export interface FakeServer {
  readonly port: number;
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

export async function startFakeServer(onConnection: (socket: net.Socket) => void): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Calls `onLine` for each LF-terminated line the client sends, until it returns 'stop'; the rest goes to `onData`. */
export function readLines(socket: net.Socket, onLine: (line: string) => 'stop' | void, onData?: (chunk: Buffer) => void): void {
  let buffered = Buffer.alloc(0);
  let reading = true;
  socket.on('data', (chunk: Buffer) => {
    if (!reading) {
      onData?.(chunk);
      return;
    }
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const lf = buffered.indexOf(0x0a);
      if (lf < 0) return;
      const line = buffered.subarray(0, lf).toString('utf8').replace(/\r$/, '');
      buffered = buffered.subarray(lf + 1);
      if (onLine(line) === 'stop') {
        reading = false;
        if (buffered.length > 0) onData?.(buffered);
        return;
      }
    }
  });
}

/** The one-sentence failure shape every client error must have. */
export function isOneSentence(stderr: string): boolean {
  const lines = stderr.trimEnd().split('\n');
  return lines.length === 1 && lines[0]!.startsWith('socklab: ') && !stderr.includes('    at ');
}

/** Every run: it ended by itself within the limit, and printed no stack trace. */
export function finished(t: Pick<typeof tap, 'notOk'>, r: RunResult): void {
  t.notOk(r.timedOut, `the client finished within ${r.limitMs / 1000} s`);
  t.notOk(r.stderr.includes('    at '), 'no stack trace on stderr');
}
