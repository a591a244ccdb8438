/**
 * Hostile names and symbolic links, over real sockets, for every model.
 *
 * - Every name of the table in hostile-bytes.ts (traversal, absolute paths,
 *   backslashes, NUL and control characters, bidi overrides, non-NFC forms,
 *   over-long names, dot names, the server's own temporary-file prefix) gets
 *   `553` from STAT, GET and PUT in every mode, and touches nothing: the root,
 *   a sentinel directory next to it and a file beside it are exactly as they
 *   were (names, sizes, contents, modification times). Raw bytes that are not
 *   UTF-8 in a name make the whole line invalid: `500`, and nothing touched.
 * - A symbolic link in the root pointing outside it is never followed: STAT
 *   and GET say `550`, LIST does not show it, a PUT in any mode gets `554`
 *   before any data and leaves the link as it is, a dangling link does not
 *   create its target, and nothing outside the root changes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import type { WireClient } from '../helpers/wire.js';
import { WireFixture } from '../helpers/wire-fixture.js';
import { HOSTILE_NAMES } from './hostile-bytes.js';

/** Everything under `dir`: path → kind, size, content hash, mtime, link target. Any write shows up as a difference. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const relPath = path.join(rel, name);
      const full = path.join(dir, relPath);
      const stats = fs.lstatSync(full);
      if (stats.isSymbolicLink()) out[relPath] = `link → ${fs.readlinkSync(full)}`;
      else if (stats.isDirectory()) {
        out[relPath] = `dir mtime ${stats.mtimeMs}`;
        walk(relPath);
      } else out[relPath] = `file ${stats.size} ${createHash('sha256').update(fs.readFileSync(full)).digest('hex')} mtime ${stats.mtimeMs}`;
    }
  };
  walk('');
  return out;
}

/** Sends one request line as raw bytes and returns the reply; a 150 (a name let through) is answered with data, so the stream stays in sync. */
async function ask(c: WireClient, line: Buffer, size: number): Promise<string> {
  await c.send(Buffer.concat([line, Buffer.from('\n')]));
  const reply = await c.readLine();
  if (/^150 send /.test(reply)) {
    await c.send(Buffer.alloc(size, 0x21));
    return `${reply} / ${await c.readLine()}`;
  }
  if (/^150 \d+$/.test(reply)) {
    await c.readBytes(Number(reply.slice(4)));
    return `${reply} / ${await c.readLine()}`;
  }
  if (/^350 /.test(reply)) return `${reply} / ${await c.request('CANCEL')}`;
  return reply;
}

function setUpOutside(f: WireFixture): void {
  fs.mkdirSync(path.join(f.outer, 'sentinel'));
  fs.writeFileSync(path.join(f.outer, 'sentinel', 'secret.txt'), 'do not touch');
  fs.writeFileSync(path.join(f.outer, 'outside.txt'), 'outside');
  f.writeFile('inside.txt', 'inside');
}

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(model, { buffered: true }, async (t) => {
    t.test(`hostile names: ${HOSTILE_NAMES.length} names × STAT, GET, PUT in 4 modes all get 553 and touch nothing`, async (t) => {
      const f = await WireFixture.start(t, model, { threads: 2 });
      setUpOutside(f);
      const before = snapshot(f.outer);
      const c = await f.open();
      const requests = (name: Buffer): Buffer[] => [
        Buffer.concat([Buffer.from('STAT '), name]),
        Buffer.concat([Buffer.from('GET '), name]),
        ...['ask', 'new', 'overwrite', 'append'].map((mode) => Buffer.concat([Buffer.from('PUT '), name, Buffer.from(` 5 mode=${mode}`)])),
      ];
      for (const { name, why } of HOSTILE_NAMES) {
        const results = [];
        for (const request of requests(Buffer.from(name, 'utf8'))) results.push(await ask(c, request, 5));
        const wrong = results.filter((r) => !/^553( |$)/.test(r));
        t.same(wrong, [], `${why}: ${JSON.stringify(name).slice(0, 40)} → 553 for STAT, GET and PUT`);
      }
      for (const [bytes, why] of [
        [Buffer.from([0x2e, 0x2e, 0xc0, 0xaf, 0x78]), 'overlong UTF-8 "/"'],
        [Buffer.from([0x61, 0xff, 0x62]), 'a byte that is never UTF-8'],
        [Buffer.from([0xed, 0xa0, 0x80]), 'an encoded surrogate'],
      ] as const) {
        const results = [];
        for (const request of requests(bytes)) results.push(await ask(c, request, 5));
        t.same(results.filter((r) => !/^500( |$)/.test(r)), [], `${why} in a name: the line is not UTF-8, 500`);
      }
      t.equal(await c.request('PING'), '200 PONG', 'the session is still in sync');
      await f.quit(c);
      t.same(snapshot(f.outer), before, 'the root, the sentinel directory and the file next to the root are exactly as they were');
    });

    t.test('a symbolic link in the root pointing outside is never followed, for reading or writing', async (t) => {
      const f = await WireFixture.start(t, model, { threads: 2 });
      const outside = path.join(f.outer, 'outside');
      fs.mkdirSync(outside);
      const secret = path.join(outside, 'secret.txt');
      fs.writeFileSync(secret, 'secret');
      fs.symlinkSync('../outside/secret.txt', f.file('rel-link'));
      fs.symlinkSync(secret, f.file('abs-link'));
      fs.symlinkSync('../outside/secret.txt', f.file('app-link'));
      fs.symlinkSync('../outside/secret.txt', f.file('ask-link'));
      fs.symlinkSync('../outside/secret.txt', f.file('new-link'));
      fs.symlinkSync('../outside/created.txt', f.file('dangling'));
      fs.symlinkSync('../outside', f.file('dir-link'));
      const outsideBefore = snapshot(outside);
      const c = await f.open();

      for (const name of ['rel-link', 'abs-link', 'dangling', 'dir-link']) {
        t.match(await c.request(`STAT ${name}`), /^550( |$)/, `STAT ${name} → 550`);
        t.match(await c.request(`GET ${name}`), /^550( |$)/, `GET ${name} → 550`);
      }
      t.match(await c.request('GET dir-link/secret.txt'), /^553( |$)/, 'through a directory link: not a name, 553');
      t.equal(await c.request('LIST'), '211 0', 'LIST shows no link');

      // Every upload sends "!!!!!" (ask() sends size bytes of "!").
      const upload = (name: string, mode: string): Promise<string> => ask(c, Buffer.from(`PUT ${name} 5 mode=${mode}`), 5);
      // A link is not a regular file: every mode is refused before any data, the link left as it is (PROTOCOL.md).
      for (const [name, mode] of [['abs-link', 'overwrite'], ['app-link', 'append'], ['ask-link', 'ask'], ['dangling', 'overwrite'], ['new-link', 'new'], ['dir-link', 'overwrite']] as const) {
        t.equal(await upload(name, mode), `554 ${name} exists and is not a regular file`, `${mode} onto ${name}: 554 before any data`);
        t.ok(fs.lstatSync(f.file(name)).isSymbolicLink(), `${name} is still the link`);
      }
      t.match(await c.request('STAT rel-link'), /^550( |$)/, 'rel-link is still not served');
      await f.quit(c);

      t.equal(fs.readFileSync(secret, 'utf8'), 'secret', 'the file outside the root is unchanged');
      t.same(snapshot(outside), outsideBefore, 'nothing outside the root was created or changed (the dangling target was not created)');
      t.same(f.tempFiles(), [], 'no temporary file left');
    });
  });
}
