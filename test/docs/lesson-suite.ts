/**
 * Runs the lab guides' sections (see lessons.test.ts for what and why). The
 * sections are shared out between two test files, lessons.test.ts and
 * lessons-part2.test.ts, so that tap runs the two halves as two jobs (about
 * 50 s each on a quiet 2-core machine).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { GUIDE_PORT, parseLesson, rewriteCommand, RewriteError, rewritePhrase, type Step } from './lesson-script.js';
import { closedPort } from '../clients/run-cli.js';
import { requireSystemTools, type SystemTool } from '../helpers/system-tool.js';
import { killAndDescribe, matcher, runForeground, sleep, Terminal, workingIn } from './lesson-runner.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const GUIDES = [
  { name: 'LESSON.md', file: path.join(REPO, 'docs/LESSON.md') },
  { name: 'LESSON.ru.md', file: path.join(REPO, 'docs/LESSON.ru.md') },
] as const;

/**
 * The programs npm cannot bring that running the guides needs: `script` gives
 * each of a section's terminals its tty, and the rest are what the guides'
 * commands run besides npm, npx and the shell's own (lessons.test.ts checks
 * the guides run nothing else). Where one is missing the guides' sections skip,
 * naming it, and fail in CI (test/helpers/system-tool.ts).
 */
export const GUIDE_TOOLS: readonly SystemTool[] = ['script', 'nc', 'ss', 'pkill', 'pgrep', 'ps', 'seq', 'sha256sum', 'python3'];

/** What every machine with Node has: the shell's builtins the guides use, and npm itself. */
export const ALWAYS_THERE: readonly string[] = ['npx', 'npm', 'printf', 'echo', 'cd', 'ls', 'cat', 'rm'];

export interface Package {
  version: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
}
export const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as Package;

interface Check {
  readonly ok: boolean;
  readonly name: string;
  readonly diag?: Record<string, unknown>;
}

export function tail(text: string, chars = 3000): string {
  return text.length <= chars ? text : `…${text.slice(-chars)}`;
}

/** A free port that is not the guide's own 8020. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await closedPort();
    if (port !== GUIDE_PORT) return port;
  }
}

/** Names and modification times of a repository folder the guides must never change in a test. */
export function snapshot(dir: string): string {
  try {
    return fs
      .readdirSync(dir)
      .sort()
      .map((name) => `${name} ${fs.statSync(path.join(dir, name)).mtimeMs}`)
      .join('\n');
  } catch {
    return '(absent)';
  }
}

export function loadGuide(file: string, name: string): Step[] {
  return parseLesson(fs.readFileSync(file, 'utf8'), name);
}

// ---------------------------------------------------------------------------
// Running the guides, section by section

/**
 * A `## ` section is self-contained (its servers are stopped at its end), so the
 * sections run at the same time, each with its own port, directory and
 * terminals. A section whose script (every command and annotation, typed text
 * and stdin included) is the same byte for byte in both guides is run once
 * for both: running it again would start exactly the same processes with
 * exactly the same input. Sections that differ are run once per guide.
 */
interface SectionRun {
  readonly title: string;
  readonly steps: readonly Step[];
  /** For each guide holding this script: its name and the line of every step. */
  readonly places: { readonly guide: string; readonly lines: readonly number[] }[];
}

function splitSections(steps: readonly Step[]): { title: string; steps: Step[] }[] {
  const sections: { title: string; steps: Step[] }[] = [{ title: '(introduction)', steps: [] }];
  for (const step of steps) {
    if (step.kind === 'section') sections.push({ title: step.title, steps: [] });
    else sections.at(-1)!.steps.push(step);
  }
  return sections.filter((section) => section.steps.length > 0);
}

function scriptKey(steps: readonly Step[]): string {
  return JSON.stringify(steps.map((step) => ({ ...step, line: 0, section: '' })));
}

function planRuns(): SectionRun[] {
  const runs = new Map<string, SectionRun>();
  for (const guide of GUIDES) {
    let steps: Step[];
    try {
      steps = loadGuide(guide.file, guide.name);
    } catch {
      continue; // reported by the static test
    }
    for (const [index, section] of splitSections(steps).entries()) {
      const key = `${index} ${scriptKey(section.steps)}`;
      const place = { guide: guide.name, lines: section.steps.map((step) => step.line) };
      const existing = runs.get(key);
      if (existing !== undefined) existing.places.push(place);
      else runs.set(key, { title: section.title, steps: section.steps, places: [place] });
    }
  }
  return [...runs.values()];
}

