/**
 * The minimum upload rate (`--min-upload-rate`, session.ts), for every model:
 * a client that announces 1 MB and sends a byte now and then (never idle long
 * enough for the idle timeout) is cut off with `421 upload too slow` once the
 * grace time of waiting is over, its upload discarded, and the server serves
 * the next client; a client at a modest but real rate is not cut off.
 * The grace time is shortened to 1 s here (the CLI's is 10 s).
 */
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { delay, eventually, sha256, WireFixture } from '../helpers/wire-fixture.js';

const MIN_RATE = 1024;
const GRACE_MS = 1000;
const ANNOUNCED = 1_000_000;

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  const options = { minUploadRate: MIN_RATE, uploadRateGraceMs: GRACE_MS, idleTimeoutSeconds: 5, threads: 1 };

  t.test(`${model}: a client that trickles an upload is cut off with 421 upload too slow after the grace time`, async (t) => {
    const server = await WireFixture.start(t, model, options);
    server.writeFile('keep.bin', 'original');
    const trickler = await server.open('trickler');
    t.equal(await trickler.request(`PUT keep.bin ${ANNOUNCED} mode=overwrite`), `150 send ${ANNOUNCED} bytes`);
    const started = Date.now();
    const timer = setInterval(() => trickler.socket.write('t'), 250);
    t.teardown(() => clearInterval(timer));
    t.equal(await trickler.readLine(GRACE_MS + 8000), `421 upload too slow (under ${MIN_RATE} bytes/s), closing`, 'the trickler is told why');
    clearInterval(timer);
    const after = Date.now() - started;
    t.ok(after >= GRACE_MS, `...once the grace time is over (${after} ms)`);
    await trickler.expectClose();
    await eventually(() => server.server.logs.some((line) => /: 1 requests?, .* upload too slow: \d+ B in [0-9.]+ s of waiting \(discarded\)$/.test(line)), 'the log says why');
    await eventually(() => server.tempFiles().length === 0, 'the upload is discarded');
    t.equal(server.readFile('keep.bin')?.toString(), 'original', 'the file is unchanged');
    const next = await server.open('next');
    t.equal(await next.request('PING'), '200 PONG', 'the next client is served');
    await server.quit(next);
  });

  t.test(`${model}: a client at a modest steady rate, longer than the grace time, is not cut off`, async (t) => {
    const server = await WireFixture.start(t, model, options);
    const data = Buffer.alloc(48 * 1024, 'm');
    const c = await server.open('modest');
    t.equal(await c.request(`PUT modest.bin ${data.length}`), `150 send ${data.length} bytes`);
    const started = Date.now();
    // 2 KiB every 100 ms: about 20 KiB/s, twenty times the minimum, for over two seconds.
    for (let at = 0; at < data.length; at += 2048) {
      await c.send(data.subarray(at, at + 2048));
      await delay(100);
    }
    t.equal(await c.readLine(), `226 modest.bin ${data.length} ${sha256(data)}`, `the upload lands after ${Date.now() - started} ms`);
    await server.quit(c);
  });
}
