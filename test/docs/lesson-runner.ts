/**
 * Runs a lab guide's steps (lesson-script.ts) for real: foreground commands
 * through bash with pipes, terminals through `script` (util-linux) so that the
 * program sees a real terminal, as the student's does: prompts, progress
 * lines, Ctrl-C as a key that the terminal turns into SIGINT.
 *
 * Every process is tracked by its session: a foreground command is started in
 * a session of its own (detached), a terminal's shell in one that `script`
 * creates. Whatever is left in those sessions when a command or terminal has
 * ended is a leftover: reported, then killed. Nothing outlives a run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { childEnv } from '../helpers/child-env.js';

/**
 * The guides say `npx socklab`, which the test runs as `node …/socklab.js`
 * (lesson-script.ts); socklab's own hints must still read as the student
 * sees them, so it is told what the student typed (bin/invocation.ts).
 */
const GUIDE_ENV = { SOCKLAB_COMMAND: 'npx socklab' };

export const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b[=>78]/g;
/** One whole escape sequence at the start of a string (ANSI's alternatives, anchored). */
const ANSI_AT_START = new RegExp(`^(?:${ANSI.source})`);

/** Terminal output as text: escape sequences and carriage returns dropped. */
export function plain(raw: string): string {
  return raw.replace(ANSI, '').replace(/\r/g, '');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `PHRASE` or `/regex/flags`. */
export function matcher(phrase: string): (text: string) => { index: number; length: number } | null {
  const regex = /^\/(.+)\/([a-z]*)$/.exec(phrase);
  if (regex !== null) {
    const re = new RegExp(regex[1]!, regex[2]!.replace('g', ''));
    return (text) => {
      const m = re.exec(text);
      return m === null ? null : { index: m.index, length: m[0].length };
    };
  }
  return (text) => {
    const index = text.indexOf(phrase);
    return index < 0 ? null : { index, length: phrase.length };
  };
}

// ---------------------------------------------------------------------------
// Processes, by session

export interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly session: number;
  readonly cwd: string;
  readonly cmdline: string;
}

