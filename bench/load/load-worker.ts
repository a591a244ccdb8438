/**
 * One load process of `socklab load`, forked by bench/load/load-generator.ts
 * (never run by hand). It gets its share of the sessions, gets ready, waits at
 * the barrier for the common start instant, runs every session it was given
 * (concurrently: many connections per process for large runs), and reports
 * each session's timeline. See bench/load/load-messages.ts for the exchange.
 *
 * Bounded: each session ends by its deadline, and the process exits as soon
 * as its parent goes away.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { waitForStartInstant } from './barrier.js';
import { cpuSecondsSince } from './cpu-time.js';
import type { ParentMessage, WorkerAssignment, WorkerMessage } from './load-messages.js';
import { checkGreeting } from '../../protocol/index.js';
import { countLineFeeds, PingConnection } from './ping-load.js';
import { SCENARIOS, type Payloads, type PlannedSession, type ScenarioParams, type SessionScript } from './scenarios.js';
import { connectEchoClient, connectScriptClient, makePayload, type Payload, type ScriptClient, type TargetEndpoints } from './script-client.js';
import { adoptClockAnchor, sharedNow, sleepUntil } from './shared-clock.js';
import { describeSessionError, SessionRecorder, type SessionTimeline } from './timeline.js';

interface PreparedRun {
  readonly assignment: WorkerAssignment;
  /** The target with its host resolved, so that connecting at the start instant needs no DNS. */
  readonly target: TargetEndpoints;
  readonly payloads: Payloads;
}

/** Payloads survive from run to run: the bench repeats a scenario with the same sizes. */
const payloadCache = new Map<number, Payload>();
let prepared: PreparedRun | null = null;
let codeWarmedUp = false;
const WARM_UP_SESSIONS = 3;
const WARM_UP_PINGS = 300;

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve, reject) => process.send?.(message, undefined, {}, (error) => (error ? reject(error) : resolve())));
}

async function prepare(assignment: WorkerAssignment): Promise<PreparedRun> {
  adoptClockAnchor(assignment.clockAnchor);
  const scenario = SCENARIOS[assignment.scenario];
  for (const size of scenario.payloadSizes(assignment.params)) if (!payloadCache.has(size)) payloadCache.set(size, makePayload(size));
  const { address } = await dns.lookup(assignment.target.host);
  if (!codeWarmedUp) {
    await warmUpClientCode();
    codeWarmedUp = true;
  }
  return { assignment, target: { ...assignment.target, host: address }, payloads: payloadCache };
}

/**
 * Runs the client's connect/greet/request path a few times against a
 * throwaway local server, so that the first session does not pay for loading
 * and compiling it while the clock runs, and PINGs enough for the PING loop
 * to be compiled before the ceiling scenario times it. Kept short: with 32
 * load processes on 2 cores, every 100 ms here is 1.6 s before a run starts.
 */
