/**
 * Limits, for every model, over real sockets:
 * - an over-long line: `500 line too long`, then the server closes (with or
 *   without a LF ever coming), and serves the next client;
 * - an upload over --max-file-size: `552` before any byte is stored (an
 *   inotify watch on the root sees no file created at all), and the bytes the
 *   client sends anyway are parsed as commands;
 * - more bytes than announced: the surplus after the data block is parsed as
 *   requests (even another PUT), garbage gets 500, nothing crashes;
 * - `--max-file-size` limits the file, not one upload: an append that would
 *   take the file past it gets `552` before its `150`, counting the appends
 *   to that file already in progress;
 * - the quota `--max-root-size`: `452` before the data when the upload cannot
 *   fit, counting the uploads in progress (each reserves its size at its
 *   `150`, released when it is discarded; uploads starting at the same instant
 *   cannot overshoot together), at the commit when the root grew behind the
 *   server's back; the file unchanged, no temporary file left; an overwrite
 *   that shrinks the root is allowed;
 * - a full disk: a server process whose file system is made to fail with
 *   ENOSPC (inject-full-disk.cts) visibly before the data, while writing, or at
 *   fsync, answers `452` with the file unchanged and no temporary file; where
 *   an unprivileged user namespace can mount a tiny tmpfs, a real full disk too;
 * - --max-connections: `421 too many connections`, then close;
 * - workers --max-queue: exactly that many connections wait for a thread (and
 *   are served in order), the next one gets `421 too many connections`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { serverOptionsFromArgs } from '../../servers/cli.js';
import { WireClient } from '../helpers/wire.js';
import { delay, eventually, readOrNull, sha256, tempFilesIn, WireFixture } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';
import { makeTempRoot } from '../helpers/server.js';
import type { Tap } from '../helpers/tap.js';

const INJECT = fileURLToPath(new URL('./inject-full-disk.cjs', import.meta.url));

/** PUT, then (after 150) the data; returns both replies ('' when no 150). */
async function put(c: WireClient, line: string, data: Buffer | string): Promise<[string, string]> {
  const first = await c.request(line);
  if (!first.startsWith('150')) return [first, ''];
  await c.send(data);
  return [first, await c.readLine()];
}

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(model, { buffered: true }, async (t) => {
    const start = (t: Tap, overrides: Parameters<typeof WireFixture.start>[2] = {}) => WireFixture.start(t, model, { threads: 2, ...overrides });

    t.test('an over-long line: 500 line too long, then close; the next client is served', async (t) => {
      const f = await start(t);
      let c = await f.open();
      await c.send(`ECHO ${'x'.repeat(2000)}\n`);
      t.equal(await c.readLine(), '500 line too long');
      await c.expectClose();
      c = await f.open('no LF ever');
      await c.send('y'.repeat(5000));
      t.equal(await c.readLine(), '500 line too long', 'without waiting for a LF that never comes');
      await c.expectClose();
      c = await f.open('next');
      t.equal(await c.request('PING'), '200 PONG', 'the next client is served');
      await f.quit(c);
    });

    t.test('an upload over --max-file-size: 552 before any byte is stored; what is sent anyway is parsed as commands', async (t) => {
      const f = await start(t, { maxFileSize: 1024 });
      f.writeFile('keep.txt', 'original');
      const events: string[] = [];
      const watcher = fs.watch(f.root, (event, name) => events.push(`${event} ${name}`));
      t.teardown(() => watcher.close());
      const c = await f.open();
      const pings = Buffer.from('PING\n'.repeat(205)); // 1025 bytes
      // A misbehaving client: the PUT and its data in one write, without waiting for the 150.
      await c.send(Buffer.concat([Buffer.from('PUT big.bin 1025 mode=new\n'), pings]));
      t.match(await c.readLine(), /^552 /, 'PUT over the limit → 552');
      const replies = await c.readLines(205);
      t.ok(replies.every((r) => r === '200 PONG'), 'the 1025 bytes sent anyway were read as 205 PINGs');
      t.match(await c.request('PUT keep.txt 1025 mode=overwrite'), /^552 /, 'an overwrite over the limit → 552 too');
      t.match(await c.request('PUT keep.txt 99999999999999999999999 mode=overwrite'), /^552 /, 'an absurd size → 552');
      await f.quit(c);
      await delay(100); // let inotify deliver anything pending
      t.same(events, [], 'not a single file was created, written or removed in the root');
      t.equal(f.readFile('keep.txt')?.toString(), 'original');
      t.equal(f.readFile('big.bin'), null);
    });

    t.test('more bytes than announced: the surplus is parsed as commands', async (t) => {
      const f = await start(t);
      const c = await f.open();
      t.equal(await c.request('PUT s.txt 5 mode=new'), '150 send 5 bytes');
      await c.send(Buffer.concat([Buffer.from('hello'), Buffer.from('PING\nECHO surplus\n'), Buffer.from([0xff, 0xfe, 0x00, 0x0a]), Buffer.from('PUT t.txt 3 mode=new\nabcQUI')]));
      t.equal(await c.readLine(), `226 s.txt 5 ${sha256('hello')}`, 'exactly the 5 announced bytes were stored');
      t.equal(await c.readLine(), '200 PONG', 'the surplus: PING');
      t.equal(await c.readLine(), '200 surplus', 'ECHO');
      t.match(await c.readLine(), /^500 /, 'binary garbage gets 500');
      t.equal(await c.readLine(), '150 send 3 bytes', 'even a PUT in the surplus...');
      t.equal(await c.readLine(), `226 t.txt 3 ${sha256('abc')}`, '...with its own data');
      await c.send('T\n');
      t.equal(await c.readLine(), '221 bye', 'and a command split across writes');
      await c.expectClose();
      t.equal(f.readFile('s.txt')?.toString(), 'hello');
      t.equal(f.readFile('t.txt')?.toString(), 'abc');
    });

    t.test('--max-root-size: 452 with the file unchanged, before the data when it can be seen', async (t) => {
      const f = await start(t, { maxRootSize: 1000 });
      f.writeFile('a.txt', Buffer.alloc(600, 'a'));
      const c = await f.open();
      t.match(await c.request('PUT b.txt 401 mode=new'), /^452 /, '600 + 401 > 1000: 452 at once, no 150');
      t.equal(f.readFile('b.txt'), null);
      t.same(await put(c, 'PUT b.txt 400 mode=new', Buffer.alloc(400, 'b')), ['150 send 400 bytes', `226 b.txt 400 ${sha256(Buffer.alloc(400, 'b'))}`], 'exactly full is allowed');
      t.match(await c.request('PUT a.txt 601 mode=overwrite'), /^452 /, 'an overwrite that grows the root past the quota');
      t.match(await c.request('PUT b.txt 1 mode=append'), /^452 /, 'an append past the quota');
      t.equal(f.readFile('a.txt')?.length, 600, 'a.txt unchanged');
      t.equal(f.readFile('b.txt')?.length, 400, 'b.txt unchanged');
      t.same(await put(c, 'PUT a.txt 100 mode=overwrite', Buffer.alloc(100, 'A')), ['150 send 100 bytes', `226 a.txt 100 ${sha256(Buffer.alloc(100, 'A'))}`], 'an overwrite that shrinks the root');
      t.match((await put(c, 'PUT b.txt 500 mode=append', Buffer.alloc(500, 'B')))[1], /^226 b\.txt 900 /, 'an append that fits again');
      t.match(await c.request('PUT c.txt 1 mode=new'), /^452 /, 'full: 100 + 900');
      t.same(await put(c, 'PUT c.txt 0 mode=new', ''), ['150 send 0 bytes', `226 c.txt 0 ${sha256('')}`], 'an empty file always fits');
      await f.quit(c);
      t.same(f.tempFiles(), [], 'no temporary file left');
    });

    t.test('--max-file-size limits the file: an append that would take it past the limit gets 552 before its 150', async (t) => {
      const f = await start(t, { maxFileSize: 1024 });
      f.writeFile('log.txt', Buffer.alloc(1000, 'l'));
      const c = await f.open();
      t.match(await c.request('PUT log.txt 25 mode=append'), /^552 /, '1000 + 25 > 1024: 552, no 150');
      t.match(await c.request('PUT log.txt 25 mode=ask'), /^350 log\.txt exists 1000$/);
      t.match(await c.request('APPEND'), /^552 /, 'ask, then APPEND past the limit: 552, no 150');
      t.same(await put(c, 'PUT log.txt 24 mode=append', Buffer.alloc(24, 'm')), ['150 send 24 bytes', `226 log.txt 1024 ${sha256(Buffer.alloc(24, 'm'))}`], 'exactly the limit is allowed');
      t.match(await c.request('PUT log.txt 1 mode=append'), /^552 /, 'full: even one byte more gets 552');
      t.same(await put(c, 'PUT log.txt 1024 mode=overwrite', Buffer.alloc(1024, 'o')), ['150 send 1024 bytes', `226 log.txt 1024 ${sha256(Buffer.alloc(1024, 'o'))}`], 'an overwrite up to the limit is still allowed');
      await f.quit(c);
      t.equal(f.readFile('log.txt')?.length, 1024, 'the file never passed the limit');
      t.same(f.tempFiles(), [], 'no temporary file left');
    });

    if (model !== 'sequential') {
      t.test('--max-file-size counts appends in progress: the second of two appends that together pass the limit gets 552', async (t) => {
        const f = await start(t, { maxFileSize: 1024 });
        f.writeFile('log.txt', Buffer.alloc(400, 'l'));
        const x = await f.open('x');
        const y = await f.open('y');
        t.equal(await x.request('PUT log.txt 600 mode=append'), '150 send 600 bytes', 'x: 400 + 600 fits');
        t.match(await y.request('PUT log.txt 600 mode=append'), /^552 /, 'y: 400 + 600 in progress + 600 does not: 552 before its 150');
        t.equal(await y.request('PUT log.txt 24 mode=append'), '150 send 24 bytes', 'y: 400 + 600 + 24 fits');
        await x.send(Buffer.alloc(600, 'x'));
        t.match(await x.readLine(), /^226 log\.txt 1000 /);
        await y.send(Buffer.alloc(24, 'y'));
        t.match(await y.readLine(), /^226 log\.txt 1024 /);
        t.equal(f.readFile('log.txt')?.length, 1024);
        x.destroy();
        t.match(await y.request('PUT log.txt 0 mode=append'), /^150 /, 'an empty append always fits');
        await y.send('');
        t.match(await y.readLine(), /^226 log\.txt 1024 /);
        await f.quit(y);
        t.same(f.tempFiles(), [], 'no temporary file left');
      });

      t.test('--max-root-size counts uploads in progress: each reserves its size at its 150, released when it is discarded', async (t) => {
        const f = await start(t, { maxRootSize: 1000 });
        f.writeFile('a.txt', Buffer.alloc(400, 'a'));
        const x = await f.open('x');
        const y = await f.open('y');
        t.equal(await x.request('PUT x.bin 400 mode=new'), '150 send 400 bytes', 'x fits (400 + 400)');
        t.match(await y.request('PUT y.bin 201 mode=new'), /^452 /, 'y: 400 stored + 400 in progress + 201 > 1000: 452 before its 150');
        t.match(await y.request('PUT a.txt 601 mode=overwrite'), /^452 /, 'an overwrite counts the uploads in progress too');
        t.equal(f.tempFiles().length, 1, "only x's upload is on disk");
        await x.send(Buffer.alloc(100, 'x'));
        x.destroy(); // x leaves mid-upload: its reservation goes with it
        await eventually(() => f.tempFiles().length === 0, "x's upload is discarded");
        t.same(await put(y, 'PUT y.bin 600 mode=new', Buffer.alloc(600, 'y')), ['150 send 600 bytes', `226 y.bin 600 ${sha256(Buffer.alloc(600, 'y'))}`], 'the room x reserved is free again');
        t.equal(await y.request('PUT z.bin 1 mode=new').then((r) => r.slice(0, 3)), '452', 'and now the root is full');
        await f.quit(y);
        t.equal(f.readFile('x.bin'), null);
        t.same(f.tempFiles(), [], 'no temporary file left');
      });

      t.test('--max-root-size: uploads that start at the same instant cannot overshoot the quota together', async (t) => {
        const f = await start(t, { maxRootSize: 1000, threads: 4 });
        f.writeFile('a.txt', Buffer.alloc(400, 'a'));
        const clients = [await f.open('x'), await f.open('y'), await f.open('z')];
        for (let round = 0; round < 10; round++) {
          // Each fits alone (400 + 400), no two together: the check and the reservation must be one step.
          const firsts = await Promise.all(clients.map((c, i) => c.request(`PUT n${i}.bin 400 mode=new`)));
          const accepted = clients.filter((_, i) => firsts[i]?.startsWith('150'));
          t.equal(accepted.length, 1, `round ${round}: exactly one of three gets its 150 (${firsts.join(' | ')})`);
          t.ok(firsts.every((r) => /^(150|452) /.test(r)), `round ${round}: the others get 452`);
          for (const c of accepted) {
            await c.send(Buffer.alloc(400, 'n'));
            t.match(await c.readLine(), /^226 /);
          }
          const used = f.entries().filter((name) => !name.startsWith('.')).reduce((sum, name) => sum + fs.statSync(f.file(name)).size, 0);
          t.ok(used <= 1000, `round ${round}: ${used} bytes stored, within the quota`);
          for (let i = 0; i < clients.length; i++) fs.rmSync(f.file(`n${i}.bin`), { force: true });
        }
        for (const c of clients) await f.quit(c);
        t.same(f.tempFiles(), [], 'no temporary file left');
      });

      t.test('--max-root-size at the commit: the root grew behind the server since the 150', async (t) => {
        const f = await start(t, { maxRootSize: 1000 });
        f.writeFile('a.txt', Buffer.alloc(400, 'a'));
        f.writeFile('y.bin', 'old y');
        const y = await f.open('y');
        t.equal(await y.request('PUT y.bin 400 mode=overwrite'), '150 send 400 bytes', 'y fits (400 + 5 - 5 + 400)');
        f.writeFile('other.bin', Buffer.alloc(400, 'o')); // put there by someone else, not through the server
        await y.send(Buffer.alloc(400, 'y'));
        t.match(await y.readLine(), /^452 /, 'y no longer fits at its commit: 452 after the data');
        t.equal(f.readFile('y.bin')?.toString(), 'old y', 'y.bin unchanged');
        await f.quit(y);
        t.same(f.tempFiles(), [], 'no temporary file left');
      });
    }

    t.test('--max-connections: 421 too many connections, then close', async (t) => {
      const f = await start(t, { maxConnections: 3, threads: 3 });
      const held = [await f.open('held 1')];
      for (let i = 2; i <= 3; i++) {
        const c = await f.connect(`held ${i}`);
        if (model !== 'sequential') await c.readLine();
        held.push(c);
      }
      await eventually(() => f.acceptedConnections() === 3, 'the three held connections are taken in');
      const extra = await f.connect('one too many');
      t.equal(await extra.readLine(), '421 too many connections');
      await extra.expectClose();
      t.equal(await held[0]?.request('PING'), '200 PONG', 'the held connections are unaffected');
    });
  });
}

