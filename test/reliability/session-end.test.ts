/**
 * How a session that the client ends mid-reply is logged, for every model:
 * a client that disconnects in the middle of a large GET *left* (it is not a
 * failure of the server), and the log counts the requests it made.
 */
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { eventually, WireFixture } from '../helpers/wire-fixture.js';

const MiB = 1024 * 1024;

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: a client that disconnects during a large GET is logged as "client left" with its requests`, async (t) => {
    const server = await WireFixture.start(t, model, { threads: 1 });
    server.writeFile('big.bin', Buffer.alloc(16 * MiB, 0x62));
    const c = await server.open('leaves mid-reply');
    t.equal(await c.request('PING'), '200 PONG');
    t.equal(await c.request('GET big.bin'), `150 ${16 * MiB}`);
    await c.readBytes(64 * 1024);
    const port = c.socket.localPort;
    c.destroy();
    const label = `127.0.0.1:${port} (#`;
    await eventually(() => server.server.logs.some((line) => line.startsWith('closed ') && line.includes(label)), 'the session ends');
    const closed = server.server.logs.find((line) => line.startsWith('closed ') && line.includes(label)) ?? '';
    t.match(closed, /: 2 requests, \d+ B in, \d+ B out, client left$/, `logged as a client that left, with its 2 requests: ${closed}`);
    const next = await server.open('next');
    t.equal(await next.request('PING'), '200 PONG', 'the next client is served');
    await server.quit(next);
  });
}
