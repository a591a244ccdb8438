/**
 * A server under measurement runs in a process of its own, as a user would run
 * it, so its CPU time and memory are its own: read from /proc while it runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from '../../clients/interrupt.js';
import type { ServerModelName } from '../../servers/index.js';
import { LoadGeneratorError } from '../load/load-generator.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOCKLAB_BIN = path.resolve(here, '../../bin/socklab.js');
/** Bare Node servers that do the least possible: the ceilings socklab's servers are measured against. */
const CEILING_SERVERS = {
  'line-server': path.resolve(here, 'line-server.js'),
  'copy-sink': path.resolve(here, 'copy-sink.js'),
  /** The copy-sink that also computes the sha256 of what it copies (`--hash`): what a checking server cannot beat. */
  'hash-sink': path.resolve(here, 'copy-sink.js'),
  'bare-relay': path.resolve(here, 'bare-relay.js'),
  /** A Python peer (standard library): the lecture's thread-per-connection server, for comparison. */
  'python-threads': path.resolve(here, '../../../bench/targets/threaded_line_server.py'),
} as const;

export type CeilingServer = keyof typeof CEILING_SERVERS;
export type BenchTarget = ServerModelName | CeilingServer;

/** The ceilings for bulk bytes: bare copies that take a byte count, not a PUT, and start no hasher threads. */
export const BYTE_SINKS = ['copy-sink', 'hash-sink'] as const;
export type ByteSink = (typeof BYTE_SINKS)[number];

export function isByteSink(target: string): target is ByteSink {
  return (BYTE_SINKS as readonly string[]).includes(target);
}

export interface ServerProcess {
  readonly target: BenchTarget;
  readonly port: number;
  readonly pid: number;
  readonly root: string;
  /** Resident memory now, in bytes. */
  rss(): number;
  /** Peak resident memory since start (VmHWM), in bytes. */
  peakRss(): number;
  /** User + system CPU seconds used so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export interface ServerProcessOptions {
  readonly threads?: number;
  readonly maxFileSize?: string;
  readonly maxConnections?: number;
  readonly idleTimeoutSeconds?: number;
  readonly extraArgs?: readonly string[];
  /** Gets each line the server writes to stdout, its log among them (the server then runs without --quiet). */
  readonly onOutputLine?: (line: string) => void;
}

/** Every server process started and not yet stopped, with its temporary root: what an interrupted run must clean up. */
const running = new Map<ChildProcess, string>();

/** Kills every server process still running and removes its root, at once (the run was interrupted). */
export function abandonServerProcesses(): void {
  for (const [child, root] of running) {
    child.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  }
  running.clear();
}

/**
 * Runs `work` (a load or a bench) so that Ctrl-C ends it cleanly: the servers
 * it started are killed, their temporary roots removed, and one line says so,
 * instead of a bare `^C` and directories left in /tmp. The load processes get
 * the terminal's Ctrl-C themselves, and end when their parent does.
 */
export function stoppingServersOnInterrupt<T>(what: string, lost: string, work: () => Promise<T>): Promise<T> {
  const interrupted = (): never => {
    abandonServerProcesses();
    process.stderr.write(`${what}: interrupted (Ctrl-C); ${lost}.\nThe servers it started are stopped and their temporary roots removed.\n`);
    process.exit(INTERRUPTED_EXIT_CODE);
  };
  return withInterruptHandler(interrupted, () =>
    work().catch((error: unknown) => {
      // A load process may die of the same Ctrl-C before this process's handler has run.
      if (error instanceof LoadGeneratorError && error.signal === 'SIGINT') interrupted();
      throw error;
    }),
  );
}

