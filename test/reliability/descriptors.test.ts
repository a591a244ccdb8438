/**
 * A server out of file descriptors (its process limit, set low with the
 * shell's `ulimit -n`): connections queued or uploading hold them all, and a
 * client being served asks for a file. PROTOCOL.md: the server "cannot open
 * one more file for a while", so `LIST`, `STAT`, `GET` and `PUT` get `450 busy`, never
 * a `451` (a failure of the file) nor silence, and the connection stays usable.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { makeTempRoot } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';
import { ServerProcess } from './processes.js';

/** Few enough to run out within a few dozen connections; enough for node, its threads and the listening socket. */
const DESCRIPTORS = { sequential: 64, async: 64, workers: 128 } as const;
const THREADS = 16;
/** More than any limit above: the filling always runs out first. */
const MAX_FILLERS = 160;
/** A filler not greeted by then waits in the server's queue (holding its socket's descriptor). */
const QUEUED_AFTER_MS = 300;
/** Once one waits, the ones after it wait too: this only lets the server take each in (or fail to). */
const TAKEN_IN_MS = 20;

t.jobs = 1;

for (const model of SERVER_MODELS) {
  t.test(`${model}: out of file descriptors, STAT, GET and PUT get 450 busy and the session goes on`, async (t) => {
    const root = makeTempRoot(`socklab-descriptors-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    fs.writeFileSync(path.join(root, 'a.txt'), 'hello\n');
    const server = await ServerProcess.start(model, {
      root,
      args: ['--quiet', '--threads', String(THREADS), '--max-queue', String(MAX_FILLERS), '--idle-timeout', '0'],
      // Without tap's process-info hook, which each worker thread would load, opening files of its own.
      launcher: ['env', '-u', 'NODE_OPTIONS', 'sh', '-c', `ulimit -n ${DESCRIPTORS[model]} && exec "$@"`, 'sh'],
    });
    t.teardown(() => server.crash());
    const served = await WireClient.connect(server.port, { label: 'served' });
    t.teardown(() => served.destroy());
    t.match(await served.readLine(), /^220 /, 'the client being served is greeted');

    // Each filler holds a descriptor for its socket, queued or served; a served one also holds its upload's file.
    const fillers: WireClient[] = [];
    t.teardown(() => fillers.forEach((filler) => filler.destroy()));
    let outOfDescriptors = false;
    let queueing = model === 'sequential';
    for (let i = 0; i < MAX_FILLERS && !outOfDescriptors; i++) {
      const filler = await WireClient.connect(server.port, { label: `filler ${i}` });
      fillers.push(filler);
      const greeting = await filler.readLine(queueing ? TAKEN_IN_MS : QUEUED_AFTER_MS).catch(() => null);
      if (filler.isEnded) {
        outOfDescriptors = true; // accepted and closed at once: none was left for its socket
        continue;
      }
      if (greeting === null) {
        queueing = true;
        continue;
      }
      const reply = await filler.request(`PUT up-${i} 1000 mode=new`);
      if (reply !== '150 send 1000 bytes') {
        t.match(reply, /^450 busy: too many files open on the server \(EMFILE\), try again later$/, `a filler's PUT: ${reply}`);
        outOfDescriptors = true;
      }
    }
    t.ok(outOfDescriptors, `the descriptors ran out within ${fillers.length} connections`);

    for (const request of ['LIST', 'STAT a.txt', 'GET a.txt', 'PUT b.txt 5 mode=new']) {
      t.match(await served.request(request), /^450 busy: too many files open on the server \(EMFILE\), try again later$/, `${request}: 450 busy, not 451`);
    }
    t.equal(await served.request('PING'), '200 PONG', 'the connection stays usable');
    for (const filler of fillers) filler.destroy();
    fillers.length = 0;
    // Descriptors free again once the fillers are gone (the server notices each close).
    let stat = '';
    for (let attempt = 0; attempt < 50 && !stat.startsWith('213 '); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      stat = await served.request('STAT a.txt');
    }
    t.match(stat, /^213 6 [0-9a-f]{64}$/, 'served again once descriptors are free');
    t.equal(await served.request('QUIT'), '221 bye');
  });
}