/** LESSON_TRANSCRIPT=DIR writes what every command printed into DIR/<guide>.txt: the way to refresh a guide's quoted output. */
const TRANSCRIPT_DIR = process.env.LESSON_TRANSCRIPT;

/** Sections of one file run at the same time (the two files may run at the same time too). */
const SECTIONS_AT_ONCE = 2;

/**
 * A rough duration in seconds on a busy two-core machine, to deal the sections
 * out evenly and to start the longest first (a long one started last would
 * decide the total): the bench, a demo, a load, a terminal's program, any
 * other socklab command, anything else; plus any idle timeout to wait out.
 */
function weight(run: SectionRun): number {
  return run.steps.reduce((sum, step) => {
    if (step.kind !== 'command') return sum;
    const c = step.command;
    const idle = Number(/--idle-timeout (\d+)/.exec(c)?.[1] ?? 0);
    const cost = /\bnpm run bench\b/.test(c) ? 50 : /\bdemo\b/.test(c) ? 10 : /\bsocklab load\b/.test(c) ? 6 : step.terminal !== null ? 3 : /\bsocklab\b/.test(c) ? 2 : 0.5;
    return sum + cost + idle;
  }, 0);
}

/** One section, bounded: past this it is stopped, and that is a failure. */
const SECTION_LIMIT_MS = 90_000;
/**
 * All sections together: none goes on past this. About twice what they take on a quiet machine, so
 * that a busy one does not fail them; each file's tap timeout (FILE_LIMIT_MS) leaves room after it.
 */
const ALL_SECTIONS_LIMIT_MS = 100_000;
/** For t.setTimeout in the two test files: the sections' limit plus the static checks and clean-up. */
export const FILE_LIMIT_MS = 150_000;
/** One foreground command (the bench's chat scenario is the longest). */
const COMMAND_LIMIT_MS = 60_000;
/** A `see` or an expected phrase in a terminal. */
const SEE_LIMIT_MS = 40_000;
/** A terminal's program after Ctrl-C, or an `exits`. */
const END_LIMIT_MS = 20_000;

interface SectionResult {
  readonly checks: Check[];
  readonly transcript: string;
  readonly seconds: number;
}

