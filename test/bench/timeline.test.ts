/** Recording session timelines and aggregating them: the numbers the tables are made of, on known inputs. */
import t from 'tap';
import { assignSessions, defaultProcessCount } from '../../bench/load/load-generator.js';
import {
  idealMakespanMs,
  LatencyHistogram,
  makespanMs,
  maxServedAtOnce,
  measureRun,
  queueGrowth,
  representativeRun,
  simulateIdealMakespanMs,
  summarizeRuns,
} from '../../bench/load/metrics.js';
import { planSessions, SCENARIOS, scenarioParams } from '../../bench/load/scenarios.js';
import { describeSessionError, errorLabel, SessionRecorder } from '../../bench/load/timeline.js';
import { ConnectionError, ErrorCodes, ReplyError } from '../../protocol/index.js';
import { chatRun, session, T0 } from './fixtures.js';

const MiB = 1024 * 1024;
/** HDR histograms keep 3 significant digits: a percentile may be this much off, relatively. */
const HDR_PRECISION = 0.001;

type Assert = Pick<typeof t, 'ok'>;

function near(t: Assert, actual: number, expected: number, what: string): void {
  t.ok(Math.abs(actual - expected) <= Math.abs(expected) * HDR_PRECISION + 1e-9, `${what}: ${actual} ≈ ${expected}`);
}

t.test('the recorder stamps each step with the clock and records replies, the server\'s code when it refuses', async (t) => {
  let now = 100;
  const recorder = new SessionRecorder(3, 1, 'chat', 90, () => now);
  recorder.markConnectStart();
  now = 101;
  recorder.markConnected();
  now = 150;
  recorder.markGreeted();
  now = 160;
  await recorder.exchange('ECHO', 200, async () => {
    now = 162;
    return 'hi';
  });
  await t.rejects(
    recorder.exchange('PUT', 150, async () => {
      now = 170;
      throw new ReplyError({ code: 552, text: 'too large' }, 'PUT x');
    }),
    ReplyError,
  );
  now = 180;
  t.equal(recorder.markQuitSent(), 180);
  now = 181;
  const timeline = recorder.finish(null);
  t.same(
    { connectStart: timeline.connectStart, connected: timeline.connected, greeted: timeline.greeted, quitSent: timeline.quitSent, done: timeline.done },
    { connectStart: 100, connected: 101, greeted: 150, quitSent: 180, done: 181 },
  );
  t.same(timeline.replies, [
    { request: 'ECHO', sentAt: 160, at: 162, code: 200, count: 1 },
    { request: 'PUT', sentAt: 162, at: 170, code: 552, count: 1 },
  ]);
  t.same([timeline.client, timeline.process, timeline.role, timeline.scheduledStart], [3, 1, 'chat', 90]);
});

t.test('errors become stable codes: the reply code when the server sent one, the error code otherwise', async (t) => {
  const refused = describeSessionError(new ReplyError({ code: 421, text: 'too many connections' }, 'greeting'), false);
  t.equal(refused.replyCode, 421);
  t.equal(errorLabel(refused), '421');
  const closed = describeSessionError(new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'gone'), false);
  t.equal(errorLabel(closed), 'CONNECTION_CLOSED');
  const reset = describeSessionError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), false);
  t.equal(errorLabel(reset), 'ECONNRESET');
  const late = describeSessionError(new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'gone'), true);
  t.equal(errorLabel(late), 'TIMEOUT', 'a session ended by its deadline is a timeout, whatever the close looked like');
});

t.test('most served at once: overlapping greeting-to-QUIT intervals, touching ends do not overlap', async (t) => {
  t.equal(maxServedAtOnce(chatRun(8, 800, 1).sessions), 1, 'sequential');
  t.equal(maxServedAtOnce(chatRun(8, 800, 4).sessions), 4, 'four threads');
  t.equal(maxServedAtOnce(chatRun(8, 800, 8).sessions), 8, 'all at once');
  const neverGreeted = session({ client: 9, greeted: null, done: T0 + 5 });
  t.equal(maxServedAtOnce([...chatRun(2, 100, 2).sessions, neverGreeted]), 2, 'a client never greeted was never served');
});

