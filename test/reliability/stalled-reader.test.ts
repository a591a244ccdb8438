/**
 * Clients that stay connected but stop reading: the server's writes to them
 * are bounded by the idle time (a write that makes no progress for that long
 * ends the connection), so they cannot hold the sequential server, a worker
 * thread, or an open file for ever.
 */
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { eventually, WireFixture } from '../helpers/wire-fixture.js';

const MiB = 1024 * 1024;
const IDLE_SECONDS = 1;

for (const model of SERVER_MODELS) {
  t.test(`${model}: a client that GETs a large file and never reads is cut off, and the next client is served`, async (t) => {
    const server = await WireFixture.start(t, model, { idleTimeoutSeconds: IDLE_SECONDS, threads: 1 });
    server.writeFile('big.bin', Buffer.alloc(16 * MiB, 0x61));
    const stuck = await server.open('never reads');
    stuck.socket.pause(); // stops reading: the kernel's buffers fill, then the server's writes stall
    await stuck.sendLine('GET big.bin');
    await eventually(() => server.server.logs.some((line) => /client stopped reading/.test(line)), 'the log says why the connection ended', 10_000);
    const next = await server.open('next'); // open() reads and checks the greeting
    t.equal(await next.request('PING'), '200 PONG', 'the next client is served');
    await server.quit(next);
  });
}

t.test('sequential: a client that pipelines megabytes of ECHO and never reads the replies does not stop the server', async (t) => {
  const server = await WireFixture.start(t, 'sequential', { idleTimeoutSeconds: IDLE_SECONDS });
  const stuck = await server.open('flooder');
  stuck.socket.pause();
  const line = `ECHO ${'x'.repeat(1000)}\n`;
  void stuck.send(line.repeat(8000)).catch(() => {}); // about 8 MB; the server cuts it off before it is all taken
  const waiting = await server.connect('waiting');
  await eventually(() => server.server.logs.some((entry) => /client stopped reading/.test(entry)), 'the flooder is cut off', 15_000);
  t.equal(await waiting.readLine(), server.greeting, 'the waiting client is greeted');
  await server.quit(waiting);
});

for (const model of SERVER_MODELS) {
  t.test(`${model}: a client that streams small requests and never reads the replies is cut off, and the next client is served`, async (t) => {
    // Each read of the server's finds a few requests, whose replies are far from a write batch:
    // the server must still see that this client is behind, not queue its replies for ever.
    const server = await WireFixture.start(t, model, { idleTimeoutSeconds: IDLE_SECONDS, threads: 1 });
    const stuck = await server.open('streams and never reads');
    stuck.socket.pause();
    const lines = `ECHO ${'x'.repeat(1000)}\n`.repeat(8);
    const streaming = setInterval(() => {
      if (stuck.socket.writable) stuck.socket.write(lines);
    }, 2);
    t.teardown(() => clearInterval(streaming));
    await eventually(() => server.server.logs.some((line) => /client stopped reading/.test(line)), 'the log says why the connection ended', 20_000);
    clearInterval(streaming);
    const next = await server.open('next');
    t.equal(await next.request('PING'), '200 PONG', 'the next client is served');
    await server.quit(next);
  });
}
