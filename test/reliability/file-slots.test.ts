/**
 * The async server's file slots, made scarce (2, a 1 s wait): clients that
 * PUT and then trickle hold them, and every other STAT, GET and PUT gets
 * `450 busy` once the bounded wait is over, never silence; the session goes
 * on, and once a slot is free the same requests are served.
 */
import t from 'tap';
import type { Test } from 'tap';
import type { WireClient } from '../helpers/wire.js';
import { sha256, WireFixture } from '../helpers/wire-fixture.js';

const SLOTS = 2;
const WAIT_MS = 1000;
/** The wait, plus room for a busy machine: a reply must come within this, never silence. */
const REPLY_WITHIN_MS = WAIT_MS + 4000;
const UPLOAD_BYTES = 1024 * 1024;

/** PUTs a large upload and sends a byte every 200 ms: it holds a slot (no minimum rate in this test). */
async function trickler(t: Test, server: WireFixture, name: string): Promise<{ client: WireClient; stop: () => void }> {
  const client = await server.open(`trickler ${name}`);
  t.equal(await client.request(`PUT ${name} ${UPLOAD_BYTES}`), `150 send ${UPLOAD_BYTES} bytes`, `${name}: the trickler's upload starts`);
  const timer = setInterval(() => client.socket.write('t'), 200);
  return { client, stop: () => clearInterval(timer) };
}

t.test('async: with every file slot held by tricklers, STAT, GET and PUT get 450 busy after the bounded wait, and the session goes on', async (t) => {
  const server = await WireFixture.start(t, 'async', { fileSlots: { count: SLOTS, waitMs: WAIT_MS } });
  const content = 'hello\n';
  server.writeFile('a.txt', content);
  const holders = await Promise.all(Array.from({ length: SLOTS }, (_, i) => trickler(t, server, `held-${i}.bin`)));
  t.teardown(() => holders.forEach((h) => h.stop()));

  const c = await server.open('blocked');
  for (const request of ['STAT a.txt', 'GET a.txt', 'PUT b.txt 5']) {
    const sent = Date.now();
    const reply = await c.request(request, REPLY_WITHIN_MS);
    const waited = Date.now() - sent;
    t.match(reply, /^450 busy: all 2 file slots stayed in use for 1 s, try again later$/, `${request}: 450 busy`);
    t.ok(waited >= WAIT_MS - 50, `${request}: ...after the wait for a slot (${waited} ms)`);
  }
  t.equal(await c.request('PING'), '200 PONG', 'the session goes on');
  t.equal(server.readFile('b.txt'), null, 'the refused PUT left no file');

  // One trickler leaves: its slot is free, and the same requests are served.
  holders[0]!.stop();
  holders[0]!.client.destroy();
  t.equal(await c.request('STAT a.txt', REPLY_WITHIN_MS), `213 ${content.length} ${sha256(content)}`, 'STAT is served once a slot is free');
  t.equal(await c.request('PUT b.txt 5'), '150 send 5 bytes');
  await c.send('abcde');
  t.match(await c.readLine(), /^226 /, 'and so is a PUT');
  await server.quit(c);
});

t.test('async: a session waiting for a slot gets it as soon as one is released, within the wait', async (t) => {
  const server = await WireFixture.start(t, 'async', { fileSlots: { count: 1, waitMs: 5000 } });
  server.writeFile('a.txt', 'x');
  const holder = await trickler(t, server, 'held.bin');
  t.teardown(holder.stop);
  const c = await server.open('waiting');
  await c.sendLine('STAT a.txt');
  setTimeout(() => {
    holder.stop();
    holder.client.destroy();
  }, 300);
  t.equal(await c.readLine(REPLY_WITHIN_MS), `213 1 ${sha256('x')}`, 'served by the released slot, not refused');
  await server.quit(c);
});
