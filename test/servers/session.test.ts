/**
 * The session program (servers/session.ts) where it matters most that a
 * failure says nothing more: a GET's read that fails after its `150` — for
 * any reason, a bug's included — drops the connection with no further byte,
 * since a reply line now would be read as the file's data. Over a real
 * socket, with the storage's read broken in this process (the sequential and
 * async servers run their storage here; workers runs the same program).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { AsyncStorage } from '../../servers/storage/async.js';
import { SyncStorage } from '../../servers/storage/sync.js';
import { startTestServer } from '../helpers/server.js';
import { WireClient } from '../helpers/wire.js';

const FILE_BYTES = 1024 * 1024;

for (const model of ['sequential', 'async'] as const) {
  t.test(`${model}: a GET whose read throws a non-storage error after its 150 is dropped, with nothing but file bytes sent`, async (t) => {
    const server = await startTestServer(model);
    t.teardown(() => server.close());
    fs.writeFileSync(path.join(server.root, 'big.bin'), Buffer.alloc(FILE_BYTES, 'b'));
    for (const prototype of [SyncStorage.prototype, AsyncStorage.prototype]) {
      const flavour = prototype as unknown as { readChunk: (...args: unknown[]) => unknown };
      const readChunk = flavour.readChunk;
      let reads = 0;
      // The first read goes through; the second is a bug (a TypeError, not a StorageError).
      flavour.readChunk = function (this: unknown, ...args: unknown[]) {
        if (++reads === 2) throw new TypeError('injected bug in readChunk');
        return readChunk.apply(this, args);
      };
      t.teardown(() => {
        flavour.readChunk = readChunk;
      });
    }
    const c = await WireClient.connect(server.port);
    t.teardown(() => c.destroy());
    await c.readLine();
    t.equal(await c.request('GET big.bin'), `150 ${FILE_BYTES}`);
    const chunks: Buffer[] = [];
    const deadline = Date.now() + 10_000;
    while (!c.isEnded && Date.now() < deadline) {
      if (c.buffered > 0) chunks.push(await c.readBytes(c.buffered));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (c.buffered > 0) chunks.push(await c.readBytes(c.buffered));
    t.ok(c.isEnded, 'the server closed the connection');
    const data = Buffer.concat(chunks);
    t.ok(data.length > 0 && data.length < FILE_BYTES, `part of the file arrived (${data.length} of ${FILE_BYTES} bytes), then the close`);
    t.ok(data.every((byte) => byte === 'b'.charCodeAt(0)), 'every byte after the 150 is the file\'s: no 421 line inside the data');
    t.match(server.logs.join('\n'), /GET big\.bin failed after its 150 \(injected bug in readChunk\): dropped/, 'the log names the failure');

    const next = await WireClient.connect(server.port);
    t.teardown(() => next.destroy());
    t.match(await next.readLine(), /^220 /, 'the next client is greeted');
    t.equal(await next.request('PING'), '200 PONG');
  });
}