t.test('workers --threads 1 --max-queue 2: exactly two connections wait, the next gets 421', async (t) => {
  const f = await WireFixture.start(t, 'workers', { threads: 1, maxQueue: 2 });
  const served = await f.open('holds the thread');
  const queued: WireClient[] = [];
  for (let i = 1; i <= 2; i++) {
    const c = await f.connect(`queued ${i}`);
    await eventually(() => f.acceptedConnections() === 1 + i, `queued ${i} is taken in`);
    // Sent while it waits: served in order once a thread is free, not refused.
    await c.sendLine('PING');
    queued.push(c);
  }
  const extra = await f.connect('one too many');
  t.equal(await extra.readLine(), '421 too many connections', 'the third waiting connection is refused at once');
  await extra.expectClose();
  for (const c of queued) t.equal(c.buffered === 0 && !c.isEnded, true, `${c.label} still waits: no greeting, no 421, not closed`);

  await f.quit(served);
  for (const c of queued) {
    t.same(await c.readLines(2), [f.greeting, '200 PONG'], `${c.label} is served when the thread is free`);
    await f.quit(c);
  }
  const after = await f.open('after the queue drained');
  t.equal(await after.request('PING'), '200 PONG', 'the queue frees its places when its clients are served');
});

t.test('--max-root-size on the command line: byte units, 0 = no quota', async (t) => {
  const args = { host: '127.0.0.1', port: 0, root: '.', 'max-file-size': '1MiB', 'idle-timeout': 0, 'min-upload-rate': '1KiB', 'max-connections': 10, threads: 1, 'max-queue': 0, grace: 1 };
  t.equal(serverOptionsFromArgs({ ...args, 'max-root-size': '2KiB' }, () => {}).maxRootSize, 2048);
  t.equal(serverOptionsFromArgs({ ...args, 'max-root-size': '0' }, () => {}).maxRootSize, 0);
  t.throws(() => serverOptionsFromArgs({ ...args, 'max-root-size': 'lots' }, () => {}), /--max-root-size/);
  t.equal(serverOptionsFromArgs({ ...args, 'max-root-size': '0' }, () => {}).minUploadRate, 1024, '--min-upload-rate takes units too');
  t.throws(() => serverOptionsFromArgs({ ...args, 'max-root-size': '0', 'min-upload-rate': 'slow' }, () => {}), /--min-upload-rate/);
});