async function runSection(run: SectionRun, root: string, index: number, allDeadline: number): Promise<SectionResult> {
  const checks: Check[] = [];
  const check = (ok: boolean, name: string, diag?: Record<string, unknown>) => checks.push({ ok, name, ...(diag === undefined ? {} : { diag }) });
  const workDir = fs.mkdtempSync(path.join(root, `section-${index}-`));
  const port = await freePort();
  const terminals = new Map<number, Terminal>();
  const began = performance.now();
  const deadline = Math.min(began + SECTION_LIMIT_MS, allDeadline);
  const remaining = () => Math.max(0, deadline - performance.now());
  /** "LESSON.md:92" or "LESSON.md:92, LESSON.ru.md:95". */
  const where = (i: number) => run.places.map((p) => `${p.guide}:${p.lines[i]}`).join(', ');
  const transcript: string[] = [];
  const record = (origin: string, what: string, output: string) =>
    transcript.push(
      `----- ${origin} (at ${((performance.now() - began) / 1000).toFixed(1)} s) ${what}\n${output.replaceAll(workDir, '.').replaceAll(String(port), String(GUIDE_PORT))}`,
    );
  const running = () => [...terminals.values()].filter((term) => !term.hasEnded);
  const shown = (command: string) => command.replaceAll(workDir, '.').replaceAll(`${REPO}/`, '');

  async function ended(term: Terminal, how: string): Promise<void> {
    record(term.origin, `terminal ${term.number}: ${shown(term.command)}`, term.text);
    const left = await term.leftovers();
    check(left.length === 0, `${term.origin} terminal ${term.number}: nothing left running ${how}`, { left });
  }

  /** Ctrl-C in every terminal still running, as a student closes them at the end of a section. */
  async function stopTerminals(): Promise<void> {
    for (const term of running()) term.ctrlC();
    // One bound for all of them: they were all told at once.
    const until = performance.now() + Math.min(END_LIMIT_MS, remaining() + 5000);
    for (const term of terminals.values()) {
      const exit = await term.waitEnd(Math.max(0, until - performance.now()));
      if (exit === null) {
        const left = term.kill();
        check(false, `${term.origin} terminal ${term.number} ends after Ctrl-C at the end of the section`, { left, output: tail(term.text) });
        continue;
      }
      if (term.isServer) {
        check(exit.code === 0, `${term.origin} terminal ${term.number}: the server stops cleanly (exit 0) after Ctrl-C`, { code: exit.code, output: tail(term.text) });
      }
      await ended(term, 'at the end of the section');
    }
    terminals.clear();
  }

  try {
    for (const [i, step] of run.steps.entries()) {
      if (remaining() === 0) {
        check(false, `${where(i)}: the section "${run.title}" ran within its time (${SECTION_LIMIT_MS / 1000} s, and all sections within ${ALL_SECTIONS_LIMIT_MS / 1000} s)`);
        break;
      }
      switch (step.kind) {
        case 'section':
          break; // sections were split before

        case 'command': {
          const label = `${where(i)} ${step.command}`;
          let command: string;
          try {
            command = rewriteCommand(step.command, { repo: REPO, bin: pkg.bin.socklab ?? '', scripts: pkg.scripts, port, workDir, ttys: running().map((term) => term.tty) }, step.testArgs);
          } catch (error) {
            check(false, `${label}: can be run`, { error: error instanceof RewriteError ? error.message : String(error) });
            break;
          }
          if (step.terminal !== null) {
            const existing = terminals.get(step.terminal);
            if (existing !== undefined && !existing.hasEnded) {
              check(false, `${label}: terminal ${step.terminal} is free`, { busyWith: shown(existing.command) });
              break;
            }
            if (existing !== undefined) await ended(existing, 'before the terminal was used again');
            // A server (socklab's, or an example's such as blocking_server.py) must stop cleanly on Ctrl-C.
            const term = new Terminal(step.terminal, command, workDir, where(i), /\bsocklab(\.js)? server\b|_server\.py\b/.test(command));
            terminals.set(step.terminal, term);
            try {
              await term.started();
            } catch (error) {
              check(false, `${label}: starts in terminal ${step.terminal}`, { error: String(error), command: shown(command) });
              break;
            }
            for (const phrase of step.expect) {
              const seen = await term.see(rewritePhrase(phrase, port), Math.min(SEE_LIMIT_MS, remaining()));
              check(seen, `${label} (terminal ${step.terminal}) shows "${phrase}"`, { command: shown(command), output: tail(term.text) });
            }
            if (step.exit !== 0) check(false, `${label}: <!-- exit --> is for foreground commands; a terminal's command ends with <!-- exits N: CODE -->`);
            break;
          }
          const result = await runForeground(command, { cwd: workDir, stdin: step.stdin, limitMs: Math.min(COMMAND_LIMIT_MS, remaining()) });
          record(where(i), `${step.command}  (exit ${result.code ?? result.signal}, ${(result.ms / 1000).toFixed(1)} s)`, result.output);
          const diag = { command: shown(command), code: result.code, signal: result.signal, seconds: +(result.ms / 1000).toFixed(1), output: tail(result.output) };
          check(!result.timedOut && result.code === step.exit, `${label}: ends with exit code ${step.exit}`, diag);
          for (const phrase of step.expect) {
            check(matcher(rewritePhrase(phrase, port))(result.output) !== null, `${label}: shows "${phrase}"`, diag);
          }
          check(result.leftovers.length === 0, `${label}: leaves nothing running`, { ...diag, left: result.leftovers });
          break;
        }

        case 'type':
        case 'see':
        case 'ctrl-c':
        case 'exits': {
          const term = terminals.get(step.terminal);
          if (term === undefined) {
            check(false, `${where(i)} ${step.kind} ${step.terminal}: terminal ${step.terminal} runs a command of this section`);
            break;
          }
          if (step.kind === 'type') {
            check(!term.hasEnded, `${where(i)} type into terminal ${step.terminal}: its program still runs`, { output: tail(term.text) });
            await term.type(step.text);
          } else if (step.kind === 'see') {
            const seen = await term.see(rewritePhrase(step.phrase, port), Math.min(SEE_LIMIT_MS, remaining()));
            check(seen, `${where(i)} terminal ${step.terminal} shows "${step.phrase}"`, { command: shown(term.command), output: tail(term.text) });
          } else if (step.kind === 'ctrl-c') {
            term.ctrlC();
          } else {
            const exit = await term.waitEnd(Math.min(END_LIMIT_MS, remaining()));
            check(exit !== null && exit.code === step.code, `${where(i)} terminal ${step.terminal} ends with exit code ${step.code}`, {
              code: exit?.code ?? 'still running',
              command: shown(term.command),
              output: tail(term.text),
            });
            if (exit === null) term.kill();
            else await ended(term, 'when it ended');
            terminals.delete(step.terminal);
          }
          break;
        }
      }
    }
    await stopTerminals();
  } finally {
    for (const term of terminals.values()) term.kill();
    // Anything still working in the section's directory escaped every other check.
    const strays = killAndDescribe(workingIn(workDir));
    check(strays.length === 0, `${where(0)}…: the section "${run.title}" left no process behind`, { strays });
  }
  return { checks, transcript: transcript.join('\n'), seconds: (performance.now() - began) / 1000 };
}


