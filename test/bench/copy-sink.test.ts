/**
 * The copy-sink ceiling speaks a session with the round trips of a socklab
 * one (greeting; a byte count answered `150` before the data, `226` after it;
 * QUIT answered `221`, then the end), so that the crowd's ceiling bounds the
 * same conversation; and it really copies the bytes and fsyncs them. The
 * hash-sink is the same program hashing what it copies (`--hash`).
 */
import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { startServerProcess } from '../../bench/targets/server-process.js';
import { WireClient } from '../helpers/wire.js';

/** A sink started for this test, and a client it has greeted. */
async function greetedBy(t: Test, target: 'copy-sink' | 'hash-sink'): Promise<WireClient> {
  const sink = await startServerProcess(target);
  t.teardown(() => sink.stop());
  const c = await WireClient.connect(sink.port);
  t.teardown(() => c.destroy());
  t.equal(await c.readLine(), '220 copy-sink ready');
  return c;
}

t.test('copy-sink: greeting, 150 before the data, 226 after it, PONG for other lines, 221 and the end for QUIT', async (t) => {
  const c = await greetedBy(t, 'copy-sink');
  t.equal(await c.request('5'), '150 send 5 bytes', 'the byte count is answered before the data');
  await c.send('hello');
  t.equal(await c.readLine(), '226', 'the bytes are in once fsynced');
  t.equal(await c.request('ECHO hi'), '200 PONG');
  t.equal(await c.request('0'), '150 send 0 bytes', 'an empty upload too');
  t.equal(await c.readLine(), '226');
  t.equal(await c.request('QUIT'), '221 bye');
  await c.expectClose();
});

t.test('hash-sink: the same session, and each 226 carries the sha256 of that upload\'s bytes, however they were split', async (t) => {
  const c = await greetedBy(t, 'hash-sink');
  const data = Buffer.alloc(3 * 1024 * 1024 + 7);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  t.equal(await c.request(String(data.length)), `150 send ${data.length} bytes`);
  for (let at = 0; at < data.length; at += 100_003) await c.send(data.subarray(at, at + 100_003));
  t.equal(await c.readLine(), `226 ${createHash('sha256').update(data).digest('hex')}`, 'the digest of every byte, in order');
  t.equal(await c.request('2'), '150 send 2 bytes', 'a second upload on the connection');
  await c.send('hi');
  t.equal(await c.readLine(), `226 ${createHash('sha256').update('hi').digest('hex')}`, 'its own digest, not the first one continued');
  t.equal(await c.request('QUIT'), '221 bye');
  await c.expectClose();
});
