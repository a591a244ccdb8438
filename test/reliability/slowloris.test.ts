/**
 * Slowloris: connections that send nothing, or one byte at a time and never a
 * whole line, against each model, with an idle timeout of 1 s (async: 4 s).
 *
 * - async: 300 of them (150 silent, 150 dribbling a byte every 500 ms, faster
 *   than the idle timeout) do not keep a new client from being served: it gets
 *   its greeting and PONG while every one of the 300 is still open. Once they
 *   all fall silent, the idle timeout reclaims every one (`421 idle timeout`).
 * - workers: a silent connection holds a thread until the idle timeout frees
 *   it; with more of them than threads, a new client waits for one (the log
 *   says so) and is served once the timeout has reclaimed those ahead of it.
 *   A new client served *while* 300 are held would need 300 threads: that is
 *   the thread-per-connection model's known weakness, and the test asserts it
 *   (not greeted while they are held, served once they leave; see the report
 *   of issue 5).
 * - sequential: one slow client starves everyone, and the log shows it (who
 *   waits behind whom, and for how long); a dribbler holds the server for as
 *   long as it dribbles, and the idle timeout ends it once it stops.
 * - every model, clients that hold on (hostile-clients.ts): two each of
 *   clients that never read (a GET of 16 MiB, a flood of ECHO), that trickle
 *   an upload, and that queue and leave. A fresh client is served within the
 *   model's bound (async at once; workers and sequential once the write stall,
 *   the minimum upload rate and the leaving have freed a thread or the
 *   server), and each of them is ended for the reason its kind calls for.
 */
import t from 'tap';
import type { ServerModelName } from '../../servers/index.js';
import { WireTimeoutError, type WireClient } from '../helpers/wire.js';
import { delay, eventually, WireFixture } from '../helpers/wire-fixture.js';
import { SERVER_MODELS } from '../../servers/index.js';
import { crowdBounds, freshClientServed, HOSTILE_GET_BYTES, HOSTILE_GET_NAME, HOSTILE_KINDS, hostileEndings, launchCrowd } from './hostile-clients.js';
import type { Tap } from '../helpers/tap.js';

const HELD = 300;
/** Generous: "promptly" is about order (served while the others are held), not speed. */
const PROMPT_MS = 5000;

/** Sends `ECHO ` and then one `x` per tick, never a LF, until stopped. */
function dribble(clients: readonly WireClient[], everyMs: number): () => void {
  let sent = 0;
  const timer = setInterval(() => {
    const byte = 'ECHO '[sent] ?? 'x';
    sent++;
    for (const c of clients) if (!c.isEnded) c.socket.write(byte);
  }, everyMs);
  return () => clearInterval(timer);
}

async function openMany(f: WireFixture, count: number, label: string, greeted: boolean): Promise<WireClient[]> {
  const clients = await Promise.all(Array.from({ length: count }, (_, i) => f.connect(`${label} ${i + 1}`)));
  if (greeted) await Promise.all(clients.map((c) => c.readLine()));
  return clients;
}

function start(t: Tap, model: ServerModelName, threads = 4, idleTimeoutSeconds = 1): Promise<WireFixture> {
  return WireFixture.start(t, model, { idleTimeoutSeconds, maxConnections: 2000, threads, maxQueue: 2000 });
}

function logged(f: WireFixture, pattern: RegExp): string[] {
  return f.server.logs.filter((line) => pattern.test(line));
}

function labelOf(c: WireClient): string {
  return `127.0.0.1:${c.socket.localPort} (#`;
}

// One at a time: the servers run in this process, and a neighbour warming up threads would slow the async one down.
t.jobs = 1;

