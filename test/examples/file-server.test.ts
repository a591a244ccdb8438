/**
 * examples/python/file_server.py, the homework 3 server in the lecture's
 * language: `socklab check` passes against it. Needs python3 (skipped with a
 * message outside CI when it is absent; CI installs it).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CASES } from '../../clients/check/cases.js';
import { finished, runCli } from '../clients/run-cli.js';
import { makeTempRoot } from '../helpers/server.js';
import { requireSystemTools } from '../helpers/system-tool.js';

const FILE_SERVER = fileURLToPath(new URL('../../../examples/python/file_server.py', import.meta.url));
const START_LIMIT_MS = 15_000;

t.test('socklab check passes against examples/python/file_server.py', async (t) => {
  if (!requireSystemTools(t, 'python3')) return;
  const root = makeTempRoot('socklab-python-');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(`${root}/notes.txt`, "the student's own file\n");
  const server = spawn('python3', [FILE_SERVER, '--port', '0', '--root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL');
  });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`file_server.py did not say "listening on" within ${START_LIMIT_MS} ms: ${output}`)), START_LIMIT_MS);
    const look = () => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match === null) return;
      clearTimeout(timer);
      server.stdout.off('data', look);
      resolve(Number(match[1]));
    };
    server.stdout.on('data', look);
    server.on('exit', (code) => reject(new Error(`file_server.py exited with ${code}: ${output}`)));
  });

  const r = await runCli(['check', '--port', String(port), '--root', root], { limitMs: 120_000 });
  finished(t, r);
  t.equal(r.code, 0, 'socklab check exits 0', { report: r.stdout.split('\n').filter((line) => !line.startsWith('  pass')).join('\n'), stderr: r.stderr });
  t.match(r.stdout, new RegExp(`${CASES.length} cases: all passed`), `all ${CASES.length} cases pass`);
  t.same(fs.readdirSync(root), ['notes.txt'], "afterwards the root holds the student's file only (the check's files are removed, no temporary file is left)");

  // Ctrl-C is how a student stops it: a clean exit, not a traceback.
  server.kill('SIGINT');
  t.equal(await exited, 0, 'Ctrl-C (SIGINT) stops it with exit code 0');
  t.notMatch(output, /Traceback/, 'no Python traceback in its output', { output });
});
