/**
 * `socklab check`: it passes against every socklab server and against an
 * independent in-memory server (test/helpers/broken-server.ts); every case
 * fails against that server with at least one of its switches on (the
 * mapping below is asserted, so no case can pass vacuously); and the command
 * reports, filters, times out, cleans up and fails the way its users need.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CASES } from '../../clients/check/cases.js';
import { runCheck, selectCases, type CheckReport } from '../../clients/check/run.js';
import { BREAKAGES, startBrokenServer, type Breakage } from '../helpers/broken-server.js';
import { makeTempRoot, startTestServer } from '../helpers/server.js';
import { closedPort, finished, isOneSentence, readLines, runCli, startFakeServer } from './run-cli.js';

/** For each switch, the cases it must make fail (ids; `x/*` for every case under x/). */
const MUST_FAIL: Record<Breakage, readonly string[]> = {
  'no-greeting': ['greeting'],
  'greeting-wrong-code': ['greeting'],
  'greeting-without-version': ['greeting'],
  'drops-early-requests': ['greeting/requests-before-it'],
  'keeps-cr': ['framing/crlf'],
  'accepts-invalid-utf8': ['framing/invalid-utf8'],
  'line-limit-1023': ['framing/line-at-limit'],
  'no-line-limit': ['framing/line-too-long', 'framing/line-limit-in-bytes'],
  'line-limit-in-characters': ['framing/line-limit-in-bytes'],
  'line-too-long-stays-open': ['framing/line-too-long', 'framing/line-limit-in-bytes'],
  'case-sensitive-commands': ['framing/case-insensitive', 'put/350-any-case'],
  'single-spaces-only': ['framing/spaces'],
  'answers-empty-line': ['framing/empty-line'],
  'one-request-per-read': ['framing/pipelining', 'help'],
  'drops-bytes-after-data': ['framing/pipelining-after-data'],
  'eof-commits-partial': ['framing/eof-discards-upload'],
  'ping-wrong-code': ['ping'],
  'echo-trims': ['echo'],
  'echo-needs-text': ['echo/empty'],
  'help-two-lines': ['help'],
  'list-sorted-ignoring-case': ['list'],
  'list-local-time': ['list'],
  'list-shows-temp-files': ['list'],
  'stat-sha256-uppercase': ['stat'],
  'missing-gets-450': ['stat/missing', 'get/missing', 'framing/spaces'],
  'no-name-check': ['stat/bad-name', 'get/bad-name', 'put/bad-name', 'put/check-order', 'names/parent', 'names/slash', 'names/backslash', 'names/leading-dot', 'names/first-character', 'names/punctuation', 'names/control-character', 'names/too-many-code-points', 'names/too-many-bytes', 'names/not-nfc'],
  'names-ascii-only': ['names/accepted', 'names/longest'],
  'names-case-insensitive': ['names/case-sensitive'],
  'name-limit-255-characters': ['names/too-many-code-points', 'names/too-many-bytes'],
  'names-not-nfc-accepted': ['names/not-nfc'],
  'names-only-slash-and-dot-rejected': ['names/backslash', 'names/first-character', 'names/punctuation', 'names/control-character'],
  'get-no-226': ['get', 'get/empty'],
  'get-extra-newline': ['get'],
  'get-size-in-characters': ['get'],
  'get-wrong-sha256': ['get', 'get/empty'],
  'text-mode-storage': ['get', 'put/any-bytes'],
  'put-226-without-name': ['put/new-file', 'put/empty', 'put/overwrite', 'put/append-absent', 'put/options-any-order', 'put/sha256-match'],
  'put-no-350': ['put/ask-350', 'put/350-overwrite', 'put/350-append', 'put/350-cancel', 'put/350-any-case', 'put/350-other-line', 'put/350-keeps-sha256'],
  'put-350-without-size': ['put/ask-350'],
  'put-new-overwrites': ['put/mode-new'],
  'overwrite-appends': ['put/overwrite', 'put/350-overwrite'],
  'append-overwrites': ['put/append', 'put/350-append'],
  'append-needs-existing': ['put/append-absent'],
  'put-226-whole-file-sha256': ['put/append'],
  'put-226-size-of-data': ['put/append'],
  'no-sha256-check': ['put/sha256-mismatch', 'put/sha256-mismatch-existing'],
  'sha256-mismatch-still-stored': ['put/sha256-mismatch', 'put/sha256-mismatch-existing'],
  'sha256-check-wrong': ['put/sha256-match', 'put/options-any-order'],
  'sha256-any-case': ['put/bad-sha256-form'],
  'options-in-fixed-order': ['put/options-any-order'],
  'lenient-size': ['put/size-not-decimal'],
  'ignores-unknown-options': ['put/unknown-option'],
  'no-size-limit': ['put/too-large', 'put/check-order'],
  'checks-out-of-order': ['put/check-order'],
  'zero-size-waits-for-data': ['put/empty'],
  'reads-data-once': ['put/many-chunks'],
  'decision-drops-sha256': ['put/350-keeps-sha256'],
  'decision-other-line-served': ['put/350-other-line'],
  'decision-without-put-500': ['put/decision-without-put'],
  'cancel-wrong-code': ['put/350-cancel'],
  'quit-stays-open': ['quit'],
  'quit-without-reply': ['quit'],
  'unknown-command-501': ['unknown-command'],
  'unknown-command-closes': ['unknown-command'],
  'extra-arguments-ignored': ['arguments/*'],
};