t.test(`async: ${HELD} slow connections held, a new client is served promptly; the idle timeout reclaims them all`, async (t) => {
  // 4 s, not 1: opening 150 connections takes over a second on a busy 2-core machine, and the
  // silent ones must all still be within their idle time when the newcomer is served.
  const f = await start(t, 'async', 4, 4);
  const dribblers = await openMany(f, HELD / 2, 'dribbler', true);
  const stop = dribble(dribblers, 500);
  t.teardown(stop);
  // The silent ones connect together with the new client, so that they are all within their idle time when it is served.
  const started = Date.now();
  const [silent, c] = await Promise.all([openMany(f, HELD / 2, 'silent', true), f.open('newcomer')]);
  t.equal(await c.request('PING'), '200 PONG', 'the new client is served');
  const elapsed = Date.now() - started;
  const held = [...dribblers, ...silent].filter((s) => !s.isEnded).length;
  t.equal(held, HELD, `...while all ${HELD} slow connections are held`);
  t.ok(elapsed < PROMPT_MS, `...promptly (${elapsed} ms)`);
  await f.quit(c);

  stop();
  await eventually(() => [...dribblers, ...silent].every((s) => s.isEnded), `all ${HELD} closed by the idle timeout`, 15_000);
  const lines = await Promise.all([...dribblers, ...silent].map((s) => s.readLine().catch(() => '(nothing)')));
  t.equal(lines.filter((l) => l === '421 idle timeout').length, HELD, `each of the ${HELD} got 421 idle timeout`);
  await eventually(() => logged(f, /: \d+ requests, .* idle timeout$/).length === HELD, 'the log records each one', 5000);
  t.pass(`the log has ${HELD} "idle timeout" closes`);
});

t.test('workers: silent connections hold threads until the idle timeout frees them; a new client waits for one (the log says so)', async (t) => {
  const f = await start(t, 'workers', 4);
  const silent = await openMany(f, 8, 'silent', false);
  await eventually(() => f.acceptedConnections() === 8, 'the 8 are taken in');
  const c = await f.connect('newcomer');
  const label = labelOf(c);
  await eventually(() => logged(f, /waits for a thread/).some((l) => l.startsWith(label)), 'the log says the new client waits for a thread');
  t.pass('the log says the new client waits for a thread');
  t.equal(await c.readLine(PROMPT_MS + 5000), f.greeting, 'greeted once the idle timeout freed a thread');
  t.equal(await c.request('PING'), '200 PONG');
  await f.quit(c);
  // 4 threads: the first 4 time out after 1 s, the next 4 take their threads and time out after 2 s, then the newcomer's turn.
  const served = logged(f, /^serving /).find((l) => l.startsWith(`serving ${label}`)) ?? '';
  t.ok(Number(/after ([0-9.]+) s waiting/.exec(served)?.[1]) >= 1.5, `it waited for two rounds of idle timeouts: ${served}`);
  await eventually(() => silent.every((s) => s.isEnded), 'all 8 are closed by the idle timeout');
  t.pass('all 8 were closed by the idle timeout');
});

/**
 * How long the newcomer is watched not being served: three idle timeouts, so a
 * thread freed by the timeout would have reached it; the dribblers are never idle.
 */
const HELD_WINDOW_MS = 3000;

// The thread-per-connection model's known limit, asserted as what it does (not a todo for what it cannot):
// each held connection holds one of the pool's threads, so serving the newcomer at once would take as many
// threads as there are slow clients. Once they leave, their threads are free and it is served.
t.test(`workers: with ${HELD} slow connections held, a new client waits for a thread until they leave (thread per connection: a known limit)`, async (t) => {
  const f = await start(t, 'workers', 4);
  const dribblers = await openMany(f, HELD / 2, 'dribbler', false);
  const stop = dribble(dribblers, 500);
  t.teardown(stop);
  const silent = await openMany(f, HELD / 2, 'silent', false);
  const c = await f.connect('newcomer');
  const early = await c.readLine(HELD_WINDOW_MS).catch((error: unknown) => error);
  t.type(early, WireTimeoutError, `not greeted within ${HELD_WINDOW_MS} ms: the 4 threads are held by dribblers, ${HELD - 4} wait ahead of it`);
  const waits = logged(f, /waits for a thread/).find((l) => l.startsWith(labelOf(c))) ?? '';
  t.match(waits, /waits for a thread: \d+ waiting, 4 busy$/, `the log says why: ${waits}`);
  t.notOk(c.isEnded, 'it is still connected, waiting');

  stop();
  for (const held of [...dribblers, ...silent]) held.destroy();
  t.equal(await c.readLine(PROMPT_MS), f.greeting, `greeted within ${PROMPT_MS} ms once the ${HELD} left`);
  t.equal(await c.request('PING'), '200 PONG');
  await f.quit(c);
});

