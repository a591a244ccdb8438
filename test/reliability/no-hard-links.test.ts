/**
 * A root on a file system without hard links (inject-no-hard-links.cts makes
 * link() fail with EPERM there, as FAT or a virtual machine's shared folder
 * does): `new` uploads and appends to an absent name, which are linked into
 * place so that they never replace a file another server created meanwhile,
 * are renamed into place instead, on every model, through the real binary.
 * An append to an existing file takes the name's intent record (the lock
 * across servers), which is linked into place too: there it is created in
 * place instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { makeTempRoot } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';
import { sha256, tempFilesIn } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';

const INJECT = fileURLToPath(new URL('./inject-no-hard-links.cjs', import.meta.url));

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: new uploads and appends to absent names land on a file system without hard links`, async (t) => {
    const root = makeTempRoot(`socklab-no-links-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    fs.writeFileSync(path.join(root, 'taken.txt'), 'original');
    const env = { NODE_OPTIONS: `--require ${INJECT}`, SOCKLAB_FAKE_NO_LINKS_ROOT: root };
    const server = await ServerProcess.start(model, { root, args: ['--threads', '2'], env });
    t.teardown(() => server.crash());
    const c = await WireClient.connect(server.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    for (const [name, mode] of [['new.txt', 'new'], ['appended.txt', 'append']] as const) {
      t.equal(await c.request(`PUT ${name} 5 mode=${mode}`), '150 send 5 bytes');
      await c.send('hello');
      t.equal(await c.readLine(), `226 ${name} 5 ${sha256('hello')}`, `${mode}: stored`);
      t.equal(fs.readFileSync(path.join(root, name), 'utf8'), 'hello', `${mode}: the file holds the upload`);
    }
    for (const round of [1, 2]) {
      t.equal(await c.request('PUT taken.txt 1 mode=append'), '150 send 1 bytes');
      await c.send('!');
      t.match(await c.readLine(), new RegExp(`^226 taken\\.txt ${8 + round} `), `append ${round} to an existing file: stored`);
    }
    t.equal(fs.readFileSync(path.join(root, 'taken.txt'), 'utf8'), 'original!!', 'in place, after the old content');
    fs.writeFileSync(path.join(root, 'taken.txt'), 'original');
    t.equal(await c.request('PUT taken.txt 5 mode=new'), '554 taken.txt exists', 'new to a taken name is still refused');
    t.equal(fs.readFileSync(path.join(root, 'taken.txt'), 'utf8'), 'original');
    t.same(tempFilesIn(root), [], 'no temporary file left');
  });
}
