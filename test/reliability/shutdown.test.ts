/**
 * SIGTERM to a server process (`socklab server <model>`), for every model:
 * - during an upload: new connections are refused, the upload in progress
 *   finishes with `226`, then gets `421 shutting down` like the idle session
 *   (or, with sequential, the waiting one); the process exits 0 well within
 *   its grace time;
 * - a second SIGTERM aborts what is left at once: the upload is discarded
 *   (the file unchanged, no temporary file), and the process exits 0;
 * - the end of the grace time does the same for an upload that stalls, and
 *   says so first: `421 shutting down`, then the close.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { WireClient } from '../helpers/wire.js';
import { makeTempRoot } from '../helpers/server.js';
import { eventually, readOrNull, sha256, tempFilesIn } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';
import type { Tap } from '../helpers/tap.js';

async function serverWith(t: Tap, model: ServerModelName, grace: number): Promise<ServerProcess> {
  const root = makeTempRoot(`socklab-shutdown-${model}-`);
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'keep.txt'), 'original');
  const server = await ServerProcess.start(model, { root, args: ['--grace', String(grace), '--threads', '2'] });
  t.teardown(() => server.crash());
  return server;
}

async function open(t: Tap, server: ServerProcess, greeted = true): Promise<WireClient> {
  const c = await WireClient.connect(server.port);
  t.teardown(() => c.destroy());
  if (greeted) {
    const greeting = await c.readLine();
    if (!greeting.startsWith('220 ')) throw new Error(`greeting: ${greeting}`);
  }
  return c;
}

/** How a connection attempt ends while the server shuts down: refused at TCP level, or 421. */
async function tryConnect(port: number): Promise<string> {
  try {
    const late = await WireClient.connect(port, { timeoutMs: 3000 });
    try {
      return await late.readLine(3000);
    } finally {
      late.destroy();
    }
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
}

/** Starts an upload of `data` to `name` and sends the first `sent` bytes. */
async function startUpload(c: WireClient, line: string, data: Buffer, sent: number): Promise<void> {
  const reply = await c.request(line);
  if (reply !== `150 send ${data.length} bytes`) throw new Error(`${line}: ${reply}`);
  await c.send(data.subarray(0, sent));
}

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(model, { buffered: true }, async (t) => {
    t.test('SIGTERM: new connections refused, the upload finishes with 226, idle sessions get 421, exit 0 within the grace time', async (t) => {
      const grace = 8;
      const server = await serverWith(t, model, grace);
      const data = Buffer.alloc(200_000, 'u');
      const uploader = await open(t, server);
      await startUpload(uploader, `PUT up.bin ${data.length} mode=new`, data, 50_000);
      // With sequential this one waits behind the upload, ungreeted; else it is an idle session.
      const idle = await open(t, server, model !== 'sequential');
      await server.waitForLine(/new connection from .*\(#2\)/, 5000);
      const signalled = Date.now();
      server.kill('SIGTERM');
      await server.waitForLine(/SIGTERM: stopping/, 5000);
      t.equal(await idle.readLine(), '421 shutting down', model === 'sequential' ? 'the waiting connection: 421 shutting down' : 'the idle session: 421 shutting down');
      await idle.expectClose();
      t.match(await tryConnect(server.port), /^(ECONNREFUSED|ECONNRESET|421 shutting down)$/, 'a new connection is refused');
      await uploader.send(data.subarray(50_000));
      t.equal(await uploader.readLine(), `226 up.bin ${data.length} ${sha256(data)}`, 'the upload in progress finishes');
      t.equal(await uploader.readLine(), '421 shutting down', 'then its session ends too');
      await uploader.expectClose();
      const exit = await server.waitExit(grace * 1000);
      const took = (Date.now() - signalled) / 1000;
      t.same(exit, { code: 0, signal: null }, `exit 0, ${took.toFixed(1)} s after SIGTERM (grace ${grace} s)`);
      t.ok(took < grace, 'within the grace time');
      t.ok(readOrNull(server.root, 'up.bin')?.equals(data), 'the finished upload is on disk');
    });

    t.test('a second SIGTERM aborts the upload in progress: the file unchanged, no temporary file, exit 0', async (t) => {
      const server = await serverWith(t, model, 60);
      const uploader = await open(t, server);
      const data = Buffer.alloc(100_000, 'x');
      await startUpload(uploader, `PUT keep.txt ${data.length} mode=append`, data, 30_000);
      const signalled = Date.now();
      server.kill('SIGTERM');
      await server.waitForLine(/SIGTERM: stopping/, 5000);
      server.kill('SIGTERM');
      await server.waitForLine(/SIGTERM again: aborting/, 5000);
      const exit = await server.waitExit(10_000);
      t.same(exit, { code: 0, signal: null }, `exit 0 after ${((Date.now() - signalled) / 1000).toFixed(1)} s, not the 60 s of grace`);
      await eventually(() => uploader.isEnded, 'the uploader is disconnected');
      t.notMatch(uploader.buffered > 0 ? await uploader.readLine() : '', /^226/, 'no 226 for the aborted upload');
      t.equal(readOrNull(server.root, 'keep.txt')?.toString(), 'original', 'keep.txt unchanged');
      t.same(tempFilesIn(server.root), [], 'no temporary file left');
    });

    t.test('the end of the grace time aborts a stalled upload with 421 shutting down: the file unchanged, no temporary file, exit 0', async (t) => {
      const grace = 1;
      const server = await serverWith(t, model, grace);
      const uploader = await open(t, server);
      await startUpload(uploader, 'PUT keep.txt 100000 mode=overwrite', Buffer.alloc(100_000, 'y'), 10_000);
      const signalled = Date.now();
      server.kill('SIGTERM');
      await server.waitForLine(/grace time over: aborting 1 sessions/, 5000);
      t.equal(await uploader.readLine(), '421 shutting down', 'the uploader is told why, before the close');
      await uploader.expectClose();
      const exit = await server.waitExit(10_000);
      t.same(exit, { code: 0, signal: null }, `exit 0 after ${((Date.now() - signalled) / 1000).toFixed(1)} s (grace ${grace} s)`);
      t.equal(readOrNull(server.root, 'keep.txt')?.toString(), 'original', 'keep.txt unchanged');
      t.same(tempFilesIn(server.root), [], 'no temporary file left');
    });
  });
}