t.test('sequential: a slow client starves the rest, and the log makes it visible', async (t) => {
  const f = await start(t, 'sequential');
  const [first, ...rest] = await openMany(f, 3, 'silent', false);
  if (first === undefined) throw new Error('no connection');
  const c = await f.connect('newcomer');
  await eventually(() => logged(f, /waits: \d+ in the queue, serving/).some((l) => l.startsWith(labelOf(c))), 'the log names the newcomer waiting');
  const waits = logged(f, /waits: \d+ in the queue, serving/).find((l) => l.startsWith(labelOf(c))) ?? '';
  t.match(waits, new RegExp(`waits: 3 in the queue, serving 127\\.0\\.0\\.1:${first.socket.localPort} \\(#1\\)$`), `the log: ${waits}`);
  t.equal(await c.readLine(PROMPT_MS + 5000), f.greeting, 'served once the three ahead of it timed out, one after another');
  await f.quit(c);
  const served = logged(f, /^serving /).find((l) => l.startsWith(`serving ${labelOf(c)}`)) ?? '';
  const waited = Number(/after ([0-9.]+) s waiting/.exec(served)?.[1]);
  t.ok(waited >= 2.5, `the log shows how long it starved: ${served}`);
  await eventually(() => [first, ...rest].every((s) => s.isEnded), 'the three silent ones are closed by the idle timeout');
  t.pass('the three silent ones were closed by the idle timeout');

  // A dribbler is never idle: it holds the server for as long as it dribbles.
  const dribbler = await f.open('dribbler');
  const stop = dribble([dribbler], 100); // well inside the 1 s idle timeout, even with the machine busy
  t.teardown(stop);
  const next = await f.connect('behind the dribbler');
  await delay(2500);
  t.equal(next.buffered, 0, 'after 2.5 s of dribbling, the client behind it is still not greeted');
  t.notOk(dribbler.isEnded, 'and the dribbler is not timed out: it keeps sending');
  stop();
  t.equal(await dribbler.readLine(5000), '421 idle timeout', 'once it stops, the idle timeout reclaims it');
  t.equal(await next.readLine(5000), f.greeting, 'and the next client is served');
  await f.quit(next);
});

const HOLD_LIMITS = { idleTimeoutMs: 1000, uploadRateGraceMs: 1000, threads: 4 };

for (const model of SERVER_MODELS) {
  t.test(`${model}: clients that never read, trickle uploads, or queue and leave do not hold the server`, async (t) => {
    const f = await WireFixture.start(t, model, {
      idleTimeoutSeconds: HOLD_LIMITS.idleTimeoutMs / 1000,
      minUploadRate: 1024,
      uploadRateGraceMs: HOLD_LIMITS.uploadRateGraceMs,
      threads: HOLD_LIMITS.threads,
      maxConnections: 2000,
      maxQueue: 2000,
    });
    f.writeFile(HOSTILE_GET_NAME, Buffer.alloc(HOSTILE_GET_BYTES, 0x68));
    const crowd = HOSTILE_KINDS.flatMap((kind) => [kind, kind]);
    const hostiles = await launchCrowd(crowd, f.port);
    t.teardown(() => hostiles.forEach((h) => h.stop()));
    const bounds = crowdBounds(crowd, { model, ...HOLD_LIMITS });
    const took = await freshClientServed(f.port, bounds.freshMs);
    t.pass(`a fresh client is served in ${took.toFixed(0)} ms (bound ${bounds.freshMs} ms) behind ${crowd.length} hostile clients`);
    t.same(await hostileEndings(hostiles, () => f.server.logs, bounds.endedMs, HOLD_LIMITS.idleTimeoutMs), [], 'each hostile connection was ended for its reason');
  });
}