export async function startServerProcess(target: BenchTarget, options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `socklab-bench-${target}-`));
  const { command, args } = commandLine(target, root, options);
  const child = spawn(command, command === process.execPath ? [...diagnosticNodeArgs(), ...args] : args, { stdio: ['ignore', 'pipe', 'inherit'] });
  running.set(child, root);
  if (options.onOutputLine !== undefined) forwardLines(child, options.onOutputLine);
  let port: number;
  try {
    port = await listeningPort(target, child);
  } catch (error) {
    running.delete(child);
    fs.rmSync(root, { recursive: true, force: true });
    throw error;
  }
  const pid = child.pid ?? 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    target,
    port,
    pid,
    root,
    rss: () => procStatusBytes(pid, 'VmRSS'),
    peakRss: () => procStatusBytes(pid, 'VmHWM'),
    cpuSeconds: () => procCpuSeconds(pid),
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
      running.delete(child);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Node options for the server processes only, to see where their time goes
 * (`SOCKLAB_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"`): Node
 * refuses --cpu-prof in NODE_OPTIONS, and that would profile the load too.
 */
function diagnosticNodeArgs(): string[] {
  return (process.env.SOCKLAB_SERVER_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
}

/** How to start a target: a socklab server as a user would, or a ceiling as the bare program it is. */
function commandLine(target: BenchTarget, root: string, options: ServerProcessOptions): { command: string; args: string[] } {
  switch (target) {
    case 'line-server':
    case 'copy-sink':
      return { command: process.execPath, args: [CEILING_SERVERS[target]] };
    case 'hash-sink':
      return { command: process.execPath, args: [CEILING_SERVERS[target], '--hash'] };
    case 'bare-relay':
      return { command: process.execPath, args: [CEILING_SERVERS[target], '127.0.0.1', '0', String(options.threads ?? 8)] };
    case 'python-threads':
      return { command: 'python3', args: [CEILING_SERVERS[target], '127.0.0.1', '0'] };
    default:
      return {
        command: process.execPath,
        args: [
          SOCKLAB_BIN,
          'server',
          target,
          '--port',
          '0',
          '--root',
          root,
          ...(options.onOutputLine === undefined ? ['--quiet'] : []),
          '--max-file-size',
          options.maxFileSize ?? '2GiB',
          '--max-connections',
          String(options.maxConnections ?? 20_000),
          '--idle-timeout',
          String(options.idleTimeoutSeconds ?? 300),
          // Only workers has threads; the others would print a note saying they ignore the option.
          ...(options.threads === undefined || target !== 'workers' ? [] : ['--threads', String(options.threads)]),
          ...(options.extraArgs ?? []),
        ],
      };
  }
}

/** A server process that did not come up. Its own error, if it printed one, is on stderr just above. */
export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';

  constructor(
    readonly code: 'SERVER_EXITED' | 'SERVER_START_TIMEOUT',
    message: string,
  ) {
    super(message);
  }
}

const START_TIMEOUT_MS = 20_000;

function listeningPort(target: BenchTarget, child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const printed = () => (seen.trim() === '' ? ' (its error, if any, is above)' : `: ${seen.trim()}`);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new ServerStartError('SERVER_START_TIMEOUT', `the ${target} server process did not start listening within ${START_TIMEOUT_MS / 1000} s${printed()}`));
    }, START_TIMEOUT_MS);
    // Removed once the port is known: a server that logs every connection would
    // otherwise have all its output appended and searched again for its whole life.
    const lookForPort = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /listening on [^\s]+:(\d+)/.exec(seen);
      if (match !== null) {
        clearTimeout(timer);
        child.stdout?.off('data', lookForPort);
        resolve(Number(match[1]));
        return;
      }
      if (seen.length > 65536) seen = seen.slice(-1024);
    };
    child.stdout?.on('data', lookForPort);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new ServerStartError('SERVER_EXITED', `the ${target} server process exited with code ${code} before listening${printed()}`));
    });
  });
}

function forwardLines(child: ChildProcess, onLine: (line: string) => void): void {
  let partial = '';
  const decoder = new StringDecoder('utf8');
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
}

function procStatusBytes(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

const CLOCK_TICKS = 100;

function procCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
