/**
 * A rolling restart, for every model, with real server processes: the old
 * server gets SIGTERM and stops listening at once, a new one starts on the
 * same port and root during the old one's grace time, and the old one's
 * upload in progress still finishes (`226`, the file whole): the new server's
 * start-up removes only the temporary files no live server owns. The same
 * start-up does remove those of a server that is gone (SIGKILLed).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { makeTempRoot } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';
import { delay, sha256, tempFilesIn } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';
import type { Tap } from '../helpers/tap.js';

const UPLOAD_BYTES = 200_000;

/** A new server on `port`, retrying while the old one may still hold it. */
async function startOn(t: Tap, model: (typeof SERVER_MODELS)[number], root: string, port: number): Promise<ServerProcess> {
  for (let attempt = 0; ; attempt++) {
    try {
      const server = await ServerProcess.start(model, { root, port, args: ['--threads', '2', '--grace', '20'] });
      t.teardown(() => server.crash());
      return server;
    } catch (error) {
      if (attempt >= 50 || !/already in use/.test((error as Error).message)) throw error;
      await delay(100);
    }
  }
}

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: a new server started during the old one's grace time leaves its upload alone`, async (t) => {
    const root = makeTempRoot(`socklab-rolling-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    const data = Buffer.alloc(UPLOAD_BYTES, 'r');
    const old = await ServerProcess.start(model, { root, args: ['--threads', '2', '--grace', '20'] });
    t.teardown(() => old.crash());
    const c = await WireClient.connect(old.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    t.equal(await c.request(`PUT kept.bin ${UPLOAD_BYTES} mode=new`), `150 send ${UPLOAD_BYTES} bytes`);
    await c.send(data.subarray(0, UPLOAD_BYTES / 2));
    t.equal(tempFilesIn(root).length, 1, "the old server's upload is on disk");

    old.kill('SIGTERM');
    await old.waitForLine(/SIGTERM: stopping/, 10_000);
    const fresh = await startOn(t, model, root, old.port);
    t.equal(tempFilesIn(root).length, 1, "the new server's start-up left the live server's temporary file");

    await c.send(data.subarray(UPLOAD_BYTES / 2));
    t.equal(await c.readLine(), `226 kept.bin ${UPLOAD_BYTES} ${sha256(data)}`, 'the old server commits its upload');
    t.same((await old.waitExit(15_000)).code, 0, 'and exits 0');
    t.ok(fs.readFileSync(path.join(root, 'kept.bin')).equals(data), 'the file is whole');

    const next = await WireClient.connect(fresh.port);
    t.teardown(() => next.destroy());
    await next.readLine();
    t.equal(await next.request('STAT kept.bin'), `213 ${UPLOAD_BYTES} ${sha256(data)}`, 'the new server serves it');

    // The new server goes down hard mid-upload; the next start-up removes what it left.
    t.equal(await next.request(`PUT lost.bin ${UPLOAD_BYTES} mode=new`), `150 send ${UPLOAD_BYTES} bytes`);
    await next.send(data.subarray(0, 1000));
    await fresh.crash();
    t.equal(tempFilesIn(root).length, 1, 'the killed server left its temporary file');
    await startOn(t, model, root, 0);
    t.same(tempFilesIn(root), [], 'a server that is gone owns nothing: the next start-up removed it');
    t.notOk(fs.existsSync(path.join(root, 'lost.bin')));
  });
}
