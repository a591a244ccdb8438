/**
 * The lab guides (docs/LESSON.md, docs/LESSON.ru.md) cannot drift from the
 * software: every command in their ```sh blocks is run here, for real, in
 * order, against real servers, and what the guide says the student sees is
 * checked (the convention: docs/README.md and lesson-script.ts).
 *
 * The commands are run as written, with the changes listed in rewriteCommand()
 * and nothing else: in particular the port 8020 is replaced by a free port and
 * every server root lies in a fresh temporary directory (also the working
 * directory of every command), so this test never binds 8020, never touches the
 * repository's ./storage, and never writes the repository's results/.
 *
 * A guide runs section by section (`## ` headings; each is self-contained):
 * the sections are shared out between this file and lessons-part2.test.ts
 * (lesson-suite.ts), two at a time in each, each with its own free port,
 * directory and terminals. A section that is the same, command for command and annotation
 * for annotation, in both guides runs once for both; one that differs runs once
 * per guide. Every wait is bounded, and each file's run too (100 s); every process
 * a section starts is tracked, and one still running when it should not be is
 * killed, which counts as a failure.
 *
 * Running the sections needs programs npm cannot bring (GUIDE_TOOLS in
 * lesson-suite.ts: nc, ss, script...): where one is missing they skip, naming
 * it and its Debian package, and in CI that is a failure (.ci/run installs them).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { BenchReport } from '../../bench/report/report-markdown.js';
import { markdownTable, textTable } from '../../bench/report/report-table.js';
import { OUTPUT_COLUMNS } from '../../bin/cli-support.js';
import { LessonSyntaxError, placeholderIn, programsIn, skeleton, type Step } from './lesson-script.js';
import { ALWAYS_THERE, FILE_LIMIT_MS, GUIDE_TOOLS, GUIDES, loadGuide, pkg, REPO, runGuideSections } from './lesson-suite.js';

t.setTimeout(FILE_LIMIT_MS);

// ---------------------------------------------------------------------------
// Static checks: both guides parse, hold no placeholders, and say the same things.

t.test('the guides parse, hold only runnable commands, and run the same commands in the same order', async (t) => {
  const parsed = new Map<string, Step[]>();
  for (const guide of GUIDES) {
    try {
      parsed.set(guide.name, loadGuide(guide.file, guide.name));
      t.pass(`${guide.name} follows the annotation convention`);
    } catch (error) {
      t.fail(`${guide.name} follows the annotation convention`, { error: error instanceof LessonSyntaxError ? error.message : String(error) });
    }
  }
  for (const [name, steps] of parsed) {
    const commands = steps.filter((s) => s.kind === 'command');
    t.ok(commands.length >= 20, `${name} has commands to run (${commands.length})`);
    const placeholders = commands.flatMap((s) => {
      const found = placeholderIn(s.command);
      return found === null ? [] : [`${name}:${s.line} ${s.command} (${found})`];
    });
    t.same(placeholders, [], `${name}: no placeholders in runnable commands`);
    // A server that is expected to fail at once (a port already taken) may run in the foreground.
    const undeclared = commands.filter((s) => /\bsocklab server\b|\bnpm run server\b/.test(s.command) && s.terminal === null && s.exit === 0);
    t.same(
      undeclared.map((s) => `${name}:${s.line} ${s.command}`),
      [],
      `${name}: every server command runs in a terminal (<!-- terminal: N -->), since it does not end by itself`,
    );
  }
  const en = parsed.get('LESSON.md');
  const ru = parsed.get('LESSON.ru.md');
  if (en !== undefined && ru !== undefined) {
    const a = skeleton(en);
    const b = skeleton(ru);
    t.same(b, a, 'LESSON.ru.md has the same commands, annotations and sections as LESSON.md, in the same order');
  }
});

// ---------------------------------------------------------------------------
// Figures quoted in the guides and the README are the reference run's (results/latest.json).

const MiB = 1024 * 1024;

/** The memory sentence of each guide: workers with 8 threads, with 4, and async, in MiB. */
const MEMORY_SENTENCE: Record<(typeof GUIDES)[number]['name'], RegExp> = {
  'LESSON.md': /(\d+) MiB with 8 threads, (\d+) MiB with 4,\s+against (\d+) MiB for async/,
  'LESSON.ru.md': /(\d+) MiB с 8 потоками,\s+(\d+) MiB с 4, против (\d+) MiB у async/,
};