// ---------------------------------------------------------------------------
// A full disk, and the quota through the real binary

async function fullDiskServer(t: Tap, model: ServerModelName, how: string): Promise<{ server: ServerProcess; root: string }> {
  const root = makeTempRoot(`socklab-full-${model}-`);
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'keep.txt'), 'original');
  const env: Record<string, string> = how === 'quota' ? {} : { NODE_OPTIONS: `--require ${INJECT}`, SOCKLAB_FAKE_FULL_DISK: how, SOCKLAB_FAKE_FULL_DISK_ROOT: root };
  const server = await ServerProcess.start(model, { root, args: ['--threads', '2', ...(how === 'quota' ? ['--max-root-size', '1KiB'] : [])], env });
  t.teardown(() => server.crash());
  return { server, root };
}

for (const model of SERVER_MODELS) {
  t.test(`${model}: a full disk and the quota give 452, the file unchanged, no temporary file (server process)`, async (t) => {
    for (const [how, when] of [
      ['visible', 'before the data (statfs shows no room)'],
      ['write', 'after the data (ENOSPC while writing)'],
      ['fsync', 'after the data (ENOSPC at fsync)'],
      ['quota', 'before the data (--max-root-size 1KiB)'],
    ] as const) {
      const { server, root } = await fullDiskServer(t, model, how);
      const c = await WireClient.connect(server.port);
      t.teardown(() => c.destroy());
      await c.readLine();
      for (const mode of ['overwrite', 'append']) {
        const [first, second] = await put(c, `PUT keep.txt 2000 mode=${mode}`, Buffer.alloc(2000, 'z'));
        const reply = how === 'visible' || how === 'quota' ? first : second;
        t.match(reply, /^452 /, `${how}, ${mode}: 452 ${when}`);
      }
      t.equal(await c.request('PING'), '200 PONG', `${how}: the session goes on`);
      t.equal(readOrNull(root, 'keep.txt')?.toString(), 'original', `${how}: keep.txt unchanged`);
      t.same(tempFilesIn(root), [], `${how}: no temporary file left`);
    }
  });
}

