/**
 * examples/python/file_server.py, the homework 3 server in the lecture's
 * language: `socklab check` passes against it. Needs python3 (skipped with a
 * message outside CI when it is absent; CI installs it).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CASES } from '../../clients/check/cases.js';
import { finished, runCli } from '../clients/run-cli.js';
import { withServer } from '../helpers/python-example.js';
import { makeTempRoot } from '../helpers/server.js';
import { requireSystemTools } from '../helpers/system-tool.js';

t.test('socklab check passes against examples/python/file_server.py', async (t) => {
  if (!requireSystemTools(t, 'python3')) return;
  const root = makeTempRoot('socklab-python-');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'notes.txt'), "the student's own file\n");
  await withServer(
    t,
    'file_server.py',
    async (server) => {
      const r = await runCli(['check', '--port', String(server.port), '--root', root], { limitMs: 120_000 });
      finished(t, r);
      const report = r.stdout.split('\n').filter((line) => !line.startsWith('  pass')).join('\n');
      t.equal(r.code, 0, 'socklab check exits 0', { report, stderr: r.stderr });
      t.match(r.stdout, new RegExp(`${CASES.length} cases: all passed`), `all ${CASES.length} cases pass`);
      t.same(fs.readdirSync(root), ['notes.txt'], "afterwards the root holds the student's file only (the check's files are removed, no temporary file is left)");
      t.notMatch(server.output(), /Traceback/, 'no Python traceback in its output', { output: server.output() });
    },
    ['--port', '0', '--root', root],
  );
});