/** Deals the section runs out to `shards` files, heaviest first to the lightest file, and picks this file's. */
function shardOf(runs: readonly SectionRun[], shard: number, shards: number): SectionRun[] {
  const loads = Array.from({ length: shards }, () => 0);
  const mine: SectionRun[] = [];
  for (const run of [...runs].sort((a, b) => weight(b) - weight(a))) {
    const lightest = loads.indexOf(Math.min(...loads));
    loads[lightest]! += weight(run);
    if (lightest === shard) mine.push(run);
  }
  return mine;
}

/** Runs this file's share of the sections: part `shard` (0-based) of `shards`. */
export async function runGuideSections(t: Test, shard: number, shards: number): Promise<void> {
  if (!requireSystemTools(t, ...GUIDE_TOOLS)) return;
  const began = performance.now();
  // LESSON_SECTION=TEXT runs only the sections whose title holds TEXT (while editing one).
  const only = process.env.LESSON_SECTION;
  const runs = shardOf(planRuns(), shard, shards).filter((run) => only === undefined || run.title.includes(only));
  if (only === undefined) t.ok(runs.length > 0, 'there are sections to run');
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-lessons-')));
  const repoStorage = snapshot(path.join(REPO, 'storage'));
  const repoResults = snapshot(path.join(REPO, 'results'));
  const results: SectionResult[] = [];
  try {
    // The heaviest sections start first; at most SECTIONS_AT_ONCE run together, so
    // that their waits (think times, timeouts) overlap without the machine's two
    // cores being swamped, which would only make every step slower.
    const order = [...runs.keys()]; // shardOf dealt them out heaviest first
    const allDeadline = performance.now() + ALL_SECTIONS_LIMIT_MS;
    const worker = async () => {
      for (let index = order.shift(); index !== undefined; index = order.shift()) results[index] = await runSection(runs[index]!, root, index, allDeadline);
    };
    await Promise.all(Array.from({ length: SECTIONS_AT_ONCE }, worker));
  } finally {
    await sleep(100);
    fs.rmSync(root, { recursive: true, force: true });
  }
  for (const [index, run] of runs.entries()) {
    const result = results[index]!;
    const whose = run.places.length > 1 ? `${run.places.map((p) => p.guide).join(' and ')}: the same script, run once` : run.places[0]!.guide;
    await t.test(`${run.title} (${whose}; ${result.seconds.toFixed(1)} s)`, async (t) => {
      for (const c of result.checks) t.ok(c.ok, c.name, c.diag ?? {});
    });
  }
  t.equal(snapshot(path.join(REPO, 'storage')), repoStorage, "the repository's storage/ was not touched");
  t.equal(snapshot(path.join(REPO, 'results')), repoResults, "the repository's results/ was not touched");
  if (TRANSCRIPT_DIR !== undefined) {
    fs.mkdirSync(TRANSCRIPT_DIR, { recursive: true });
    for (const guide of GUIDES) {
      const text = runs.flatMap((run, index) => (run.places.some((p) => p.guide === guide.name) ? [results[index]!.transcript] : [])).join('\n');
      fs.writeFileSync(path.join(TRANSCRIPT_DIR, `${guide.name}.part${shard + 1}.txt`), `${text}\n`);
    }
  }
  const cpu = process.cpuUsage();
  t.comment(
    `${runs.length} section runs in ${((performance.now() - began) / 1000).toFixed(1)} s; ` +
      `this test process used ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s of CPU`,
  );
}
