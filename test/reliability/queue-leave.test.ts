/**
 * Clients that wait for their turn (sequential, workers) and give up: their
 * place is freed at once, without the server reading their requests early;
 * a waiting client's requests are still served in order when its turn comes.
 */
import t from 'tap';
import type { ServerModelName } from '../../servers/index.js';
import { delay, eventually, WireFixture } from '../helpers/wire-fixture.js';
import type { WireClient } from '../helpers/wire.js';

/** Opens `count` connections that the server does not greet yet (it is busy). */
async function waitingClients(server: WireFixture, count: number): Promise<WireClient[]> {
  const clients: WireClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await server.connect(`waiting ${i + 1}`));
  return clients;
}

/** True if nothing arrives on `client` for `ms` and it stays open: it waits, neither greeted nor refused. */
async function stillWaiting(client: WireClient, ms: number): Promise<boolean> {
  await delay(ms);
  return client.received === 0 && !client.isEnded;
}

const cases: { model: ServerModelName; served: number; options: { maxConnections?: number; threads?: number; maxQueue?: number }; room: number }[] = [
  { model: 'sequential', served: 1, options: { maxConnections: 20 }, room: 19 },
  { model: 'workers', served: 2, options: { threads: 2, maxQueue: 5 }, room: 5 },
];

for (const { model, served, options, room } of cases) {
  t.test(`${model}: waiting clients that leave free their places at once`, async (t) => {
    const server = await WireFixture.start(t, model, options);
    const busy = await Promise.all(Array.from({ length: served }, (_, i) => server.open(`served ${i + 1}`)));
    const waiting = await waitingClients(server, room);
    const refused = await server.connect('one too many');
    t.match(await refused.readLine(), /^421 too many connections/, 'the server is full: one more is refused');
    t.ok(await stillWaiting(waiting[0]!, 200), 'the waiting ones wait, ungreeted');

    for (const client of waiting) client.destroy();
    await eventually(() => server.server.logs.filter((line) => /left the queue/.test(line)).length === room, `the log has ${room} "left the queue" lines`, 3000);
    const newcomer = await server.connect('newcomer');
    t.ok(await stillWaiting(newcomer, 1000), 'a newcomer now waits for its turn instead of being refused');

    for (const client of busy) await server.quit(client);
    t.equal(await newcomer.readLine(), server.greeting, 'and is served once a place is free');
  });

  t.test(`${model}: what a waiting client sent is served in order when its turn comes, even after it closed its side`, async (t) => {
    const server = await WireFixture.start(t, model, options);
    const busy = await Promise.all(Array.from({ length: served }, (_, i) => server.open(`served ${i + 1}`)));
    const patient = await server.connect('patient');
    await patient.send('PING\nECHO first\nECHO second\nQUIT\n');
    patient.socket.end(); // half-close: it still reads
    t.ok(await stillWaiting(patient, 500), 'nothing is answered before its turn');
    t.notOk(server.server.logs.some((line) => /left the queue/.test(line)), 'a client that sent requests and closed its side has not left');
    for (const client of busy) await server.quit(client);
    t.equal(await patient.readLine(), server.greeting);
    t.equal(await patient.readLine(), '200 PONG');
    t.equal(await patient.readLine(), '200 first');
    t.equal(await patient.readLine(), '200 second');
    t.equal(await patient.readLine(), '221 bye');
  });
}
