/**
 * `socklab server` as a user runs it: what it says on its command line and in
 * its log, with the real binary (a free port, a temporary root).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { finished, runCli, unprivilegedUser } from '../clients/run-cli.js';
import { ServerProcess } from '../reliability/processes.js';
import { hostAndPort } from '../../servers/shell.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-server-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Connects, sends `lines`, reads until the server closes. */
function talk(port: number, lines: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.end(lines));
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

t.test('--help shows the largest upload as 64MiB, as it may be written', async (t) => {
  const r = await runCli(['server', '--help']);
  finished(t, r);
  t.match(r.stdout, /--max-file-size .*\[default: "64MiB"\]/);
});

t.test('--root naming a file: one sentence that says so, and what to give instead', async (t) => {
  const file = path.join(tempDir(t), 'notes.txt');
  fs.writeFileSync(file, 'not a directory\n');
  const r = await runCli(['server', 'async', '--port', '0', '--root', file]);
  finished(t, r);
  t.equal(r.code, 2);
  t.equal(r.stderr, `socklab: --root ${file} is a file, not a directory; name a directory for the server's files (it is created if missing), such as --root ./storage\n`);
  const below = await runCli(['server', 'sequential', '--port', '0', '--root', path.join(file, 'inside')]);
  t.equal(below.code, 2);
  t.match(below.stderr, /part of that path is a file, not a directory/);
});

/** What follows a usage error on stderr. */
const USAGE_HINT = /\n\(run "[^"]+" or "[^"]+ <command> --help" for usage\)\n$/;

t.test('seconds past what a timer holds (24 days) are refused, naming the limit, instead of firing at once', async (t) => {
  const root = tempDir(t);
  for (const [args, expected] of [
    [['server', 'async', '--idle-timeout', '99999999999'], '--idle-timeout takes a number of seconds 0 (never) or more, at most 2147483 (24 days), not 99999999999'],
    [['server', 'workers', '--grace', '3000000'], '--grace takes a number of seconds 0 (abort uploads at once) or more, at most 2147483 (24 days), not 3000000'],
    [['server', 'sequential', '--grace', '-1'], '--grace takes a number of seconds 0 (abort uploads at once) or more, at most 2147483 (24 days), not -1'],
    [['load', 'chat', 'async', '--timeout', '3000000'], '--timeout takes a number of seconds above 0, at most 2147483 (24 days), not 3000000'],
    [['load', 'chat', 'async', '--think-ms', '99999999999'], '--think-ms must be a whole number from 0 to 2147483647, not 99999999999'],
    // Not a time, but the same trap: a tiny minimum must not silently become "no minimum".
    [['server', 'async', '--min-upload-rate', '0.1'], '--min-upload-rate 0.1 is less than 1 byte per second; give 1 or more (0 means no minimum)'],
  ] as const) {
    const r = await runCli([...args, '--port', '0', ...(args[0] === 'server' ? ['--root', root] : [])]);
    finished(t, r);
    t.equal(r.code, 2, `${args.join(' ')}: a usage error`);
    t.equal(r.stderr, `socklab: ${expected}\n`, 'one sentence naming the limit');
  }
});

t.test('--host, --port and --root as typed: empty, bare, not decimal, twice, a URL: refused, naming the option, never a default', async (t) => {
  const root = tempDir(t);
  for (const [args, expected] of [
    [['--host', ''], /^socklab: --host is empty: give a name or an address, such as 127\.0\.0\.1 \(this machine only\) or 0\.0\.0\.0 \(every network\)/],
    [['--host', '127.0.0.1 '], /^socklab: --host "127\.0\.0\.1 " has a space in it/],
    [['--host', 'http://127.0.0.1:8020/'], /^socklab: --host takes a name or an address, not a URL: 127\.0\.0\.1 for "http:\/\/127\.0\.0\.1:8020\/"/],
    [['--port', ''], /^socklab: --port takes a port number from 0 to 65535, not ""/],
    [['--port', '0x10'], /^socklab: --port takes a port number from 0 to 65535, not "0x10"/],
    [['--port', '70000'], /^socklab: --port must be a whole number from 0 to 65535, not 70000/],
    [['--port', '0', '--port', '1'], /^socklab: --port is given 2 times \(0, 1\): give it once/],
    [['--port'], /^socklab: Not enough arguments following: port/],
    [['--root', ''], /^socklab: --root is empty: name a directory, such as \.\/storage/],
    [['--root'], /^socklab: Not enough arguments following: root/],
  ] as const) {
    // Every other option valid: what is refused is the one under test, before anything listens.
    const others = [...((args as readonly string[]).includes('--port') ? [] : ['--port', '0']), ...((args as readonly string[]).includes('--root') ? [] : ['--root', root])];
    const r = await runCli(['server', 'async', ...others, ...args]);
    finished(t, r);
    t.equal(r.code, 2, `${JSON.stringify(args)}: a usage error`);
    t.match(r.stderr, expected, `${JSON.stringify(args)}: says which option and why`);
    t.match(r.stderr, USAGE_HINT);
  }
  const client = await runCli(['client', 'list', '--host', '']);
  t.equal(client.code, 2, 'the clients read --host the same way');
  t.match(client.stderr, /^socklab: --host is empty/);
});

