/**
 * `socklab server` as a user runs it: what it says on its command line and in
 * its log, with the real binary (a free port, a temporary root).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { finished, runCli } from '../clients/run-cli.js';
import { ServerProcess } from '../reliability/processes.js';

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