t.test('the figures the guides and the README quote are those of the reference run in results/', async (t) => {
  const reference = JSON.parse(fs.readFileSync(path.join(REPO, 'results', 'latest.json'), 'utf8')) as BenchReport;
  const chat = reference.scenarios.find((scenario) => scenario.scenario === 'chat');
  if (chat === undefined) {
    t.fail('the reference run has a chat scenario');
    return;
  }
  const rss = (label: string) => {
    const bytes = chat.targets.find((target) => target.label === label)?.resources?.peakRssBytes;
    return bytes === undefined ? 'none' : String(Math.round(bytes / MiB));
  };
  const table = textTable(chat, OUTPUT_COLUMNS);
  const duration = `${Math.round(reference.run.durationSeconds)} s`;
  for (const guide of GUIDES) {
    const text = fs.readFileSync(guide.file, 'utf8');
    t.ok(text.includes(table), `${guide.name}: the chat table it shows is the reference run's, as the bench prints it`);
    const memory = MEMORY_SENTENCE[guide.name].exec(text);
    t.same(memory?.slice(1), [rss('workers --threads 8'), rss('workers --threads 4'), rss('async')], `${guide.name}: peak memory of workers (8 and 4 threads) and async`);
    t.ok(text.includes(duration), `${guide.name}: the full bench's duration (${duration})`);
  }
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const markdownRows = markdownTable(chat).split('\n');
  const quotedRows = readme.split('\n').filter((line) => /^\| (sequential|workers --threads \d+|async|ceiling) \|/.test(line));
  t.ok(quotedRows.length >= 3, `the README quotes rows of the chat table (${quotedRows.length})`);
  for (const row of quotedRows) t.ok(markdownRows.includes(row), `README: "${row.slice(0, 40)}…" is a row of the reference run's chat table`);
  t.ok(readme.includes(duration), `README: the full bench's duration (${duration})`);
});

t.test('the guides run no program beyond those the test knows to need', async (t) => {
  for (const guide of GUIDES) {
    let steps: Step[];
    try {
      steps = loadGuide(guide.file, guide.name);
    } catch {
      continue; // the first test names the syntax error
    }
    const unknown = new Set<string>();
    for (const step of steps) {
      if (step.kind !== 'command') continue;
      for (const program of programsIn(step.command)) {
        if (!ALWAYS_THERE.includes(program) && !(GUIDE_TOOLS as readonly string[]).includes(program)) unknown.add(`${program} (line ${step.line})`);
      }
    }
    t.same([...unknown], [], `${guide.name}: every program is npm's, the shell's, or in GUIDE_TOOLS (lesson-suite.ts; then in SYSTEM_TOOLS, which .ci/run installs)`);
  }
});

t.test('"npx socklab" runs the binary the test runs in its place', async (t) => {
  t.equal(pkg.bin.socklab, 'dist/bin/socklab.js', 'package.json bin.socklab');
  // npm 11 (Node 24's) links the project into its npx cache the first time and would
  // run its prepare script, a whole build (30 s and more on a busy machine), before
  // the command: the build is done, so --ignore-scripts skips that and nothing else.
  const result = spawnSync('npx', ['--no-install', '--ignore-scripts', 'socklab', '--version'], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  t.equal(result.status, 0, 'npx socklab --version exits 0', { stderr: result.stderr });
  t.equal(result.stdout.trim(), pkg.version, 'and prints the version of this package');
});

// ---------------------------------------------------------------------------
// Running the guides: the first half of the sections here, the rest in lessons-part2.test.ts

t.test('every command in both guides runs, and shows what the guide says (part 1 of 2)', (t) => runGuideSections(t, 0, 2));
