/**
 * `socklab client` (homework 3) with its answers piped into stdin, against a
 * real async server: what lands in the server's root is what the answers asked for.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { makeTempRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { finished, isOneSentence, runCli, sha256, type RunResult } from './run-cli.js';

let server: TestServer;
let local: string;

t.before(async () => {
  server = await startTestServer('async');
  local = makeTempRoot('socklab-interactive-local-');
});
t.teardown(async () => {
  await server.close();
  fs.rmSync(local, { recursive: true, force: true });
});

/** The interactive client, answering the prompts with `answers`, one per line. */
const interactive = (answers: readonly string[]): Promise<RunResult> =>
  runCli(['client', '--port', String(server.port)], { stdin: answers.map((a) => `${a}\n`).join('') });

function localFile(name: string, content: string | Buffer): string {
  const file = path.join(local, name);
  fs.writeFileSync(file, content);
  return file;
}

const onServer = (name: string) => path.join(server.root, name);

t.test('a new file: path, then the default name (the local base name)', async (t) => {
  const file = localFile('notes.txt', 'my notes\n');
  const r = await interactive([file, '']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /connected to 127\.0\.0\.1:\d+: socklab\/1 async ready/);
  t.match(r.stdout, /files on the server:/);
  t.match(r.stdout, /name on the server: \[notes\.txt\]/);
  t.match(r.stdout, new RegExp(`sha256 ${sha256('my notes\n')} verified`));
  t.equal(fs.readFileSync(onServer('notes.txt'), 'utf8'), 'my notes\n');
});

t.test('an existing name: the server asks, "o" overwrites', async (t) => {
  fs.writeFileSync(onServer('target.txt'), 'old content that is longer\n');
  const file = localFile('new.txt', 'new\n');
  const r = await interactive([file, 'target.txt', 'o']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /\dZ  target\.txt$/m, 'the server file is listed before the name is asked');
  t.match(r.stdout, 'target.txt exists on the server (27 bytes). Overwrite or append? [o/a/c]');
  t.equal(fs.readFileSync(onServer('target.txt'), 'utf8'), 'new\n');
});

t.test('an existing name: "a" appends (after an answer that is not one of o/a/c)', async (t) => {
  fs.writeFileSync(onServer('log.txt'), 'line 1\n');
  const file = localFile('more.txt', 'line 2\n');
  const r = await interactive([file, 'log.txt', 'maybe', 'A']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /please answer o \(overwrite\), a \(append\), c \(cancel\)/);
  t.equal(fs.readFileSync(onServer('log.txt'), 'utf8'), 'line 1\nline 2\n');
  t.match(r.stdout, /log\.txt is now 14 bytes/);
  t.match(r.stdout, new RegExp(`sha256 ${sha256('line 2\n')} verified`));
});

t.test('an existing name: "c" cancels and leaves the file alone', async (t) => {
  fs.writeFileSync(onServer('keep.txt'), 'keep me\n');
  const file = localFile('other.txt', 'other\n');
  const r = await interactive([file, 'keep.txt', 'c']);
  finished(t, r);
  t.match(r.stdout, /cancelled: keep\.txt on the server is unchanged/);
  t.equal(fs.readFileSync(onServer('keep.txt'), 'utf8'), 'keep me\n');
});

t.test('bad answers are explained and asked again', async (t) => {
  const file = localFile('good.txt', 'good\n');
  const r = await interactive([path.join(local, 'absent.txt'), local, file, '.hidden', 'a/b', 'renamed.txt']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /there is no file .*absent\.txt; please try again/);
  t.match(r.stdout, /is a directory, not a file; please try again/);
  t.match(r.stdout, /\.hidden is not a valid name: a name is letters, digits/);
  t.match(r.stdout, /"a\/b" is not a valid name/);
  t.equal(fs.readFileSync(onServer('renamed.txt'), 'utf8'), 'good\n');
  t.notOk(fs.existsSync(onServer('.hidden')));
});

