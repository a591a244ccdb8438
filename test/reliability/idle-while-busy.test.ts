/**
 * The idle timeout counts only while the server waits for its client, for
 * every model: with `--idle-timeout 0.5` and a disk made slow (every fsync
 * sleeps 600 ms, inject-slow-fsync.cts), an upload's commit keeps the client
 * waiting for its `226` well past the idle time. The client was not idle: its
 * next request is served, not answered `421 idle timeout`. Idleness still
 * counts when the server does wait: a client silent past the idle time after
 * that gets its 421.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { makeTempRoot } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';
import { sha256 } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';

const INJECT = fileURLToPath(new URL('./inject-slow-fsync.cjs', import.meta.url));
const IDLE_SECONDS = 0.5;
const FSYNC_MS = 600;

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: a commit that outlasts --idle-timeout while the client waits does not make the client idle`, async (t) => {
    const root = makeTempRoot(`socklab-idle-busy-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    const server = await ServerProcess.start(model, {
      root,
      args: ['--idle-timeout', String(IDLE_SECONDS), '--threads', '2', '--quiet'],
      env: { NODE_OPTIONS: `--require ${INJECT}`, SOCKLAB_SLOW_FSYNC_MS: String(FSYNC_MS) },
    });
    t.teardown(() => server.crash());
    const c = await WireClient.connect(server.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    const data = Buffer.from('one small upload\n');
    t.equal(await c.request(`PUT small.txt ${data.length}`), `150 send ${data.length} bytes`);
    const sent = Date.now();
    await c.send(data);
    t.equal(await c.readLine(), `226 small.txt ${data.length} ${sha256(data)}`, 'the upload lands');
    const waited = Date.now() - sent;
    t.ok(waited > IDLE_SECONDS * 1000 + 100, `the client waited ${waited} ms for its 226, longer than the idle time`);
    t.equal(await c.request('PING'), '200 PONG', 'its next request is served: waiting for the server is not idleness');
    t.equal(await c.readLine(5000), '421 idle timeout', 'silence while the server waits still times out');
  });
}