t.test('an IPv6 address is logged in brackets, as nc or a URL takes it', async (t) => {
  t.equal(hostAndPort('::1', 8020), '[::1]:8020');
  t.equal(hostAndPort('127.0.0.1', 8020), '127.0.0.1:8020');
  t.equal(hostAndPort('localhost', 8020), 'localhost:8020');
});

t.test('--host that names no machine: one sentence, not getaddrinfo', async (t) => {
  const r = await runCli(['server', 'async', '--port', '0', '--root', tempDir(t), '--host', 'nosuchhost.invalid']);
  finished(t, r);
  t.equal(r.code, 2);
  t.equal(r.stderr, 'socklab: no such host "nosuchhost.invalid" (check --host: a name or an address of this machine, such as 127.0.0.1, or 0.0.0.0 for every network)\n');
});

t.test('--root that cannot be made or used: the path, the reason and the fix, before listening', async (t) => {
  const dir = tempDir(t);
  const link = path.join(dir, 'link');
  fs.symlinkSync(path.join(dir, 'gone', 'files'), link);
  const dangling = await runCli(['server', 'async', '--port', '0', '--root', link]);
  finished(t, dangling);
  t.equal(dangling.code, 2);
  t.equal(dangling.stderr, `socklab: --root ${link} is a symbolic link to ${path.join(dir, 'gone', 'files')}, which does not exist; create that directory, or name another one, such as --root ./storage\n`);

  // fs.mkdir's recursive mode spins forever here (ENOENT from /proc); the server must not.
  const proc = await runCli(['server', 'sequential', '--port', '0', '--root', '/proc/socklab-files']);
  finished(t, proc);
  t.equal(proc.code, 2, 'under /proc: refused at once');
  t.match(proc.stderr, /^socklab: --root \/proc\/socklab-files: cannot create \/proc\/socklab-files \(E[A-Z]+\); name a directory this user may write in, such as --root \.\/storage\n$/);

  // Read-only for whoever runs the server: refused before it listens (not a 451 at every upload).
  fs.chmodSync(dir, 0o755);
  const readOnly = path.join(dir, 'read-only');
  fs.mkdirSync(readOnly, { mode: 0o555 });
  fs.chmodSync(readOnly, 0o555);
  const r = await runCli(['server', 'workers', '--port', '0', '--root', readOnly], { user: unprivilegedUser() });
  finished(t, r);
  t.equal(r.code, 2, 'a read-only root: refused');
  t.equal(r.stderr, `socklab: --root ${readOnly}: the server may not list and write files there (EACCES: permission denied); fix its permissions (ls -ld ${readOnly} shows them), or name another directory, such as --root ./storage\n`);
});

t.test('the log: "listening on" once, "1 request" in the singular, a SIGTERM answered with SIGTERM', async (t) => {
  const server = await ServerProcess.start('async', { root: tempDir(t) });
  t.teardown(() => server.stop());
  t.match(await talk(server.port, 'QUIT\n'), /^220 .*\r?\n221 /);
  await server.waitForLine(/closed .* 1 request, /, 10_000);
  t.equal(server.lines.filter((line) => line.includes('listening on')).length, 1, `one "listening on" line: ${server.lines[0]}`);
  server.kill('SIGTERM');
  const stopping = await server.waitForLine(/SIGTERM: stopping/, 10_000);
  t.match(stopping, /^\d{4}-\d\d-\d\dT[\d:.]+Z SIGTERM: stopping \(uploads in progress get 10 s; send SIGTERM again to abort them\)$/, 'stamped like the log, and no Ctrl-C for a signal a program sent');
  t.same(await server.waitExit(15_000), { code: 0, signal: null });
});

t.test('workers-only options typed for another model: a note says they change nothing, and why; none for workers or the defaults', async (t) => {
  const cases: Array<{ model: 'sequential' | 'async' | 'workers'; args: string[]; notes: RegExp[] }> = [
    { model: 'sequential', args: ['--threads', '4', '--max-queue=2'], notes: [/^note: --threads is for the workers model and changes nothing here \(sequential serves one connection at a time/, /^note: --max-queue is for the workers model .*\(sequential queues up to --max-connections\)$/] },
    { model: 'async', args: ['--threads=3', '--maxQueue', '5'], notes: [/^note: --threads is for the workers model .*\(async serves every connection on its one event loop\)$/, /^note: --max-queue is for the workers model .*\(async has no queue/] },
    { model: 'workers', args: ['--threads', '2', '--max-queue', '2'], notes: [] },
    { model: 'async', args: [], notes: [] },
  ];
  for (const { model, args, notes } of cases) {
    const server = await ServerProcess.start(model, { root: tempDir(t), args: [...args, '--quiet'] });
    t.teardown(() => server.stop());
    // After a whole session: the notes, written before listening, have long arrived (stderr is a pipe of its own).
    t.match(await talk(server.port, 'QUIT\n'), /^220 /, `${model}: serves as usual`);
    const said = server.lines.filter((line) => line.startsWith('note: '));
    t.equal(said.length, notes.length, `${model} ${args.join(' ')}: ${notes.length} note(s)`);
    notes.forEach((note, i) => t.match(said[i], note));
  }
});
