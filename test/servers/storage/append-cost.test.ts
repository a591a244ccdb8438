/**
 * An append costs what its new bytes cost, for every model: a 1-byte append to
 * a 32 MiB file, on a server process, reads and writes well under a megabyte
 * (Linux's /proc/<pid>/io counts every byte the process's threads read and
 * wrote through system calls), and leaves the file the same inode, written in
 * place. Copying the old content into a new file, as appends did before, moves
 * all 32 MiB twice. Atomicity across a crash is crash.test.ts's business.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS } from '../../../servers/index.js';
import { makeTempRoot } from '../../helpers/server.js';
import { WireClient } from '../../helpers/wire.js';
import { sha256 } from '../../helpers/wire-fixture.js';
import { ServerProcess } from '../../reliability/processes.js';

const FILE_BYTES = 32 * 1024 * 1024;
/** Generous: the append itself, its intent record, the replies; nothing near the file's size. */
const MOST_IO_BYTES = 1024 * 1024;

function ioBytes(pid: number): { read: number; written: number } {
  const text = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1]);
  return { read: field('rchar'), written: field('wchar') };
}

const procIo = fs.existsSync(`/proc/${process.pid}/io`);
t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: a 1-byte append to a 32 MiB file moves bytes in proportion to 1 byte, in place`, { skip: procIo ? false : 'needs /proc/<pid>/io (Linux)' }, async (t) => {
    const root = makeTempRoot(`socklab-append-cost-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    const file = path.join(root, 'big.log');
    fs.writeFileSync(file, Buffer.alloc(FILE_BYTES, 'l'));
    const inode = fs.statSync(file).ino;
    const server = await ServerProcess.start(model, { root, args: ['--threads', '2', '--quiet'] });
    t.teardown(() => server.crash());
    const c = await WireClient.connect(server.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    t.equal(await c.request('PING'), '200 PONG');
    const before = ioBytes(server.pid);
    t.equal(await c.request('PUT big.log 1 mode=append'), '150 send 1 bytes');
    await c.send('!');
    t.equal(await c.readLine(), `226 big.log ${FILE_BYTES + 1} ${sha256('!')}`);
    const after = ioBytes(server.pid);
    t.ok(after.read - before.read < MOST_IO_BYTES, `read ${after.read - before.read} bytes for the append`);
    t.ok(after.written - before.written < MOST_IO_BYTES, `wrote ${after.written - before.written} bytes for the append`);
    t.equal(fs.statSync(file).ino, inode, 'the same file, appended in place');
    const content = fs.readFileSync(file);
    t.equal(content.length, FILE_BYTES + 1);
    t.equal(content.at(-1), '!'.charCodeAt(0));
    t.equal(content.at(-2), 'l'.charCodeAt(0));
  });
}
