/**
 * Reads a lab guide (docs/LESSON.md, docs/LESSON.ru.md) as a script the test
 * can run, and rewrites its commands for a test run. The convention is
 * described for guide writers in docs/README.md; in short:
 *
 * - Every line of a fenced ```sh block is one command, run for real, in order.
 *   Full-line `#` comments are allowed (and ignored); nothing in a ```sh block
 *   is ever skipped. Other fences (```text for output) are not run.
 * - HTML comments right before a ```sh block (blank lines allowed, prose not)
 *   say how its command runs:
 *     <!-- terminal: N -->   run it in terminal N (a pseudo-terminal) and go on
 *                            while it runs; needed for anything that does not end
 *                            by itself (a server, a chat that is typed into later)
 *     <!-- stdin: TEXT -->   feed TEXT (`\n` = newline) to a foreground command's
 *                            stdin, then end it
 *     <!-- expect: PHRASE --> its output contains PHRASE (a terminal: waits for it);
 *                            `/regex/` for a pattern; may be repeated
 *     <!-- exit: CODE -->    the exit code it must end with (default 0)
 *     <!-- test-args: ARGS --> appended in the test only (allowed on `npm run bench`
 *                            only, and only with --quick)
 * - HTML comments elsewhere are what the student does in a running terminal:
 *     <!-- type N: TEXT -->  type TEXT and Enter in terminal N
 *     <!-- see N: PHRASE --> wait until terminal N shows PHRASE (after its last match)
 *     <!-- ctrl-c N -->      press Ctrl-C in terminal N
 *     <!-- exits N: CODE --> wait until terminal N's command has ended, with CODE
 * - A `## ` heading ends a section: every terminal still running gets Ctrl-C and
 *   must end (a server with exit code 0).
 */

export type Step =
  | {
      readonly kind: 'command';
      readonly line: number;
      readonly section: string;
      readonly command: string;
      readonly terminal: number | null;
      readonly stdin: string | null;
      readonly expect: readonly string[];
      readonly exit: number;
      readonly testArgs: string | null;
    }
  | { readonly kind: 'type'; readonly line: number; readonly terminal: number; readonly text: string }
  | { readonly kind: 'see'; readonly line: number; readonly terminal: number; readonly phrase: string }
  | { readonly kind: 'ctrl-c'; readonly line: number; readonly terminal: number }
  | { readonly kind: 'exits'; readonly line: number; readonly terminal: number; readonly code: number }
  | { readonly kind: 'section'; readonly line: number; readonly title: string };

export class LessonSyntaxError extends Error {
  override readonly name = 'LessonSyntaxError';
}

const ATTACHED = new Set(['terminal', 'stdin', 'expect', 'exit', 'test-args']);
const ACTIONS = new Set(['type', 'see', 'ctrl-c', 'exits']);

/** `<!-- key: value -->`, `<!-- key N: value -->` or `<!-- key N -->`. */
const ANNOTATION = /^<!--\s*([a-z-]+)(?:\s+(\d+))?\s*(?::\s?(.*?))?\s*-->$/;

/** `\n` → newline, `\t` → tab, `\\` → backslash (annotations are one line each). */
export function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

interface Pending {
  terminal: number | null;
  stdin: string | null;
  expect: string[];
  exit: number;
  testArgs: string | null;
  line: number;
}

function emptyPending(): Pending {
  return { terminal: null, stdin: null, expect: [], exit: 0, testArgs: null, line: 0 };
}

function hasPending(p: Pending): boolean {
  return p.line !== 0;
}