/** Generous for a correct server on a loaded machine; a broken one fails its case either way. */
const PASSING_TIMEOUT_SECONDS = 15;
/** A broken server may never answer: its cases end at this. */
const FAILING_TIMEOUT_SECONDS = 2;

/** The cases of `patterns`: exact ids, or globs with `*` (not --case's prefixes: `get` must not mean get/empty too). */
function casesNamed(patterns: readonly string[]) {
  return CASES.filter((c) => patterns.some((p) => (p.includes('*') ? selectCases([p]).includes(c) : c.id === p)));
}

function failedIds(report: CheckReport): string[] {
  return report.results.filter((r) => !r.passed).map((r) => r.id);
}

function failures(report: CheckReport): Record<string, unknown>[] {
  return report.results.filter((r) => !r.passed).map((r) => ({ id: r.id, ...r.failure }));
}

function filesIn(root: string): string[] {
  return fs.readdirSync(root).sort();
}

t.test('the cases: one id each, every section of PROTOCOL.md they name exists there', async (t) => {
  const ids = CASES.map((c) => c.id);
  t.same([...new Set(ids)], ids, 'no two cases share an id');
  const protocol = fs.readFileSync(new URL('../../../protocol/PROTOCOL.md', import.meta.url), 'utf8');
  for (const section of new Set(CASES.map((c) => c.section))) t.match(protocol, new RegExp(`^#+ ${section}$`, 'm'), `PROTOCOL.md has a section "${section}"`);
});