/** Whether this machine lets an unprivileged user namespace mount a tmpfs (Linux with user namespaces). */
function canMountTmpfs(): boolean {
  const probe = spawnSync('unshare', ['-rm', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k none "$d" && umount "$d"; rmdir "$d"'], { timeout: 5000 });
  return probe.status === 0;
}

t.test('a real full disk: a 256 KiB tmpfs in a private mount namespace (skipped where it cannot be mounted)', { skip: canMountTmpfs() ? false : 'unshare -rm with a tmpfs mount is not available here' }, async (t) => {
  for (const model of SERVER_MODELS) {
    const root = makeTempRoot(`socklab-tmpfs-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    // unshare execs sh, which execs node: the pid is the server's, and /proc/<pid>/root shows its mounts.
    const script = `mount -t tmpfs -o size=256k none "$1" && shift && exec "$@"`;
    const server = await ServerProcess.start(model, { root, args: ['--threads', '2'], launcher: ['unshare', '-rm', 'sh', '-c', script, 'sh', root] });
    t.teardown(() => server.crash());
    const inside = path.join(`/proc/${server.pid}/root`, root);
    const c = await WireClient.connect(server.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    t.match((await put(c, 'PUT keep.txt 150000 mode=new', Buffer.alloc(150_000, 'k')))[1], /^226 /, `${model}: 150 kB fit`);
    t.match((await c.request('PUT big.bin 200000 mode=new')), /^452 /, `${model}: 200 kB more cannot fit: 452 before the data`);
    t.match((await put(c, 'PUT keep.txt 100000 mode=append', Buffer.alloc(100_000, 'a')))[0], /^452 /, `${model}: an append of 100 kB (received, then written in place: 200 kB): 452`);
    if (model !== 'sequential') {
      // Each fits alone, not both: the first's 150 reserves its size (PROTOCOL.md), so the second is refused before
      // its data instead of finding the disk full while writing (and then both might fail).
      const other = await WireClient.connect(server.port);
      t.teardown(() => other.destroy());
      await other.readLine();
      // The second connection's own small upload first: in workers, its thread now holds a reading from before a.bin.
      t.match((await put(other, 'PUT warm.txt 1 mode=new', 'w'))[1], /^226 /);
      t.equal(await c.request('PUT a.bin 70000 mode=new'), '150 send 70000 bytes');
      t.equal(await other.request('PUT b.bin 70000 mode=new'), '452 out of space', `${model}: the second: 452 before its data, the first's reservation counted`);
      await c.send(Buffer.alloc(70_000, 'a'));
      t.match(await c.readLine(), /^226 /, `${model}: the first commits`);
      t.notOk(fs.existsSync(path.join(inside, 'b.bin')), `${model}: b.bin not created`);
    }
    t.equal(fs.readFileSync(path.join(inside, 'keep.txt')).length, 150_000, `${model}: keep.txt unchanged`);
    t.same(tempFilesIn(inside), [], `${model}: no temporary file left`);
  }
});