export function parseLesson(markdown: string, file = 'guide'): Step[] {
  const steps: Step[] = [];
  const lines = markdown.split('\n');
  let section = '(before the first section)';
  let pending = emptyPending();
  const fail = (line: number, message: string): never => {
    throw new LessonSyntaxError(`${file}:${line}: ${message}`);
  };

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const text = lines[i]!;
    const trimmed = text.trim();
    const fence = /^```(\S*)\s*$/.exec(trimmed);
    if (fence !== null) {
      const lang = fence[1] ?? '';
      const body: { text: string; line: number }[] = [];
      let j = i + 1;
      for (; j < lines.length && !/^```\s*$/.test(lines[j]!.trim()); j++) body.push({ text: lines[j]!, line: j + 1 });
      if (j >= lines.length) fail(lineNo, 'a fenced block is never closed');
      i = j;
      if (lang !== 'sh') {
        if (hasPending(pending)) fail(pending.line, `annotations before a \`\`\`${lang} block: they belong right before a \`\`\`sh block`);
        continue;
      }
      const commands = body.filter((b) => b.text.trim() !== '' && !b.text.trim().startsWith('#'));
      if (commands.length === 0) fail(lineNo, 'an empty ```sh block');
      if ((pending.terminal !== null || pending.stdin !== null) && commands.length !== 1) {
        fail(lineNo, 'a block run in a terminal or given stdin must hold exactly one command');
      }
      for (const c of commands) {
        if (/\\$/.test(c.text)) fail(c.line, 'no line continuations: one command per line');
        steps.push({
          kind: 'command',
          line: c.line,
          section,
          command: c.text.trim(),
          terminal: pending.terminal,
          stdin: pending.stdin,
          expect: pending.expect,
          exit: pending.exit,
          testArgs: pending.testArgs,
        });
      }
      pending = emptyPending();
      continue;
    }

    if (trimmed.startsWith('<!--') && !trimmed.includes('-->')) {
      // A free comment over several lines (a note for editors): skipped whole.
      let j = i + 1;
      while (j < lines.length && !lines[j]!.includes('-->')) j++;
      if (j >= lines.length) fail(lineNo, 'an HTML comment is never closed');
      i = j;
      continue;
    }
    if (trimmed.startsWith('<!--')) {
      const match = ANNOTATION.exec(trimmed);
      if (match === null) {
        // Free comments (notes to translators, etc.) are fine, but must not look like a misspelled annotation.
        const word = /^<!--\s*([a-z-]+)/.exec(trimmed)?.[1] ?? '';
        if (ATTACHED.has(word) || ACTIONS.has(word) || /^<!--\s*[a-z-]+(\s+\d+)?\s*:/.test(trimmed)) fail(lineNo, `not an annotation: ${trimmed}`);
        continue;
      }
      const key = match[1]!;
      const target = match[2] === undefined ? null : Number(match[2]);
      const value = match[3] ?? null;
      if (ATTACHED.has(key)) {
        if (target !== null) fail(lineNo, `<!-- ${key}: ... --> takes no terminal number`);
        if (value === null || value === '') fail(lineNo, `<!-- ${key}: ... --> needs a value`);
        const v = value!;
        if (!hasPending(pending)) pending.line = lineNo;
        switch (key) {
          case 'terminal':
            if (!/^\d+$/.test(v)) fail(lineNo, 'terminal: a number');
            pending.terminal = Number(v);
            break;
          case 'stdin':
            pending.stdin = unescape(v);
            break;
          case 'expect':
            pending.expect.push(v);
            break;
          case 'exit':
            if (!/^\d+$/.test(v)) fail(lineNo, 'exit: a number');
            pending.exit = Number(v);
            break;
          case 'test-args':
            pending.testArgs = v;
            break;
        }
        continue;
      }
      if (ACTIONS.has(key)) {
        if (hasPending(pending)) fail(pending.line, 'annotations for a ```sh block are followed by something else');
        if (target === null) fail(lineNo, `<!-- ${key} N ... --> needs a terminal number`);
        const n = target!;
        switch (key) {
          case 'type':
            if (value === null) fail(lineNo, 'type N: TEXT');
            steps.push({ kind: 'type', line: lineNo, terminal: n, text: unescape(value!) });
            break;
          case 'see':
            if (value === null || value === '') fail(lineNo, 'see N: PHRASE');
            steps.push({ kind: 'see', line: lineNo, terminal: n, phrase: value! });
            break;
          case 'ctrl-c':
            if (value !== null) fail(lineNo, 'ctrl-c N takes no value');
            steps.push({ kind: 'ctrl-c', line: lineNo, terminal: n });
            break;
          case 'exits':
            if (value === null || !/^\d+$/.test(value)) fail(lineNo, 'exits N: CODE');
            steps.push({ kind: 'exits', line: lineNo, terminal: n, code: Number(value) });
            break;
        }
        continue;
      }
      fail(lineNo, `unknown annotation "${key}"`);
    }

    if (trimmed === '') continue;
    if (hasPending(pending)) fail(pending.line, 'annotations for a ```sh block are followed by prose, not by the block');
    const heading = /^##\s+(.*)$/.exec(text);
    if (heading !== null) {
      section = heading[1]!.trim();
      steps.push({ kind: 'section', line: lineNo, title: section });
    }
  }
  if (hasPending(pending)) fail(pending.line, 'annotations at the end of the guide, with no ```sh block after them');
  return steps;
}