async function warmUpClientCode(): Promise<void> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.write('220 warm-up ready\n');
    socket.on('data', (chunk: Buffer) => socket.write('200 PONG\n'.repeat(countLineFeeds(chunk))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const target: TargetEndpoints = { kind: 'ceiling', host: '127.0.0.1', port, pingPort: port };
  for (let round = 0; round < WARM_UP_SESSIONS; round++) {
    const client = await connectScriptClient({ target, recorder: new SessionRecorder(0, 0, 'warm-up', sharedNow()), connectTimeoutMs: 5000 });
    await client.greet();
    await client.echo('warm-up');
    await client.quit();
  }
  const pinging = await PingConnection.connect('127.0.0.1', port);
  await pinging.nextReply();
  await pinging.pingWhile((answered) => answered < WARM_UP_PINGS);
  pinging.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A session's connection, as the runner needs it: to end it when the session's deadline passes. */
type OnConnected = (close: () => void) => void;

async function runSession(run: PreparedRun, planned: PlannedSession, startAt: number, sawModel: (model: string) => void): Promise<SessionTimeline> {
  const { assignment } = run;
  const scheduledStart = startAt + planned.offsetMs;
  const recorder = new SessionRecorder(planned.client, assignment.processIndex, planned.role, scheduledStart);
  if (assignment.live === true) recorder.watch((event) => void send({ type: 'event', event }).catch(() => {}));
  if (planned.offsetMs > 0) await sleepUntil(scheduledStart);
  const connection: { close?: () => void } = {};
  let timedOut = false;
  const deadline = setTimeout(
    () => {
      timedOut = true;
      connection.close?.();
    },
    scheduledStart + assignment.sessionTimeoutMs - sharedNow(),
  );
  const onConnected: OnConnected = (close) => {
    connection.close = close;
    if (timedOut) close();
  };
  try {
    const script = SCENARIOS[assignment.scenario].script;
    if (run.target.kind === 'echo') await plainLineSession(run, planned, recorder, onConnected, script);
    else if (script.kind === 'ping-burst') await pingBurstSession(run, recorder, onConnected, sawModel, script.requests(assignment.params));
    else await protocolSession(run, planned, recorder, onConnected, sawModel, script.run);
    return recorder.finish(null);
  } catch (error) {
    connection.close?.();
    const failure = describeSessionError(error, timedOut);
    // A plain line server loaded as a socklab one never greets: every session waits out its timeout.
    const neverGreeted = timedOut && run.target.kind === 'socklab' && !recorder.served;
    return recorder.finish(neverGreeted ? { ...failure, message: `${failure.message}; no greeting came: if the server does not greet (a plain line server), add --protocol echo` } : failure);
  } finally {
    clearTimeout(deadline);
  }
}

type ProtocolScript = (client: ScriptClient, session: PlannedSession, params: ScenarioParams, payloads: Payloads) => Promise<void>;

/** Connect, greeting, the scenario's script through the protocol client, QUIT. */
async function protocolSession(
  run: PreparedRun,
  planned: PlannedSession,
  recorder: SessionRecorder,
  onConnected: OnConnected,
  sawModel: (model: string) => void,
  script: ProtocolScript,
): Promise<void> {
  const client = await connectScriptClient({ target: run.target, recorder, connectTimeoutMs: run.assignment.connectTimeoutMs });
  onConnected(() => client.close());
  sawModel(await client.greet());
  await script(client, planned, run.assignment.params, run.payloads);
  await client.quit();
}

/** Connect, the scenario's lines (the first answer is when the server started serving), close. */
async function plainLineSession(
  run: PreparedRun,
  planned: PlannedSession,
  recorder: SessionRecorder,
  onConnected: OnConnected,
  script: SessionScript<ScenarioParams>,
): Promise<void> {
  // The load command refuses other scenarios with --protocol echo: reaching here is a bug.
  if (script.kind !== 'lines') throw new Error(`a ${script.kind} script needs a protocol-v1 server, not a plain line server`);
  const client = await connectEchoClient({ target: run.target, recorder, connectTimeoutMs: run.assignment.connectTimeoutMs });
  onConnected(() => client.close());
  await script.run(client, planned, run.assignment.params);
  client.quit();
}

/** Connect, greeting, `requests` PINGs in the plain loop of ping-load.ts (raw speed, one event on the timeline), QUIT. */
async function pingBurstSession(run: PreparedRun, recorder: SessionRecorder, onConnected: OnConnected, sawModel: (model: string) => void, requests: number): Promise<void> {
  recorder.markConnectStart();
  const connection = await PingConnection.connect(run.target.host, run.target.pingPort, run.assignment.connectTimeoutMs);
  recorder.markConnected();
  onConnected(() => connection.close());
  const { model } = checkGreeting(await connection.nextReply());
  recorder.markGreeted();
  sawModel(model);
  const sentAt = sharedNow();
  await connection.pingWhile((answered) => answered < requests);
  recorder.reply(`PING×${requests}`, sentAt, 200, requests);
  const quitSent = recorder.markQuitSent();
  const bye = await connection.quit();
  recorder.reply('QUIT', quitSent, bye.code);
}

async function start(at: number): Promise<void> {
  const run = prepared;
  prepared = null;
  if (run === null) throw new Error('told to start before being prepared');
  let serverModel: string | null = null;
  const startedAt = await waitForStartInstant(at);
  const cpuAtStart = process.cpuUsage();
  const sessions = await Promise.all(run.assignment.sessions.map((planned) => runSession(run, planned, at, (model) => (serverModel ??= model))));
  await send({ type: 'finished', startedAt, cpuSeconds: cpuSecondsSince(cpuAtStart), serverModel, sessions });
}

async function handle(message: ParentMessage): Promise<void> {
  switch (message.type) {
    case 'prepare':
      prepared = await prepare(message.assignment);
      await send({ type: 'ready' });
      return;
    case 'start':
      await start(message.at);
      return;
    case 'exit':
      process.exit(0);
  }
}

async function fail(error: unknown): Promise<never> {
  const message = error instanceof Error ? error.message : String(error);
  await send({ type: 'failed', message }).catch(() => {});
  process.exit(1);
}

if (process.send === undefined) {
  process.stderr.write('load-worker.js is started by "socklab load", not by hand\n');
  process.exit(2);
}
// Without its parent nobody collects the results: stop at once rather than load a server for nothing.
process.on('disconnect', () => process.exit(0));
process.on('message', (message: ParentMessage) => {
  handle(message).catch(fail);
});