t.test('the ideal makespan: sessions served first come first served, k at a time', async (t) => {
  const eight = Array.from({ length: 8 }, () => ({ offsetMs: 0, serviceMs: 800 }));
  t.equal(simulateIdealMakespanMs(eight, 1), 6400, 'sequential: 8 × 0.8 s');
  t.equal(simulateIdealMakespanMs(eight, 4), 1600, 'four at once: 2 × 0.8 s');
  t.equal(simulateIdealMakespanMs(eight, Number.POSITIVE_INFINITY), 800, 'all at once: 0.8 s');
  t.equal(simulateIdealMakespanMs(eight, 3), 2400, '⌈8 ÷ 3⌉ × 0.8 s');
  const trickle = [{ offsetMs: 0, serviceMs: 4000 }, ...Array.from({ length: 7 }, () => ({ offsetMs: 100, serviceMs: 0 }))];
  t.equal(simulateIdealMakespanMs(trickle, 1), 4000, 'the quick ones fit after the slow one');
  const arrivals = Array.from({ length: 4 }, (_, i) => ({ offsetMs: i * 1000, serviceMs: 300 }));
  t.equal(simulateIdealMakespanMs(arrivals, 1), 3300, 'open model: the last arrival plus its own service');
  t.equal(simulateIdealMakespanMs([], 1), 0);
});

t.test("chat's ideal is (echoes − 1) × think per client, times the rounds the server needs", async (t) => {
  const chat = SCENARIOS.chat;
  const params = scenarioParams(chat);
  const planned = planSessions(chat, params, null);
  t.equal(idealMakespanMs(chat, params, planned, 1, null), 6400);
  t.equal(idealMakespanMs(chat, params, planned, 4, null), 1600);
  t.equal(idealMakespanMs(chat, params, planned, Number.POSITIVE_INFINITY, 999), 800, 'computed, whatever the ceiling did');
  t.equal(idealMakespanMs(chat, params, planned, null, 999), null, 'unknown when the server could serve any number at once');
  const upload = SCENARIOS.upload;
  const uploadPlan = planSessions(upload, scenarioParams(upload), null);
  t.equal(idealMakespanMs(upload, scenarioParams(upload), uploadPlan, 1, 1234), 1234, "upload's ideal is the ceiling's makespan");
  t.equal(idealMakespanMs(upload, scenarioParams(upload), uploadPlan, 1, null), null, 'unknown without the ceiling');
});

t.test('the open model schedules a session every 1/rate s and keeps the roles', async (t) => {
  const slow = SCENARIOS['slow-client'];
  const planned = planSessions(slow, scenarioParams(slow, { clients: 4 }), 10);
  t.same(
    planned.map((s) => [s.client, s.role, s.offsetMs]),
    [
      [0, 'slow', 0],
      [1, 'quick', 100],
      [2, 'quick', 200],
      [3, 'quick', 300],
    ],
  );
  t.same(
    planSessions(slow, scenarioParams(slow, { clients: 3, quickDelayMs: 50 }), null).map((s) => s.offsetMs),
    [0, 50, 50],
    'closed model: the scenario\'s own offsets',
  );
});

t.test('sessions spread round robin over the processes; one process per client up to the cap', async (t) => {
  const planned = Array.from({ length: 7 }, (_, client) => ({ client, role: 'x', offsetMs: 0 }));
  t.same(
    assignSessions(planned, 3).map((share) => share.map((s) => s.client)),
    [
      [0, 3, 6],
      [1, 4],
      [2, 5],
    ],
  );
  t.equal(defaultProcessCount(8), 8);
  t.equal(defaultProcessCount(1000), 32);
  t.equal(defaultProcessCount(8, 1), 1, "a scenario's own default");
});

