/**
 * Two servers on one root (a rolling restart) append to one name, and the
 * one that was first to ask dies just as it takes the name's intent record,
 * after the other's append was acknowledged. The start-up that undoes the
 * dead server's append must not cut off the other's: the size a record
 * holds is read only once the record is held. For every model, with real
 * server processes; inject-crash-at-intent.cts stops the first server at
 * the link of its record and SIGKILLs it right after.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { makeTempRoot } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';
import { eventually, sha256, tempFilesIn } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';

const INJECT = fileURLToPath(new URL('./inject-crash-at-intent.cjs', import.meta.url));

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: a server that dies taking its intent record, after another server's append to the name, loses none of that append`, async (t) => {
    const root = makeTempRoot(`socklab-append-race-${model}-`);
    const mark = path.join(os.tmpdir(), `socklab-intent-mark-${process.pid}-${model}`);
    t.teardown(() => {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(mark, { force: true });
    });
    const file = path.join(root, 'shared.log');
    const old = Buffer.from('old content\n');
    fs.writeFileSync(file, old);
    const args = ['--threads', '2', '--quiet'];

    const first = await ServerProcess.start(model, {
      root,
      args,
      env: { NODE_OPTIONS: `--require ${INJECT}`, SOCKLAB_INTENT_CRASH_ROOT: root, SOCKLAB_INTENT_CRASH_MARK: mark },
    });
    t.teardown(() => first.crash());
    const second = await ServerProcess.start(model, { root, args });
    t.teardown(() => second.crash());

    const slow = await WireClient.connect(first.port);
    t.teardown(() => slow.destroy());
    await slow.readLine();
    const lost = Buffer.from('from the server that dies\n');
    t.equal(await slow.request(`PUT shared.log ${lost.length} mode=append`), `150 send ${lost.length} bytes`);
    await slow.send(lost);
    await eventually(() => fs.existsSync(mark), 'the first server is about to take the intent record', 15_000);

    const other = await WireClient.connect(second.port);
    t.teardown(() => other.destroy());
    await other.readLine();
    const kept = Buffer.from('from the other server, acknowledged\n');
    t.equal(await other.request(`PUT shared.log ${kept.length} mode=append`), `150 send ${kept.length} bytes`);
    await other.send(kept);
    t.match(await other.readLine(), /^226 /, "the other server's append is acknowledged");
    const acknowledged = Buffer.concat([old, kept]);
    t.ok(fs.readFileSync(file).equals(acknowledged), 'and in the file');
    await second.stop();

    fs.rmSync(mark);
    t.equal((await first.exited).signal, 'SIGKILL', 'the first server died with its record just taken');
    t.ok(tempFilesIn(root).some((name) => name.startsWith('.socklab-tmp-append-')), 'leaving the record on disk');

    const restarted = await ServerProcess.start(model, { root, args });
    t.teardown(() => restarted.crash());
    t.ok(fs.readFileSync(file).equals(acknowledged), "the start-up undid the dead server's append without cutting off the acknowledged one");
    t.same(tempFilesIn(root), [], 'the record and the temporary files are gone');
    const check = await WireClient.connect(restarted.port);
    t.teardown(() => check.destroy());
    await check.readLine();
    t.equal(await check.request('STAT shared.log'), `213 ${acknowledged.length} ${sha256(acknowledged)}`, 'and that is what it serves');
  });
}