t.test('a file that looks binary needs a yes', async (t) => {
  const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0x02]);
  const file = localFile('image.png', bytes);
  const text = localFile('plain.txt', 'plain\n');
  const no = await interactive([file, '', text, 'plain.txt']);
  finished(t, no);
  t.equal(no.code, 0, no.stderr);
  t.match(no.stdout, /image\.png looks like a binary file \(it has NUL bytes\)\. Upload it anyway\? \[y\/N\]/);
  t.notOk(fs.existsSync(onServer('image.png')), 'the default (no) skipped it');

  const yes = await interactive([file, 'y', '']);
  finished(t, yes);
  t.equal(yes.code, 0, yes.stderr);
  t.same(fs.readFileSync(onServer('image.png')), bytes);
});

t.test('a local name that is not a valid name gets a valid default', async (t) => {
  const file = localFile('my report.txt', 'report\n');
  const r = await interactive([file, '']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /suggesting my_report\.txt/);
  t.equal(fs.readFileSync(onServer('my_report.txt'), 'utf8'), 'report\n');
});

t.test('a name typed shell-style is read as a shell would, and the client says what the name will be', async (t) => {
  const file = localFile('typed.txt', 'typed\n');
  const r = await interactive([file, 'my\\ notes.txt', '"my notes.txt"', "'quoted.txt'"]);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(
    (r.stdout.match(/"my notes\.txt" is not a valid name: a name cannot contain spaces; use _ or - instead; please try again \(my_notes\.txt would do\)/g) ?? []).length,
    2,
    'the name as meant (not "my\\\\ notes.txt"), the rule, and a name that would do; twice',
  );
  t.match(r.stdout, /the name on the server will be quoted\.txt\n/);
  t.equal(fs.readFileSync(onServer('quoted.txt'), 'utf8'), 'typed\n');
});

t.test('a file over the server\'s size limit: said, and another file is asked for (nothing was sent)', async (t) => {
  const limited = await startTestServer('async', { maxFileSize: 1000 });
  t.teardown(() => limited.close());
  const big = localFile('big.log', 'x'.repeat(1001));
  const small = localFile('small.log', 'small\n');
  const r = await runCli(['client', '--port', String(limited.port)], { stdin: [big, 'big.log', small, ''].map((a) => `${a}\n`).join('') });
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /the file is larger than the server accepts \(1001 bytes; the limit is 1000 bytes\); nothing was sent: choose another file/);
  t.equal((r.stdout.match(/local file to upload:/g) ?? []).length, 2, 'asked for a local file again');
  t.notMatch(r.stdout, /reconnected/, 'on the same connection: a refusal leaves it usable');
  t.equal(fs.readFileSync(path.join(limited.root, 'small.log'), 'utf8'), 'small\n', 'the second file is uploaded');
  t.notOk(fs.existsSync(path.join(limited.root, 'big.log')), 'the first is not');
});

t.test('stdin ends at a prompt: the user gave up, exit 1, nothing uploaded', async (t) => {
  const file = localFile('unsent.txt', 'unsent\n');
  const atName = await interactive([file]);
  finished(t, atName);
  t.equal(atName.code, 1);
  t.ok(isOneSentence(atName.stderr), atName.stderr);
  t.match(atName.stderr, /no answer/);
  t.notOk(fs.existsSync(onServer('unsent.txt')));

  fs.writeFileSync(onServer('exists.txt'), 'before\n');
  const atQuestion = await interactive([file, 'exists.txt']);
  finished(t, atQuestion);
  t.equal(atQuestion.code, 1);
  t.ok(isOneSentence(atQuestion.stderr), atQuestion.stderr);
  t.equal(fs.readFileSync(onServer('exists.txt'), 'utf8'), 'before\n', 'the pending PUT was cancelled');

  const nothing = await interactive([]);
  finished(t, nothing);
  t.equal(nothing.code, 1);
  t.ok(isOneSentence(nothing.stderr), nothing.stderr);
});
