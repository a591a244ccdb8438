/**
 * Real processes for the reliability tests: a socklab server as a user runs it
 * (`node dist/bin/socklab.js server <model> --port 0 --root R`), which a test
 * can SIGKILL or SIGTERM, and small Node children (a client to kill). Every
 * wait is bounded; children never inherit a test runner's NODE_OPTIONS (its
 * loader hooks would only slow them down), but may be given their own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerModelName } from '../../servers/index.js';
import { childEnv } from '../helpers/child-env.js';

export const BIN = fileURLToPath(new URL('../../bin/socklab.js', import.meta.url));
/** A server that has not said "listening on" by then has failed to start. */
export const START_TIMEOUT_MS = 30_000;

/** The environment for a child: ours without NODE_OPTIONS, plus `extra`. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ServerProcessOptions {
  readonly root: string;
  /** 0 (default) picks a free port; a restart passes the old one to keep it. */
  readonly port?: number;
  /** More command-line options, e.g. ['--grace', '2']. */
  readonly args?: readonly string[];
  /** More environment, e.g. NODE_OPTIONS for an injected fault. */
  readonly env?: Record<string, string>;
  /** A command that execs `node ...` in the end (e.g. unshare), prefixed to the server's command line. */
  readonly launcher?: readonly string[];
}

export class ServerProcess {
  /** Every line the server printed on stdout or stderr, in order. */
  readonly lines: string[] = [];
  readonly exited: Promise<Exit>;
  private exit: Exit | null = null;
  private readonly lineWaiters = new Set<() => void>();

  private constructor(
    readonly model: ServerModelName,
    readonly root: string,
    readonly child: ChildProcess,
  ) {
    let pending = { stdout: '', stderr: '' };
    const onChunk = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = pending[stream] + chunk.toString('utf8');
      const parts = text.split('\n');
      pending = { ...pending, [stream]: parts.pop() ?? '' };
      this.lines.push(...parts);
      for (const wake of [...this.lineWaiters]) wake();
    };
    child.stdout?.on('data', onChunk('stdout'));
    child.stderr?.on('data', onChunk('stderr'));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const wake of [...this.lineWaiters]) wake();
        resolve(this.exit);
      });
    });
  }

  static async start(model: ServerModelName, options: ServerProcessOptions): Promise<ServerProcess> {
    const args = [BIN, 'server', model, '--host', '127.0.0.1', '--port', String(options.port ?? 0), '--root', options.root, ...(options.args ?? [])];
    const [command, ...prefix] = [...(options.launcher ?? []), process.execPath];
    const child = spawn(command ?? process.execPath, [...prefix, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(options.env) });
    const server = new ServerProcess(model, options.root, child);
    try {
      const line = await server.waitForLine(/listening on \S+:\d+/, START_TIMEOUT_MS);
      server.port = Number(/listening on \S+:(\d+)/.exec(line)?.[1]);
    } catch (error) {
      child.kill('SIGKILL');
      throw new Error(`${model} server did not start: ${(error as Error).message}\n${server.lines.join('\n')}`);
    }
    return server;
  }

  port = 0;

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get hasExited(): boolean {
    return this.exit !== null;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exit === null) this.child.kill(signal);
  }

  /** SIGKILL and wait for the process to be gone. */
  async crash(): Promise<Exit> {
    this.kill('SIGKILL');
    return this.exited;
  }

  /** The exit, or a rejection if the process is still running after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${this.model} server (pid ${this.pid}) still running after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Graceful stop (SIGTERM), then SIGKILL if it is not gone in time. */
  async stop(timeoutMs = 15_000): Promise<Exit> {
    this.kill('SIGTERM');
    try {
      return await this.waitExit(timeoutMs);
    } catch {
      return this.crash();
    }
  }

  /** The first line (already printed or to come) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.lines.find((l) => pattern.test(l));
        if (line !== undefined) done(() => resolve(line));
        else if (this.exit !== null) done(() => reject(new Error(`exited (${this.exit?.code ?? this.exit?.signal}) before printing ${pattern}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`))), timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.lineWaiters.delete(check);
        settle();
      };
      this.lineWaiters.add(check);
      check();
    });
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same choices (the timing of concurrent clients still varies). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** `size` deterministic bytes from `random` (a PRNG), fast enough for megabytes. */
export function randomBytesFrom(random: () => number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (; at + 4 <= size; at += 4) out.writeUInt32LE(Math.floor(random() * 4294967296), at);
  for (; at < size; at++) out[at] = Math.floor(random() * 256);
  return out;
}