t.test('the HDR histogram gives percentiles within its precision, never above the largest value', async (t) => {
  const histogram = new LatencyHistogram();
  for (let ms = 1; ms <= 100; ms++) histogram.record(ms);
  const p = histogram.percentiles();
  t.equal(p.count, 100);
  near(t, p.p50, 50, 'p50');
  near(t, p.p95, 95, 'p95');
  near(t, p.p99, 99, 'p99');
  t.equal(p.max, 100);
  t.same(new LatencyHistogram().percentiles(), { count: 0, p50: 0, p95: 0, p99: 0, max: 0 }, 'empty');
});

t.test("a sequential chat's numbers, worked out by hand", async (t) => {
  const run = chatRun(8, 800, 1);
  t.equal(makespanMs(run), 6401, 'the last client is done at 7 × 0.8 s + 0.8 s + 1 ms');
  const summary = summarizeRuns([run], 6400);
  near(t, summary.idealRatio ?? 0, 6401 / 6400, 'ratio');
  // Queue waits are 0, 0.8, ..., 5.6 s: p50 is the 4th of 8 (2.4 s), p95 and max the 8th (5.6 s).
  near(t, summary.queueWaitMs.p50, 2400, 'queue wait p50');
  near(t, summary.queueWaitMs.p95, 5600, 'queue wait p95');
  t.equal(summary.queueWaitMs.max, 5600);
  near(t, summary.sessionTimeMs.p50, 3201, 'session time p50');
  t.equal(summary.sessionTimeMs.max, 6401);
  t.equal(summary.maxServedAtOnce, 1);
  t.equal(summary.clients, 8);
  t.equal(summary.errors, 0);
  near(t, summary.sessionsPerSecond, 8 / 6.401, 'sessions/s');
  t.equal(summary.mibPerSecond, null, 'no uploads, no MiB/s');
  const growth = queueGrowth(run.sessions);
  near(t, growth.perPlaceMs, 800, 'each place in the queue costs one script');
  t.ok(growth.fit > 0.999, 'a straight line');
});

t.test('uploads, bursts and errors are counted from the replies', async (t) => {
  const put = (client: number, at: number, bytes: number) =>
    session({
      client,
      done: T0 + at + 10,
      uploadedBytes: bytes,
      replies: [
        { request: 'PUT', sentAt: T0 + at, at: T0 + at + 1, code: 150, count: 1 },
        { request: 'PUT data', sentAt: T0 + at + 1, at: T0 + at + 500, code: 226, count: 1 },
      ],
    });
  const failed = session({
    client: 2,
    greeted: null,
    quitSent: null,
    done: T0 + 3,
    error: { code: ErrorCodes.REPLY_ERROR, replyCode: 421, message: '421 too many connections' },
  });
  const burst = session({ client: 3, done: T0 + 2000, replies: [{ request: 'PING×1000', sentAt: T0 + 1000, at: T0 + 2000, code: 200, count: 1000 }] });
  const run = { ...chatRun(1, 1, 1), sessions: [put(0, 0, 8 * MiB), put(1, 500, 8 * MiB), failed, burst] };
  const measured = measureRun(run);
  t.equal(measured.uploadedBytes, 16 * MiB);
  t.equal(measured.uploadSpanMs, 1000, 'from the first PUT to the last commit');
  t.equal(measured.pings, 1000);
  t.equal(measured.pingSpanMs, 1000);
  t.same(measured.errorsByKind, { '421': 1 });
  t.equal(measured.completed, 3);
  const summary = summarizeRuns([run, run], null);
  t.equal(summary.errors, 2, 'errors add up over the runs');
  near(t, summary.mibPerSecond ?? 0, 16, 'MiB/s');
  near(t, summary.pingsPerSecond ?? 0, 1000, 'PING/s');
  t.equal(summary.idealRatio, null);
  t.equal(summary.queueWaitMs.count, 6, 'queue waits of the greeted sessions of both runs');
  t.equal(summary.sessionTimeMs.count, 6, 'session times of the completed ones');
});

t.test('the representative run is the one with the median makespan', async (t) => {
  const runs = [chatRun(2, 300, 1), chatRun(2, 100, 1), chatRun(2, 200, 1)];
  t.equal(representativeRun(runs), runs[2]);
  t.throws(() => representativeRun([]), RangeError);
});