/** Every process on the machine with its session id (Linux /proc). */
export function processTable(): ProcEntry[] {
  const entries: ProcEntry[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue; // a zombie holds nothing and is reaped by its parent
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${name}/cwd`);
      } catch {
        // not ours to see
      }
      entries.push({ pid: Number(name), ppid: Number(fields[1]), session: Number(fields[3]), cwd, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return entries;
}

/** The processes of `table` whose pids are in `roots` or that descend from one of them. */
function withDescendants(table: readonly ProcEntry[], roots: Iterable<number>): ProcEntry[] {
  const ours = new Set(roots);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of table) {
      if (!ours.has(p.pid) && ours.has(p.ppid)) {
        ours.add(p.pid);
        grew = true;
      }
    }
  }
  return table.filter((p) => ours.has(p.pid));
}

/** The processes of these sessions, and their descendants (a program may start a session of its own). */
export function inSessions(sessions: ReadonlySet<number>): ProcEntry[] {
  const table = processTable().filter((p) => p.pid !== process.pid);
  return withDescendants(
    table,
    table.filter((p) => sessions.has(p.session)).map((p) => p.pid),
  );
}

/** Every process below `pid` (not `pid` itself). */
export function descendantsOf(pid: number): ProcEntry[] {
  return withDescendants(processTable(), [pid]).filter((p) => p.pid !== pid);
}

/** Every process working in `dir` (the run's commands all start there): the last sweep of a run. */
export function workingIn(dir: string): ProcEntry[] {
  return processTable().filter((p) => p.pid !== process.pid && (p.cwd === dir || p.cwd.startsWith(`${dir}/`)));
}

export function killAndDescribe(entries: readonly ProcEntry[]): string[] {
  killAll(entries);
  return entries.map((p) => `${p.pid} ${p.cmdline}`);
}

export function killAll(entries: readonly ProcEntry[]): void {
  for (const p of entries) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------
// Foreground commands

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly timedOut: boolean;
  /** Processes of the command still running after it ended (killed since). */
  readonly leftovers: readonly string[];
  readonly ms: number;
}

export async function runForeground(command: string, options: { cwd: string; stdin: string | null; limitMs: number }): Promise<CommandResult> {
  const began = performance.now();
  const child = spawn('/bin/bash', ['-c', command], { cwd: options.cwd, env: childEnv(GUIDE_ENV), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const session = child.pid ?? -1;
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => chunks.push(c));
  child.stdin.on('error', () => {});
  child.stdin.end(options.stdin ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killAll(inSessions(new Set([session])));
  }, options.limitMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (c, s) => resolve({ code: c, signal: s }));
    child.on('error', () => resolve({ code: null, signal: null }));
  });
  clearTimeout(timer);
  const left = await settle(new Set([session]));
  return { code, signal, output: plain(Buffer.concat(chunks).toString('utf8')), timedOut, leftovers: left, ms: performance.now() - began };
}

/** Gives processes of `sessions` a moment to finish exiting; whatever remains is killed and returned. */
async function settle(sessions: ReadonlySet<number>, graceMs = 1500): Promise<string[]> {
  const until = performance.now() + graceMs;
  let left = inSessions(sessions);
  while (left.length > 0 && performance.now() < until) {
    await sleep(50);
    left = inSessions(sessions);
  }
  return killAndDescribe(left);
}

// ---------------------------------------------------------------------------
// Terminals

export interface TerminalExit {
  /** The command's exit status as the terminal's shell saw it (128+n after signal n). */
  readonly code: number;
}

export class Terminal {
  /** What the terminal showed, as plain text (escape sequences dropped as they arrive). */
  private shown = '';
  /** The end of the output that may be the start of an escape sequence still arriving. */
  private pending = '';
  /** Where the next `see` starts looking, in the plain text. */
  private cursor = 0;
  readonly ended: Promise<TerminalExit>;
  private exitStatus: TerminalExit | null = null;
  private readonly child: ChildProcess;
  private readonly infoFile: string;
  private readonly statusFile: string;
  /** The shell's pid (its session id) and its pseudo-terminal, once known. */
  shellSession = -1;
  tty = '';
  readonly scriptSession: number;

  constructor(
    readonly number: number,
    readonly command: string,
    workDir: string,
    readonly origin: string,
    readonly isServer: boolean,
  ) {
    const stamp = `${number}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    this.infoFile = path.join(workDir, `.terminal-${stamp}.info`);
    this.statusFile = path.join(workDir, `.terminal-${stamp}.status`);
    // The command comes through the environment, so that it is not on the command
    // line of `script` or of the shell: `pkill -f` in a guide matches only the program.
    const wrapper =
      `echo $$ > ${this.infoFile}; tty >> ${this.infoFile}; stty cols 120 rows 40 2>/dev/null; ` +
      `eval "$LESSON_COMMAND"; echo $? > ${this.statusFile}`;
    this.child = spawn('script', ['-qfec', wrapper, '/dev/null'], {
      cwd: workDir,
      env: childEnv({ ...GUIDE_ENV, LESSON_COMMAND: command, SHELL: '/bin/bash', TERM: 'xterm-256color' }),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.scriptSession = this.child.pid ?? -1;
    const decoder = new TextDecoder();
    this.child.stdout?.on('data', (c: Buffer) => this.append(decoder.decode(c, { stream: true })));
    this.child.stderr?.on('data', (c: Buffer) => this.append(c.toString('utf8')));
    this.child.stdin?.on('error', () => {});
    this.ended = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        let status: number;
        try {
          status = Number(fs.readFileSync(this.statusFile, 'utf8').trim());
        } catch {
          // The shell itself was ended by a signal (Ctrl-C with a program that dies of it).
          status = code ?? 128 + (signal === null ? 0 : ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0);
        }
        this.exitStatus = { code: status };
        resolve(this.exitStatus);
      });
    });
  }

  /** Waits until the shell inside the terminal has said who it is (its session and tty). */
  async started(limitMs = 20_000): Promise<void> {
    const until = performance.now() + limitMs;
    while (performance.now() < until) {
      try {
        const [pid, tty] = fs.readFileSync(this.infoFile, 'utf8').split('\n');
        if (pid !== undefined && tty !== undefined && tty.startsWith('/dev/')) {
          this.shellSession = Number(pid);
          this.tty = tty.replace(/^\/dev\//, '');
          return;
        }
      } catch {
        // not yet
      }
      if (this.exitStatus !== null) throw new Error(`terminal ${this.number} ended before it started: ${this.text}`);
      await sleep(20);
    }
    throw new Error(`terminal ${this.number} did not start within ${limitMs} ms`);
  }

  private append(chunk: string): void {
    const text = this.pending + chunk;
    // An escape sequence cut in two by the chunking: keep its start until the rest comes.
    const esc = text.lastIndexOf('\x1b');
    let cut = text.length;
    if (esc >= 0 && text.length - esc < 64) {
      const rest = text.slice(esc);
      const match = ANSI_AT_START.exec(rest);
      if (match === null) cut = esc;
    }
    this.shown += plain(text.slice(0, cut));
    this.pending = text.slice(cut);
  }

  get text(): string {
    return this.shown;
  }

  get hasEnded(): boolean {
    return this.exitStatus !== null;
  }

  get sessions(): Set<number> {
    return new Set([this.scriptSession, this.shellSession].filter((s) => s > 0));
  }

  /** Waits until the terminal shows `phrase` after the last match; moves past it. */
  async see(phrase: string, limitMs: number): Promise<boolean> {
    const find = matcher(phrase);
    const until = performance.now() + limitMs;
    for (;;) {
      const text = this.text;
      const found = find(text.slice(this.cursor));
      if (found !== null) {
        this.cursor += found.index + found.length;
        return true;
      }
      if (performance.now() > until) return false;
      if (this.exitStatus !== null) {
        await sleep(100); // the last output may still be on its way
        return find(this.text.slice(this.cursor)) !== null;
      }
      await sleep(25);
    }
  }

  /** Types a line, as a student does, and moves past its echo. */
  async type(text: string): Promise<void> {
    this.child.stdin?.write(`${text}\r`);
    // The terminal (or the program's line editor) echoes what is typed; what the
    // program answers comes after it. A line nobody echoes (no echo mode) is fine too.
    const first = text.split('\n')[0] ?? '';
    if (first.trim() !== '') await this.see(first, 2000);
  }

  ctrlC(): void {
    this.child.stdin?.write('\x03');
  }

  async waitEnd(limitMs: number): Promise<TerminalExit | null> {
    return Promise.race([this.ended, sleep(limitMs).then(() => null)]);
  }

  /** Kills whatever runs in this terminal, the terminal too. Returns what was still running. */
  kill(): string[] {
    return killAndDescribe(inSessions(this.sessions));
  }

  /** After the terminal ended: what is still running in its sessions (killed). */
  leftovers(): Promise<string[]> {
    return settle(this.sessions);
  }
}