t.test('every case fails against a server with some switch on, and every switch is caught', async (t) => {
  const mapped = new Set(Object.values(MUST_FAIL).flatMap((patterns) => casesNamed(patterns).map((c) => c.id)));
  t.same(
    CASES.map((c) => c.id).filter((id) => !mapped.has(id)),
    [],
    'every case is listed under at least one switch of the broken server',
  );
  t.same(Object.keys(MUST_FAIL).sort(), Object.keys(BREAKAGES).sort(), 'every switch of the broken server is listed');
  for (const patterns of Object.values(MUST_FAIL)) {
    for (const pattern of patterns) t.ok(casesNamed([pattern]).length > 0, `"${pattern}" names a case`);
  }

  // Each switch gets its own server; a few at a time, since a case against a silent server waits out its timeout.
  const queue = Object.entries(MUST_FAIL) as [Breakage, readonly string[]][];
  const outcomes = new Map<Breakage, { expected: string[]; report: CheckReport }>();
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [breakage, patterns] = next;
      const server = await startBrokenServer([breakage]);
      try {
        const cases = casesNamed(patterns);
        const report = await runCheck({ host: '127.0.0.1', port: server.port, cases, timeoutSeconds: FAILING_TIMEOUT_SECONDS, root: null });
        outcomes.set(breakage, { expected: cases.map((c) => c.id), report });
      } finally {
        await server.close();
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  for (const [breakage, { expected, report }] of outcomes) {
    const passed = report.results.filter((r) => r.passed).map((r) => r.id);
    t.same(passed, [], `${breakage} (${BREAKAGES[breakage]}): fails ${expected.join(', ')}`);
  }
});

t.test('the broken server with no switch on passes every case (so the failures above are the switches)', async (t) => {
  const server = await startBrokenServer();
  t.teardown(() => server.close());
  const report = await runCheck({ host: '127.0.0.1', port: server.port, cases: CASES, timeoutSeconds: PASSING_TIMEOUT_SECONDS, root: null });
  t.same(failedIds(report), [], `${report.passed} of ${report.results.length} passed`, { failures: failures(report) });
});

for (const model of ['sequential', 'workers', 'async'] as const) {
  t.test(`socklab check passes against the ${model} server, and removes its files from --root`, async (t) => {
    const server = await startTestServer(model, { idleTimeoutSeconds: 60 });
    t.teardown(() => server.close());
    fs.writeFileSync(path.join(server.root, 'notes.txt'), 'a file of the student\n');
    const before = filesIn(server.root);
    const r = await runCli(['check', '--port', String(server.port), '--root', server.root, '--timeout', String(PASSING_TIMEOUT_SECONDS)], { limitMs: 120_000 });
    finished(t, r);
    t.equal(r.code, 0, 'exit 0', { stdout: r.stdout.split('\n').filter((line) => !line.startsWith('  pass')).join('\n'), stderr: r.stderr });
    t.match(r.stdout, new RegExp(`${CASES.length} cases: all passed`), 'the summary says all passed');
    t.notMatch(r.stdout, /FAIL/, 'no case failed');
    t.same(filesIn(server.root), before, "afterwards the root holds exactly what it held before (the check's files are gone)");
    t.equal(fs.readFileSync(path.join(server.root, 'notes.txt'), 'utf8'), 'a file of the student\n', "the student's own file is untouched");
  });
}

t.test('without --root it leaves only files with its own prefix, and says so before it starts', async (t) => {
  const server = await startTestServer('async');
  t.teardown(() => server.close());
  fs.writeFileSync(path.join(server.root, 'notes.txt'), 'mine\n');
  const r = await runCli(['check', '--port', String(server.port), '--json', '--case', 'put/append', '--case', 'list'], { limitMs: 60_000 });
  finished(t, r);
  t.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
  const report = JSON.parse(r.stdout) as CheckReport;
  t.same(
    report.results.map((c) => c.id),
    ['list', 'put/append', 'put/append-absent'],
    '--case picks the case of that id and those whose ids go on from it, in the suite order',
  );
  t.match(report.filePrefix, /^socklab-check-[0-9a-f]{8}-$/, 'the file prefix is socklab-check-<run>-');
  t.equal(report.removed, null, 'nothing removed (no --root)');
  t.match(r.stderr, new RegExp(`It writes only files named ${report.filePrefix}\\*; protocol v1 has no command to delete a file`), 'with --json the announcement is on stderr');
  const left = filesIn(server.root).filter((name) => name !== 'notes.txt');
  t.ok(left.length > 0, 'the check wrote files');
  t.same(
    left.filter((name) => !name.startsWith(report.filePrefix)),
    [],
    'every file it wrote starts with its prefix',
  );
});

t.test('a failing server: pass/FAIL per case, what was sent, expected and got, a summary, exit 1', async (t) => {
  const server = await startBrokenServer(['put-no-350', 'one-request-per-read']);
  t.teardown(() => server.close());
  const r = await runCli(['check', '--port', String(server.port), '--case', 'put/ask-350', '--case', 'framing/pipelining', '--case', 'ping', '--timeout', '2']);
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  const lines = r.stdout.split('\n');
  t.match(lines[0], /^socklab check 127\.0\.0\.1:\d+: protocol v1 \(protocol\/PROTOCOL\.md\), 4 cases, each within 2 s\.$/, 'first, what it checks');
  t.match(lines[1], /^It writes only files named socklab-check-[0-9a-f]{8}-\*; /, 'then, before any case, which files it writes');
  t.match(r.stdout, /pass {2}ping +PING gets 200 PONG/, 'a passing case is one line');
  t.match(r.stdout, /FAIL {2}put\/ask-350 .*\n +sent: +PUT socklab-check-[0-9a-f]{8}-put-ask-350-ask\.txt 5 mode=ask\n +expected: 350 socklab-check-\S+ exists 12\n +got: +150 send 5 bytes\n/, 'a failure shows what was sent, expected and got');
  t.match(
    r.stdout,
    /FAIL {2}framing\/pipelining .*\n +sent: +ECHO one \| STAT socklab-check-\S+ \| GET socklab-check-\S+ \| HELP \| … \(1 more\)\n +expected: 200 one\n +got: +\(nothing within the case's 2 s\)/,
    'a server that stops answering fails the case at its timeout; "sent" is the requests still unanswered',
  );
  t.match(r.stdout, /\n4 cases: 1 passed, 3 failed \(framing\/pipelining, framing\/pipelining-after-data, put\/ask-350\)\.\n/, 'the summary names the failed cases');
  t.match(r.stdout, /\nFiles socklab-check-[0-9a-f]{8}-\* are left on the server \(no --root given\)\.\n$/, 'cases that uploaded: the summary says their files stay');
});

t.test('--json: the whole report, and exit 1 when a case fails', async (t) => {
  const server = await startBrokenServer(['ping-wrong-code']);
  t.teardown(() => server.close());
  const r = await runCli(['check', '--port', String(server.port), '--json', '--case', 'ping', '--case', 'echo']);
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  const report = JSON.parse(r.stdout) as CheckReport & { protocol: number };
  t.equal(report.protocol, 1);
  t.same([report.passed, report.failed, report.notRun], [2, 1, 0], '2 passed, 1 failed, none left out');
  const ping = report.results.find((c) => c.id === 'ping');
  t.same(ping?.failure, { sent: ['PING'], expected: '200', got: ['250 PONG'] }, 'the failure: sent, expected, got');
  t.equal(ping?.section, 'Commands', 'each case names its section');
});

t.test('a server that never greets: the greeting case fails at its timeout, the others are not run', async (t) => {
  const server = await startBrokenServer(['no-greeting']);
  t.teardown(() => server.close());
  const began = performance.now();
  const r = await runCli(['check', '--port', String(server.port), '--timeout', '1']);
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stdout, /FAIL {2}greeting[^\n]*\n[^\n]*sent: +\(nothing yet\)\n[^\n]*expected: 220 socklab\/1 <model> ready, before the client sends anything\n[^\n]*got: +\(nothing within the case's 1 s\)/);
  t.notMatch(r.stdout, /skip|ping/, 'no line for each case that was not run');
  t.match(
    r.stdout,
    new RegExp(`FAIL {2}greeting[^]*\\n\\n${CASES.length} cases: 0 passed, 1 failed \\(greeting\\), the remaining ${CASES.length - 1} not run \\(greeting failed, and every other case starts by reading the greeting\\)\\.\\n$`),
    'the summary says once why the rest were not run, and no file line: no case wrote one',
  );
  t.ok(performance.now() - began < 15_000, 'the check ends within its one timeout plus start-up, not one timeout per case');
});

t.test('a server that dies in the middle: the case that killed it fails, the rest say so', async (t) => {
  // Greets every connection, and stops listening at the first request line it reads.
  const server = await startFakeServer((socket) => {
    socket.write('220 socklab/1 fake ready\n');
    readLines(socket, () => {
      socket.destroy();
      void server.close();
      return 'stop';
    });
  });
  const r = await runCli(['check', '--port', String(server.port), '--case', 'ping', '--case', 'echo', '--case', 'help', '--timeout', '2']);
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stdout, /FAIL {2}ping[^\n]*\n +sent: +PING\n +expected: 200\n +got: +\(the server closed the connection\)/, 'the case that killed it (the probe sent nothing)');
  t.match(r.stdout, /FAIL {2}echo[^\n]*\n +sent: +\(TCP connect\)\n +expected: a connection\n +got: +could not connect to 127\.0\.0\.1:\d+: connection refused/, 'the next case finds nobody');
  t.notMatch(r.stdout, /echo\/empty|help/, 'the rest are not run, and get no line each');
  t.match(r.stdout, /4 cases: 0 passed, 2 failed \(ping, echo\), the remaining 2 not run \(the server refused connections from echo on: did it stop during ping\?\)\./);
});

t.test('a summary names at most 10 failed cases, then how many more', async (t) => {
  // Greets, then answers every line with 500: each case fails at its first reply, none waits out its timeout.
  const server = await startFakeServer((socket) => {
    socket.write('220 socklab/1 fake ready\n');
    readLines(socket, () => void socket.write('500 no\n'));
  });
  t.teardown(() => server.close());
  const names = selectCases(['names']);
  t.ok(names.length > 10, `more than 10 cases under names/ (${names.length})`);
  const r = await runCli(['check', '--port', String(server.port), '--case', 'names', '--timeout', '5']);
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  const shown = names.slice(0, 10).map((c) => c.id).join(', ');
  t.ok(
    r.stdout.includes(`\n${names.length} cases: 0 passed, ${names.length} failed (${shown} and ${names.length - 10} more).\n`),
    'the first 10 failed ids, then "and N more"',
    { stdout: r.stdout.slice(-600) },
  );
  t.equal(r.stdout.match(/^ {2}FAIL /gm)?.length, names.length, 'while every failed case still has its own line above');
});

t.test('the files line: only when a case wrote a file, or could have', async (t) => {
  const server = await startBrokenServer();
  t.teardown(() => server.close());
  const port = String(server.port);
  const root = makeTempRoot();
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const noUpload = ['--case', 'ping', '--case', 'echo/empty'];

  const leftNothing = await runCli(['check', '--port', port, ...noUpload]);
  finished(t, leftNothing);
  t.equal(leftNothing.code, 0, 'exit 0', { stderr: leftNothing.stderr });
  t.match(leftNothing.stdout, /\n2 cases: all passed\. The server speaks protocol v1 as far as these cases go\.\n$/, 'no case uploaded: no line about files left on the server');

  const removedNothing = await runCli(['check', '--port', port, '--root', root, ...noUpload]);
  finished(t, removedNothing);
  t.match(removedNothing.stdout, /as far as these cases go\.\n$/, 'with --root: no "Removed 0 files", no question about the folder');

  const uploaded = await runCli(['check', '--port', port, '--case', 'put/bad-name']);
  finished(t, uploaded);
  t.equal(uploaded.code, 0, 'exit 0', { stderr: uploaded.stderr });
  t.match(uploaded.stdout, /\nFiles socklab-check-[0-9a-f]{8}-\* are left on the server \(no --root given\)\.\n$/, 'a case sent a PUT (a server could have stored it): the line is there');

  const rejectedOnly = await runCli(['check', '--port', port, '--root', root, '--case', 'put/bad-name']);
  finished(t, rejectedOnly);
  t.match(rejectedOnly.stdout, /as far as these cases go\.\n$/, 'with --root, PUTs the server refused: nothing to remove, and no doubt about the folder');
  t.same(filesIn(root), [], 'nothing was written there');
});

t.test('a refused connection is one sentence, before anything else', async (t) => {
  const port = await closedPort();
  const r = await runCli(['check', '--port', String(port)]);
  finished(t, r);
  t.equal(r.code, 1, 'exit 1');
  t.equal(r.stdout, '', 'no report');
  t.ok(isOneSentence(r.stderr), 'one line on stderr', { stderr: r.stderr });
  t.match(r.stderr, new RegExp(`nothing is listening on 127\\.0\\.0\\.1:${port} \\(connection refused\\): start your server first`));
});

t.test('usage errors (no such case, an empty --case, a --root that is not there or is a file, --port 0), and a --root that is not the server\'s', async (t) => {
  const server = await startBrokenServer();
  t.teardown(() => server.close());
  const port = String(server.port);
  const noCase = await runCli(['check', '--port', port, '--case', 'no-such-case']);
  t.equal(noCase.code, 2);
  t.ok(isOneSentence(noCase.stderr));
  t.match(noCase.stderr, /no case matches --case no-such-case \(see "socklab check --list"\)/);
  for (const empty of [['--case', ''], ['--case', ' '], ['--case']]) {
    const emptyCase = await runCli(['check', '--port', port, ...empty]);
    t.equal(emptyCase.code, 2, `${JSON.stringify(empty)}: a usage error`);
    t.ok(isOneSentence(emptyCase.stderr), 'one sentence', { stderr: emptyCase.stderr });
    t.match(emptyCase.stderr, /--case needs a case id or pattern, such as --case put\/350 or --case "names\/\*" \(see "socklab check --list"\), not an empty one/);
  }
  const missing = path.join(makeTempRoot(), 'absent');
  t.teardown(() => fs.rmSync(path.dirname(missing), { recursive: true, force: true }));
  const noRoot = await runCli(['check', '--port', port, '--root', missing]);
  t.equal(noRoot.code, 2);
  t.match(noRoot.stderr, /--root .*absent: there is no such folder here/);
  const aFile = path.join(makeTempRoot(), 'hello.txt');
  fs.writeFileSync(aFile, 'hello\n');
  const fileRoot = await runCli(['check', '--port', port, '--root', aFile]);
  t.equal(fileRoot.code, 2);
  t.ok(isOneSentence(fileRoot.stderr), 'one sentence', { stderr: fileRoot.stderr });
  t.match(fileRoot.stderr, /--root .*hello\.txt is a file, not a folder: give the folder your server stores its files in, or leave --root out/);
  fs.rmSync(path.dirname(aFile), { recursive: true, force: true });
  const elsewhere = makeTempRoot();
  const wrongRoot = await runCli(['check', '--port', port, '--root', elsewhere, '--case', 'stat']);
  t.equal(wrongRoot.code, 0, 'a --root that is not the server\'s does not fail the check');
  t.match(wrongRoot.stdout, /No file named socklab-check-[0-9a-f]{8}-\* was in .*: is that the folder the server stores its files in\? The check's files are still on the server\./);
  fs.rmSync(elsewhere, { recursive: true, force: true });
  const portZero = await runCli(['check', '--port', '0']);
  t.equal(portZero.code, 2);
  t.match(portZero.stderr, /check needs the port your server listens on/);
});

t.test('--list: every case with its section, without connecting', async (t) => {
  const r = await runCli(['check', '--list']);
  t.equal(r.code, 0);
  for (const c of CASES) t.match(r.stdout, new RegExp(`^  ${c.id.replace(/[/]/g, '\\/')} +\\S`, 'm'), `lists ${c.id}`);
  t.match(r.stdout, /^Upload$/m, 'under its section');
  const json = await runCli(['check', '--list', '--json']);
  t.equal(json.code, 0);
  t.same(
    JSON.parse(json.stdout),
    CASES.map((c) => ({ id: c.id, section: c.section, requirement: c.requirement })),
    '--json: the same cases as data',
  );
});
