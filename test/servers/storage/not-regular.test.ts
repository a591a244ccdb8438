/**
 * Names that are not regular files, for every model, over real sockets: a
 * directory, a symbolic link (to a file in the root, and dangling), a Unix
 * socket and a FIFO, each under a valid name. PROTOCOL.md ("Names that are not
 * regular files"): LIST leaves them out, STAT and GET answer `550` as for an
 * absent name, and PUT answers `554` in every mode before any data (never
 * `150`, never a `451` after the data); the thing itself is left exactly as it
 * was, and nothing is written through a link.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { SERVER_MODELS } from '../../../servers/index.js';
import { WireFixture } from '../../helpers/wire-fixture.js';
import { requireSystemTools } from '../../helpers/system-tool.js';

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(model, async (t) => {
    if (!requireSystemTools(t, 'mkfifo')) return;
    const f = await WireFixture.start(t, model, { threads: 2 });
    f.writeFile('keep.txt', 'kept');
    fs.mkdirSync(f.file('dir.d'));
    fs.symlinkSync('keep.txt', f.file('link.txt'));
    fs.symlinkSync('/nonexistent/socklab-target', f.file('dangling.txt'));
    const unixServer = net.createServer();
    await new Promise<void>((resolve) => unixServer.listen(f.file('sock'), resolve));
    t.teardown(() => new Promise<void>((resolve) => unixServer.close(() => resolve())));
    t.equal(spawnSync('mkfifo', [f.file('fifo')]).status, 0, 'mkfifo');
    const things = ['dir.d', 'link.txt', 'dangling.txt', 'sock', 'fifo'];
    const kinds = () => things.map((name) => {
      const stats = fs.lstatSync(f.file(name));
      return `${name}:${stats.isDirectory() ? 'dir' : stats.isSymbolicLink() ? `link→${fs.readlinkSync(f.file(name))}` : stats.isSocket() ? 'socket' : stats.isFIFO() ? 'fifo' : 'other'}`;
    });
    const before = kinds();

    const c = await f.open();
    t.same(await c.request('LIST').then(async (first) => [first, ...(await c.readLines(Number(first.split(' ')[1])))]).then((lines) => lines.map((l) => l.split(' ')[0])), ['211', 'keep.txt'], 'LIST shows the regular file only');
    for (const name of things) {
      t.match(await c.request(`STAT ${name}`), /^550 /, `STAT ${name}: 550`);
      t.match(await c.request(`GET ${name}`), /^550 /, `GET ${name}: 550`);
      for (const mode of ['new', 'overwrite', 'append', 'ask']) {
        t.match(await c.request(`PUT ${name} 5 mode=${mode}`), /^554 /, `PUT ${name} mode=${mode}: 554 before any data`);
      }
    }
    t.equal(await c.request('PING'), '200 PONG', 'the session is in step (no 150 was given, so no data was owed)');
    await f.quit(c);
    t.same(kinds(), before, 'each thing is as it was');
    t.equal(f.readFile('keep.txt')?.toString(), 'kept', 'nothing was written through the link');
    t.same(f.tempFiles(), [], 'no temporary file');
  });
}
