/**
 * The shell (servers/shell.ts) where its socket handling meets a model's:
 * what a queued client sends while it waits is held and served in order when
 * its turn comes, intact even where the model's sockets read into one buffer
 * shared by every connection (workers: withSharedReadBuffer in transport/accepted-reads.ts), so
 * that the reads of the connection being served meanwhile overwrite that
 * buffer many times. Real sockets, a real server.
 */
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';

for (const model of ['workers', 'sequential'] as const) {
  t.test(`${model}: a queued client's bytes, sent in pieces while another is served, are answered byte for byte when its turn comes`, async (t) => {
    const server = await startTestServer(model, { threads: 1 });
    t.teardown(() => server.close());
    const served = await WireClient.connect(server.port);
    t.teardown(() => served.destroy());
    t.match(await served.readLine(), /^220 /);

    const queued = await WireClient.connect(server.port);
    t.teardown(() => queued.destroy());
    const texts = Array.from({ length: 20 }, (_, i) => `held-${i}-${String.fromCharCode(97 + i).repeat(200 + i)}`);
    for (const [i, text] of texts.entries()) {
      await queued.send(`ECHO ${text}\n`);
      // Between the queued client's pieces, the served one's requests and replies go through the same main thread.
      for (let j = 0; j < 5; j++) t.equal(await served.request(`ECHO served-${i}-${j}-${'z'.repeat(1000)}`), `200 served-${i}-${j}-${'z'.repeat(1000)}`);
    }
    t.equal(queued.buffered, 0, 'the queued client is not greeted while it waits');
    await served.sendLine('QUIT');
    t.match(await queued.readLine(), /^220 /, 'its turn: greeted');
    for (const text of texts) t.equal(await queued.readLine(), `200 ${text}`);
    t.equal(await queued.request('PING'), '200 PONG', 'and in sync after');
  });
}
