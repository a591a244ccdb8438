/**
 * A file truncated behind the server's back while a GET sends it (someone ran
 * `: > file` in the root): the size promised in `150` can no longer be kept,
 * so the server drops that connection, and goes on serving. Before the shrink
 * check in ReadState.advance, reads at the old offsets returned 0 bytes
 * forever and the GET loop spun, so this runs against a server *process*: a
 * spinning server cannot hang the test runner, only fail the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS } from '../../../servers/index.js';
import { makeTempRoot } from '../../helpers/server.js';
import { WireClient } from '../../helpers/wire.js';
import { ServerProcess } from '../../reliability/processes.js';

/** Far more than the socket buffers hold, so the server is mid-send when the file shrinks. */
const FILE_BYTES = 32 * 1024 * 1024;

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: a GET whose file is truncated mid-send ends the connection; the server serves the next client`, async (t) => {
    const root = makeTempRoot(`socklab-truncated-${model}-`);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    fs.writeFileSync(path.join(root, 'big.bin'), Buffer.alloc(FILE_BYTES, 'b'));
    const server = await ServerProcess.start(model, { root, args: ['--threads', '2', '--quiet'] });
    t.teardown(() => server.crash());
    const c = await WireClient.connect(server.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    t.equal(await c.request('GET big.bin'), `150 ${FILE_BYTES}`);
    await c.readBytes(64 * 1024); // the send is under way
    fs.truncateSync(path.join(root, 'big.bin'), 0);
    // Read whatever was already sent until the server closes; a spinning server never closes.
    const deadline = Date.now() + 15_000;
    while (!c.isEnded && Date.now() < deadline) {
      if (c.buffered > 0) await c.readBytes(c.buffered);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    t.ok(c.isEnded, 'the server dropped the connection it could no longer keep its promise on');
    t.ok(c.received < FILE_BYTES, `fewer bytes than promised arrived (${c.received})`);
    const next = await WireClient.connect(server.port);
    t.teardown(() => next.destroy());
    t.match(await next.readLine(), /^220 /, 'the next client is greeted');
    t.equal(await next.request('PING'), '200 PONG', 'and served');
  });
}
