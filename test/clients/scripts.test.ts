/**
 * `socklab client list|stat|get|put`, the binary run as a subprocess against a
 * real async server: round trips checked against the files in the server's root.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { makeTempRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { closedPort, finished, isOneSentence, runCli, sha256, sha256File, unprivilegedUser, type RunResult } from './run-cli.js';

let server: TestServer;
let local: string;

t.before(async () => {
  server = await startTestServer('async');
  local = makeTempRoot('socklab-client-local-');
});
t.teardown(async () => {
  await server.close();
  fs.rmSync(local, { recursive: true, force: true });
});

const client = (args: string[], cwd = local): Promise<RunResult> => runCli(['client', ...args, '--port', String(server.port)], { cwd });

function localFile(name: string, bytes: Buffer | string): string {
  const file = path.join(local, name);
  fs.writeFileSync(file, bytes);
  return file;
}

function onServer(name: string): string {
  return path.join(server.root, name);
}

t.test('list on an empty server, as a table and as JSON', async (t) => {
  const table = await client(['list']);
  finished(t, table);
  t.equal(table.code, 0);
  t.match(table.stdout, /no files/);
  const json = await client(['list', '--json']);
  finished(t, json);
  t.equal(json.code, 0);
  t.same(JSON.parse(json.stdout), []);
});

t.test('put then list, stat and get: the bytes make the round trip unchanged', async (t) => {
  const bytes = randomBytes(300_000);
  const file = localFile('round.bin', bytes);
  const put = await client(['put', file]);
  finished(t, put);
  t.equal(put.code, 0, put.stderr);
  t.match(put.stdout, new RegExp(`sha256 ${sha256(bytes)} verified`));
  t.equal(sha256File(onServer('round.bin')), sha256(bytes), 'the server stored exactly the local bytes');

  const list = await client(['list', '--json']);
  finished(t, list);
  const entries = JSON.parse(list.stdout) as { name: string; size: number; mtime: string }[];
  const entry = entries.find((e) => e.name === 'round.bin');
  t.ok(entry, 'listed');
  t.equal(entry?.size, bytes.length);
  t.ok(!Number.isNaN(Date.parse(entry?.mtime ?? '')), 'mtime is a date');

  const table = await client(['list']);
  t.match(table.stdout, /SIZE\s+MODIFIED \(UTC\)\s+NAME/);
  t.match(table.stdout, new RegExp(`${bytes.length}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+round\\.bin`));

  const stat = await client(['stat', 'round.bin']);
  finished(t, stat);
  t.equal(stat.code, 0);
  t.match(stat.stdout, new RegExp(`size\\s+${bytes.length}`));
  t.match(stat.stdout, new RegExp(`sha256\\s+${sha256(bytes)}`));
  const statJson = await client(['stat', 'round.bin', '--json']);
  t.same(JSON.parse(statJson.stdout), { name: 'round.bin', size: bytes.length, sha256: sha256(bytes) });

  const dir = fs.mkdtempSync(path.join(local, 'get-'));
  const get = await client(['get', 'round.bin'], dir);
  finished(t, get);
  t.equal(get.code, 0, get.stderr);
  t.equal(sha256File(path.join(dir, 'round.bin')), sha256(bytes), 'downloaded to ./NAME');
  t.same(fs.readdirSync(dir), ['round.bin'], 'no temporary file left behind');

  const out = await client(['get', 'round.bin', '--out', '-']);
  finished(t, out);
  t.equal(out.code, 0);
  t.equal(sha256(out.stdoutBytes), sha256(bytes), '--out - writes the bytes to stdout');
});

t.test('put --as and a file of zero bytes', async (t) => {
  const file = localFile('empty source.txt', '');
  const r = await client(['put', file, '--as', 'empty.txt']);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(onServer('empty.txt')).length, 0);
  const get = await client(['get', 'empty.txt', '--out', path.join(local, 'empty-copy.txt')]);
  t.equal(get.code, 0, get.stderr);
  t.equal(fs.readFileSync(path.join(local, 'empty-copy.txt')).length, 0);
});

t.test('put of an existing name: ask without a TTY, new, overwrite, append', async (t) => {
  const first = localFile('first.txt', 'first\n');
  const second = localFile('second.txt', 'second\n');
  t.equal((await client(['put', first, '--as', 'same.txt'])).code, 0);

  const ask = await client(['put', second, '--as', 'same.txt']);
  finished(t, ask);
  t.equal(ask.code, 1);
  t.ok(isOneSentence(ask.stderr), ask.stderr);
  t.match(ask.stderr, /same\.txt exists on the server \(6 bytes\).*--mode overwrite or --mode append/);
  t.equal(fs.readFileSync(onServer('same.txt'), 'utf8'), 'first\n', 'unchanged after the refused ask');

  const fresh = await client(['put', second, '--as', 'same.txt', '--mode', 'new']);
  finished(t, fresh);
  t.equal(fresh.code, 1);
  t.ok(isOneSentence(fresh.stderr), fresh.stderr);
  t.match(fresh.stderr, /already exists/);
  t.equal(fs.readFileSync(onServer('same.txt'), 'utf8'), 'first\n', 'unchanged after mode new');

  const append = await client(['put', second, '--as', 'same.txt', '--mode', 'append']);
  finished(t, append);
  t.equal(append.code, 0, append.stderr);
  t.equal(fs.readFileSync(onServer('same.txt'), 'utf8'), 'first\nsecond\n');
  t.match(append.stdout, new RegExp(`sha256 ${sha256('second\n')} verified`), 'the sha256 of the bytes sent');
  t.match(append.stdout, /same\.txt is now 13 bytes/);

  const overwrite = await client(['put', second, '--as', 'same.txt', '--mode', 'overwrite']);
  finished(t, overwrite);
  t.equal(overwrite.code, 0, overwrite.stderr);
  t.equal(fs.readFileSync(onServer('same.txt'), 'utf8'), 'second\n');
});

t.test('stat and get of a file that does not exist', async (t) => {
  const stat = await client(['stat', 'missing.txt']);
  finished(t, stat);
  t.equal(stat.code, 1);
  t.ok(isOneSentence(stat.stderr), stat.stderr);
  t.match(stat.stderr, /no such file/);

  const dir = fs.mkdtempSync(path.join(local, 'missing-'));
  const get = await client(['get', 'missing.txt'], dir);
  finished(t, get);
  t.equal(get.code, 1);
  t.ok(isOneSentence(get.stderr), get.stderr);
  t.match(get.stderr, /no such file on the server: missing\.txt/);
  t.same(fs.readdirSync(dir), [], 'nothing created locally, not even a temporary file');
});

t.test('get never overwrites a local file unless --force', async (t) => {
  fs.writeFileSync(onServer('fresh.txt'), 'from the server\n');
  const target = localFile('existing.txt', 'precious local data\n');
  const refused = await client(['get', 'fresh.txt', '--out', target]);
  finished(t, refused);
  t.equal(refused.code, 1);
  t.ok(isOneSentence(refused.stderr), refused.stderr);
  t.match(refused.stderr, /already exists; pass --force/);
  t.equal(fs.readFileSync(target, 'utf8'), 'precious local data\n', 'the local file is untouched');

  const forced = await client(['get', 'fresh.txt', '--out', target, '--force']);
  finished(t, forced);
  t.equal(forced.code, 0, forced.stderr);
  t.equal(fs.readFileSync(target, 'utf8'), 'from the server\n');

  const dir = fs.mkdtempSync(path.join(local, 'into-dir-'));
  const intoDir = await client(['get', 'fresh.txt', '--out', dir]);
  t.equal(intoDir.code, 0, intoDir.stderr);
  t.equal(fs.readFileSync(path.join(dir, 'fresh.txt'), 'utf8'), 'from the server\n', '--out DIR saves DIR/NAME');
});

t.test('names that break the rule are refused before anything is sent', async (t) => {
  const file = localFile('has space.txt', 'x');
  const put = await client(['put', file]);
  finished(t, put);
  t.equal(put.code, 2);
  t.ok(isOneSentence(put.stderr), put.stderr);
  t.match(put.stderr, /"has space\.txt" is not a valid file name \(a name cannot contain spaces; use _ or - instead\); --as has_space\.txt would be/);
  t.notOk(fs.existsSync(onServer('has space.txt')));

  const stat = await client(['stat', '.hidden']);
  finished(t, stat);
  t.equal(stat.code, 2);
  t.ok(isOneSentence(stat.stderr), stat.stderr);
  t.match(stat.stderr, /not a valid file name/);
});

t.test('put of a local file that is missing or a directory', async (t) => {
  const missing = await client(['put', path.join(local, 'nope.txt')]);
  finished(t, missing);
  t.equal(missing.code, 1);
  t.ok(isOneSentence(missing.stderr), missing.stderr);
  t.match(missing.stderr, /there is no file .*nope\.txt/);

  const dir = await client(['put', local]);
  finished(t, dir);
  t.equal(dir.code, 1);
  t.ok(isOneSentence(dir.stderr), dir.stderr);
  t.match(dir.stderr, /is a directory/);
});

t.test('get checks where it will save before it connects', async (t) => {
  const port = String(await closedPort());
  const noDir = await runCli(['client', 'get', 'x.txt', '--out', path.join(local, 'no-such-dir', 'x.txt'), '--port', port]);
  finished(t, noDir);
  t.equal(noDir.code, 1);
  t.ok(isOneSentence(noDir.stderr), noDir.stderr);
  t.match(noDir.stderr, /there is no directory .*no-such-dir/, 'not "connection refused": nothing was tried');

  const target = localFile('taken.txt', 'mine\n');
  const taken = await runCli(['client', 'get', 'taken.txt', '--out', target, '--port', port]);
  finished(t, taken);
  t.equal(taken.code, 1);
  t.match(taken.stderr, /taken\.txt already exists; pass --force/);
});

t.test('--retry is offered where it works (the interactive client, put), and refused where it would be ignored (list, stat, get)', async (t) => {
  for (const command of ['list', 'stat', 'get']) {
    const help = await runCli(['client', command, '--help']);
    t.notMatch(help.stdout, /--retry/, `client ${command} --help does not offer --retry`);
  }
  t.match((await runCli(['client', 'put', '--help'])).stdout, /--retry\s+if the connection is lost/);
  t.match((await runCli(['client', '--help'])).stdout, /--retry .*if the connection is lost/);
  const r = await client(['get', 'notes.txt', '--retry', '5']);
  finished(t, r);
  t.equal(r.code, 2, 'a usage error, not a get that silently does not retry');
  t.match(r.stderr, /^socklab: Unknown argument: retry\n/);
});

t.test('get into a directory this user may not write in: said before connecting, naming the directory, not a temporary file', async (t) => {
  const dir = fs.mkdtempSync(path.join(local, 'read-only-'));
  fs.chmodSync(local, 0o755);
  fs.chmodSync(dir, 0o555);
  t.teardown(() => fs.chmodSync(dir, 0o755));
  // A port nothing listens on: the check must come first.
  const r = await runCli(['client', 'get', 'notes.txt', '--out', `${dir}/`, '--port', String(await closedPort())], { user: unprivilegedUser() });
  finished(t, r);
  t.equal(r.code, 1);
  t.equal(r.stderr, `socklab: cannot save to ${path.join(dir, 'notes.txt')}: this user may not write in ${dir} (EACCES); pass --out to save elsewhere\n`);
});