/** Placeholders a student would have to replace: such a command cannot run, so a guide may not have one in a ```sh block. */
export function placeholderIn(command: string): string | null {
  const match = /<[A-Za-z][\w-]*>|\b(?:NAME|FILE|PID|PORT|HOST|PATH_TO)\b|\.\.\.|…/.exec(command);
  return match === null ? null : match[0];
}

/**
 * The programs a command line runs: the first word of each pipeline stage,
 * list member and command substitution, after any `NAME=value` assignments.
 * Quoted text is left out first, so a `|` or `;` inside quotes starts nothing.
 */
export function programsIn(command: string): string[] {
  const unquoted = command.replace(/'[^']*'|"(?:[^"\\$]|\\.)*"/g, "''");
  const programs = unquoted
    .split(/\|\|?|&&|;|\$\(|\n|`/)
    .map((stage) => stage.replace(/^[\s({]*/, '').split(/\s+/).find((word) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) ?? '')
    .filter((word) => word !== '' && !/^[)}]/.test(word));
  return [...new Set(programs)];
}

/**
 * Language-neutral form of a command, to compare the two guides: whitespace
 * collapsed, and quoted text that is written in a language other than English
 * (data typed into a chat, say) reduced to a marker. Everything else must match.
 */
export function normalizeCommand(command: string): string {
  return command
    .replace(/'[^']*'|"[^"]*"/g, (quoted) => (/[^\x00-\x7f]/.test(quoted) && /\p{L}/u.test(quoted.replace(/[\x00-\x7f]/g, '')) ? '<text>' : quoted))
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * What must be the same in both guides: every command and every annotation in
 * order, with typed text and stdin (which may be translated) left out.
 */
export function skeleton(steps: readonly Step[]): string[] {
  return steps.flatMap((step): string[] => {
    switch (step.kind) {
      case 'section':
        return ['## section'];
      case 'command':
        return [
          [
            step.terminal === null ? 'run' : `terminal ${step.terminal}`,
            normalizeCommand(step.command),
            step.stdin === null ? '' : '(stdin)',
            ...step.expect.map((e) => `expect ${e}`),
            step.exit === 0 ? '' : `exit ${step.exit}`,
            step.testArgs === null ? '' : `test-args ${step.testArgs}`,
          ]
            .filter((part) => part !== '')
            .join(' | '),
        ];
      case 'type':
        return [`type ${step.terminal}`];
      case 'see':
        return [`see ${step.terminal}: ${step.phrase}`];
      case 'ctrl-c':
        return [`ctrl-c ${step.terminal}`];
      case 'exits':
        return [`exits ${step.terminal}: ${step.code}`];
    }
  });
}

// ---------------------------------------------------------------------------
// Rewriting a guide's command for a test run

/** The port every guide uses (socklab's default). A test never binds it. */
export const GUIDE_PORT = 8020;

export interface RewriteContext {
  /** Absolute path of the repository. */
  readonly repo: string;
  /** package.json's `bin.socklab`, relative to the repository. */
  readonly bin: string;
  /** package.json's scripts. */
  readonly scripts: Readonly<Record<string, string>>;
  /** The free port this run uses instead of 8020. */
  readonly port: number;
  /** This run's temporary directory (also the commands' working directory). */
  readonly workDir: string;
  /** The pseudo-terminals of this run's terminals, e.g. ["pts/3"]. */
  readonly ttys: readonly string[];
}

/** Where a simple command ends: the first `|`, `;`, `&`, `>`, `<` or `)` outside quotes, or the end. */
export function simpleCommandEnd(text: string, from: number): number {
  let quote: string | null = null;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if ('|;&><)'.includes(c)) return i;
  }
  return text.length;
}

function shellQuote(text: string): string {
  return /^[\w./:=@%+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Inserts `extra` at the end of the simple command that starts at `start`, before any trailing spaces. */
function appendToSimpleCommand(text: string, start: number, extra: string): string {
  let end = simpleCommandEnd(text, start);
  while (end > start && /\s/.test(text[end - 1]!)) end--;
  return `${text.slice(0, end)} ${extra}${text.slice(end)}`;
}

export class RewriteError extends Error {
  override readonly name = 'RewriteError';
}

/**
 * The command as the test runs it. Every change is listed here, on purpose:
 *
 * 1. `npx socklab` → `node <repo>/<bin>`, the file package.json's "bin" names,
 *    which is what npx runs (one test checks `npx socklab --version` itself):
 *    npx costs about a second per call, and the guides have many commands.
 * 2. `npm run X [-- args]` → package.json's script X, run directly. A leading
 *    `npm run build && ` is dropped: `npm test` has just built dist/, and
 *    rebuilding it while other test files load it could hand them half-written
 *    files.
 * 3. Ports: every `8020` becomes this run's free port, and `socklab server`,
 *    `client`, `chat` and `check` get `--port` when they rely on the default 8020. Tests
 *    never bind 8020, where a student's or a developer's server may be running.
 * 4. Roots: `socklab server --root DIR` gets a directory inside this run's
 *    temporary directory, and `--root` is added when absent (the default
 *    ./storage is relative to the working directory, which is that temporary
 *    directory anyway). Tests never use the repository's ./storage.
 * 5. `npm run bench` gets `--out <workDir>/results/local`, where it writes by
 *    default relative to the repository: the test never writes into the
 *    repository at all. Relative paths like `results/local/latest.md` in
 *    later commands then find the run's files, since commands run in workDir.
 * 6. `pkill` and `pgrep` get `-t <this run's terminals>`: the English and the
 *    Russian guide run at the same time, and one must not signal the other's
 *    processes (nor anything else on the machine).
 * 7. `<!-- test-args: ... -->` is appended (npm run bench --quick only).
 * 8. A path under `examples/` (`python3 examples/python/blocking_server.py`)
 *    becomes the repository's: commands run in the temporary directory, where
 *    the student's command would find nothing.
 *
 * (What a guide says the student sees is rewritten the same way, by
 * rewritePhrase(): "listening on 127.0.0.1:8020" is looked for with the free port.)
 */
export function rewriteCommand(command: string, ctx: RewriteContext, testArgs: string | null = null): string {
  const binPath = shellQuote(`${ctx.repo}/${ctx.bin}`);
  let text = command;
  let isBench = false;

  // 2. npm run X [-- args]
  text = text.replace(/\bnpm run ([\w:-]+)(?: --(?= |$))?/g, (_, name: string) => {
    const script = ctx.scripts[name];
    if (script === undefined) throw new RewriteError(`package.json has no script "${name}" (the guide runs "npm run ${name}")`);
    if (name === 'bench') isBench = true;
    const body = script.replace(/^npm run build && /, '');
    if (/\bnpm run\b|&&|\|\||;/.test(body)) throw new RewriteError(`script "${name}" is "${script}": the test can only run a single command (after "npm run build &&")`);
    return body.replace(/(^|\s)(dist\/\S+)/g, (_m, space: string, file: string) => `${space}${shellQuote(`${ctx.repo}/${file}`)}`);
  });

  // 1. npx socklab
  text = text.replace(/\bnpx socklab\b/g, `node ${binPath}`);

  // 3. and 4.: per socklab invocation
  const invocation = new RegExp(`node ${binPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'g');
  const starts = [...text.matchAll(invocation)].map((m) => m.index ?? 0).reverse();
  for (const start of starts) {
    const end = simpleCommandEnd(text, start);
    const words = text.slice(start, end).split(/\s+/).slice(2);
    const sub = words[0];
    const own = text.slice(start, end);
    if ((sub === 'server' || sub === 'client' || sub === 'chat' || sub === 'check') && !/--port\b/.test(own)) text = appendToSimpleCommand(text, start, `--port ${GUIDE_PORT}`);
    if (sub === 'server') {
      const seg = text.slice(start, simpleCommandEnd(text, start));
      const rootMatch = /--root[ =](\S+)/.exec(seg);
      if (rootMatch === null) {
        text = appendToSimpleCommand(text, start, `--root ${shellQuote(`${ctx.workDir}/storage`)}`);
      } else {
        const dir = `${ctx.workDir}/root-${rootMatch[1]!.replace(/[^\w.-]+/g, '_').replace(/^[_.]+/, '')}`;
        const at = start + rootMatch.index;
        text = `${text.slice(0, at)}--root ${shellQuote(dir)}${text.slice(at + rootMatch[0].length)}`;
      }
    }
  }
  text = text.replace(new RegExp(`\\b${GUIDE_PORT}\\b`, 'g'), String(ctx.port));

  // 5. bench output
  if (isBench) {
    if (/--out\b/.test(text)) throw new RewriteError('the guide gives npm run bench an --out: the test cannot keep it away from the repository');
    const at = text.indexOf(`${ctx.repo}/dist/bench`);
    text = appendToSimpleCommand(text, Math.max(0, text.lastIndexOf('node', at)), `--out ${shellQuote(`${ctx.workDir}/results/local`)}`);
  }

  // 6. pkill / pgrep
  const ttys = ctx.ttys.length > 0 ? ctx.ttys.join(',') : 'pts/999999';
  text = text.replace(/(^|[\s($`;|&])(pkill|pgrep)(?=\s)/g, (_, before: string, tool: string) => `${before}${tool} -t ${ttys}`);

  // 8. the repository's examples
  text = text.replace(/(^|\s)(examples\/\S+)/g, (_m, space: string, file: string) => `${space}${shellQuote(`${ctx.repo}/${file}`)}`);

  // 7. test-args
  if (testArgs !== null) {
    if (!isBench) throw new RewriteError('<!-- test-args --> is only allowed on "npm run bench"');
    if (!/^(--quick)( |$)/.test(testArgs.trim()) || /--(scenario|servers|out)\b/.test(testArgs)) {
      throw new RewriteError(`<!-- test-args: ${testArgs} -->: only --quick (plus --iterations/--warmup) may be added`);
    }
    const at = text.indexOf(`${ctx.repo}/dist/bench`);
    text = appendToSimpleCommand(text, Math.max(0, text.lastIndexOf('node', at)), testArgs.trim());
  }
  return text;
}

/** An expected phrase, with the guide's port replaced like in the commands. */
export function rewritePhrase(phrase: string, port: number): string {
  return phrase.replace(new RegExp(`\\b${GUIDE_PORT}\\b`, 'g'), String(port));
}
