/**
 * An append in place cut short by a crash, for every model, deterministically:
 * the server process writes appends slowly (inject-slow-append.cts), so the
 * test can SIGKILL it while a 1 MiB append to an 8 MiB file is half-written
 * into the file. The intent record is then on disk; the restarted server cuts
 * the file back to exactly its old content before serving, and removes the
 * record. (crash.test.ts kills at random instants; this kills where an append
 * in place is most fragile, every time.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { makeTempRoot } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';
import { eventually, sha256, tempFilesIn } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';

const INJECT = fileURLToPath(new URL('./inject-slow-append.cjs', import.meta.url));
const OLD_BYTES = 8 * 1024 * 1024;
const APPEND_BYTES = 1024 * 1024;

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: SIGKILL mid-append in place; the restart cuts the file back to its old content`, async (t) => {
    const root = makeTempRoot(`socklab-append-crash-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    const file = path.join(root, 'big.log');
    const old = Buffer.alloc(OLD_BYTES, 'o');
    fs.writeFileSync(file, old);
    const server = await ServerProcess.start(model, {
      root,
      args: ['--threads', '2', '--quiet'],
      env: { NODE_OPTIONS: `--require ${INJECT}`, SOCKLAB_SLOW_APPEND_ROOT: root },
    });
    t.teardown(() => server.crash());
    const c = await WireClient.connect(server.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    t.equal(await c.request(`PUT big.log ${APPEND_BYTES} mode=append`), `150 send ${APPEND_BYTES} bytes`);
    await c.send(Buffer.alloc(APPEND_BYTES, 'n'));
    await eventually(() => fs.statSync(file).size > OLD_BYTES, 'the append is being written into the file', 15_000);
    await server.crash();
    const cut = fs.statSync(file).size;
    t.ok(cut > OLD_BYTES && cut < OLD_BYTES + APPEND_BYTES, `killed half-way: the file holds ${cut - OLD_BYTES} of the ${APPEND_BYTES} new bytes`);
    t.ok(tempFilesIn(root).some((name) => name.startsWith('.socklab-tmp-append-')), 'the intent record is on disk');

    const restarted = await ServerProcess.start(model, { root, args: ['--threads', '2', '--quiet'] });
    t.teardown(() => restarted.crash());
    t.equal(fs.statSync(file).size, OLD_BYTES, 'the restart cut the file back to its old size');
    t.ok(fs.readFileSync(file).equals(old), 'exactly the old content');
    t.same(tempFilesIn(root), [], 'the record and the temporary files are gone');
    const next = await WireClient.connect(restarted.port);
    t.teardown(() => next.destroy());
    await next.readLine();
    t.equal(await next.request('STAT big.log'), `213 ${OLD_BYTES} ${sha256(old)}`, 'and that is what it serves');
  });
}
