/**
 * The scripted clients' plain-line side (`socklab load --protocol echo`): what
 * a session against a student's line server records, on a channel whose
 * answers and clock the test controls; and the chat script's pacing, which
 * must count from the first answer, since a plain server does not greet.
 * And the payloads the uploads send.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { SCENARIOS, type PlannedSession } from '../../bench/load/scenarios.js';
import { connectEchoClient, EchoScriptClient, makePayload, PLAIN_LINE_REQUEST, type LineScriptClient } from '../../bench/load/script-client.js';
import { sharedNow, sleep } from '../../bench/load/shared-clock.js';
import { SessionRecorder } from '../../bench/load/timeline.js';
import { ConnectionError, ErrorCodes, type ByteChannel } from '../../protocol/index.js';
import { closedPort } from '../clients/run-cli.js';

const utf8 = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A line server in memory: `respond` gets each complete line the client sent
 * and returns the answer (without its LF), or null to close the connection.
 * Each answer is handed over one byte per read, so the client must put
 * lines together the way it must over TCP.
 */
class LineServerChannel implements ByteChannel {
  readonly received: string[] = [];
  closed = false;
  private pending = '';
  private readonly chunks: Array<Uint8Array | null> = [];
  private wake: (() => void) | null = null;

  constructor(private readonly respond: (line: string) => string | null) {}

  async read(): Promise<Uint8Array | null> {
    while (this.chunks.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.chunks.shift() ?? null;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.pending += decoder.decode(bytes);
    for (let lf = this.pending.indexOf('\n'); lf >= 0; lf = this.pending.indexOf('\n')) {
      const line = this.pending.slice(0, lf);
      this.pending = this.pending.slice(lf + 1);
      this.received.push(line);
      const answer = this.respond(line);
      if (answer === null) this.chunks.push(null);
      else for (const byte of utf8.encode(`${answer}\n`)) this.chunks.push(Uint8Array.of(byte));
      this.wake?.();
    }
  }

  close(): void {
    this.closed = true;
  }
}

t.test('the first answer ends the queue wait; each line is recorded as answered, with no code', async (t) => {
  let now = 100;
  const recorder = new SessionRecorder(0, 0, 'chat', 90, () => now);
  const channel = new LineServerChannel((line) => {
    // The server gets to this client late the first time (it was serving another), at once after that.
    now += line === 'first' ? 50 : 1;
    return `you said: ${line}`;
  });
  recorder.markConnectStart();
  recorder.markConnected();
  const client = new EchoScriptClient(channel, recorder);
  await client.echo('first');
  now = 400;
  await client.echo('second');
  now = 500;
  client.quit();
  const timeline = recorder.finish(null);
  t.same(channel.received, ['first', 'second'], 'the server got each line as sent');
  t.equal(timeline.greeted, 150, 'served from the first answer');
  t.same(timeline.replies, [
    { request: PLAIN_LINE_REQUEST, sentAt: 100, at: 150, code: null, count: 1 },
    { request: PLAIN_LINE_REQUEST, sentAt: 400, at: 401, code: null, count: 1 },
  ]);
  t.equal(timeline.quitSent, 500, 'saying goodbye is closing');
  t.ok(channel.closed, 'and the connection is closed');
});

t.test("a socklab server's greeting means --protocol echo was a mistake, and says so", async (t) => {
  const recorder = new SessionRecorder(0, 0, 'chat', 0);
  const client = new EchoScriptClient(new LineServerChannel(() => '220 socklab/1 sequential ready'), recorder);
  const error = await client.echo('client 1 line 1').catch((e: unknown) => e);
  t.ok(error instanceof ConnectionError, 'a ConnectionError');
  t.equal((error as ConnectionError).code, ErrorCodes.MALFORMED_REPLY);
  t.match((error as Error).message, /speaks socklab's protocol v1.*leave out --protocol echo/);
  t.notOk(recorder.served, 'the client is not counted as served');
});

t.test('a server that closes instead of answering ends the session with CONNECTION_CLOSED', async (t) => {
  const client = new EchoScriptClient(new LineServerChannel(() => null), new SessionRecorder(0, 0, 'chat', 0));
  const error = await client.echo('hello').catch((e: unknown) => e);
  t.equal((error as ConnectionError).code, ErrorCodes.CONNECTION_CLOSED);
});

t.test('nothing listening: the refusal names the port and asks whether your server runs', async (t) => {
  const port = await closedPort();
  const target = { kind: 'echo', host: '127.0.0.1', port, pingPort: port } as const;
  const error = await connectEchoClient({ target, recorder: new SessionRecorder(0, 0, 'chat', 0), connectTimeoutMs: 5000 }).catch((e: unknown) => e);
  t.equal((error as ConnectionError).code, ErrorCodes.CONNECTION_REFUSED);
  t.match((error as Error).message, `127.0.0.1:${port}: connection refused (is your server running, on that port?)`);
  t.notMatch((error as Error).message, /socklab server/, "no advice to start socklab's own server");
});

t.test('the chat script paces its lines from the first answer, so a queue wait does not squeeze them together', async (t) => {
  const queueWaitMs = 120;
  const thinkMs = 60;
  const calls: { text: string; at: number }[] = [];
  let firstAnsweredAt = 0;
  // The first line waits in a queue, as it would on a blocking server busy with another client.
  const client: LineScriptClient = {
    async echo(text) {
      calls.push({ text, at: sharedNow() });
      if (calls.length === 1) {
        await sleep(queueWaitMs);
        firstAnsweredAt = sharedNow();
      }
    },
  };
  const session: PlannedSession = { client: 2, role: 'chat', offsetMs: 0 };
  const script = SCENARIOS.chat.script;
  if (script.kind !== 'lines') throw new Error('the chat scenario is made of lines');
  await script.run(client, session, { clients: 4, echoes: 3, thinkMs });
  t.same(
    calls.map((c) => c.text),
    ['client 3 line 1', 'client 3 line 2', 'client 3 line 3'],
  );
  for (const [k, call] of calls.slice(1).entries()) {
    const due = firstAnsweredAt + (k + 1) * thinkMs;
    t.ok(call.at >= due, `line ${k + 2} went ${k + 1} think times after the first answer, not after the first line was sent (${(call.at - due).toFixed(2)} ms after due)`);
  }
});

t.test('payloads: the same bytes in every process, whatever piece size they are made in, and their sha256', async (t) => {
  const whole = makePayload(100_003);
  const inPieces = makePayload(100_003, 4096);
  t.ok(inPieces.bytes.equals(whole.bytes), 'pieces of 4 KiB make the same bytes as one piece');
  t.equal(inPieces.sha256, whole.sha256);
  t.equal(whole.sha256, createHash('sha256').update(whole.bytes).digest('hex'), 'the sha256 is that of the bytes');
  t.ok(makePayload(100_003).bytes.equals(whole.bytes), 'made again, the same bytes');
  const distinct = new Set(whole.bytes).size;
  t.ok(distinct > 250, `not zeros or a short pattern: ${distinct} distinct byte values`);
  t.not(whole.bytes.subarray(0, 4096).toString('hex'), whole.bytes.subarray(4096, 8192).toString('hex'), 'no repeat from one piece to the next');
  const empty = makePayload(0);
  t.equal(empty.bytes.length, 0);
  t.equal(empty.sha256, createHash('sha256').digest('hex'), 'an empty payload has the empty sha256');
});
