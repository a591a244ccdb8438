/**
 * `socklab demo` (`npm run demo`): homework 2 to watch. Starts a server as its
 * own process on a free port with a temporary root, and N client processes
 * (the load generator's own, bench/load/load-worker.ts) that connect together and
 * each chat a few ECHO lines with a think time, the chat scenario's script.
 * While they run it shows each client's state live (connecting, waiting in the
 * queue, being served, done) with the server's log under it; then the final
 * timeline and who waited how long, and why.
 *
 *   socklab demo                              sequential server, 4 clients
 *   socklab demo --server all                 sequential, workers (2 threads), async one after the other
 *   socklab demo --server workers --threads 2 --clients 6
 *   socklab demo | cat                        plain timestamped lines (also without a terminal)
 *
 * Ctrl-C stops it at any moment: the server and every client process end, the
 * temporary root is removed, nothing is left running.
 */
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_THREADS } from '../../servers/cli.js';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { checkInteger, exitWithFailure, outputWidth, UsageError } from '../../bin/cli-support.js';
import { socklabCommand } from '../../bin/invocation.js';
import { defaultProcessCount, loadCompilerFor, LoadGenerator, LoadGeneratorError, type LoadRunResult } from '../load/load-generator.js';
import { idealMakespanMs, makespanMs } from '../load/metrics.js';
import { buildScenarioReport } from '../report/build-report.js';
import type { TargetMeasurement } from '../report/report-model.js';
import { counted, wrapText } from '../report/format.js';
import { textTimeline } from '../report/report-timeline.js';
import { describeParams, planSessions, SCENARIOS, scenarioParams, type ScenarioParams } from '../load/scenarios.js';
import { socklabEndpoints } from '../load/script-client.js';
import { startServerProcess, type ServerProcess } from '../targets/server-process.js';
import { sharedNow } from '../load/shared-clock.js';
import { clientsServedAtOnce, targetLabel, type TargetSpec } from '../targets/targets.js';
import { DemoRun } from './state.js';
import { demoSummary } from './summary.js';
import { LiveView, PlainView, type DemoView, type RunIntro } from './views.js';

const DEMO_SERVERS = [...SERVER_MODELS, 'all'] as const;
type DemoServer = (typeof DEMO_SERVERS)[number];
/** One process per client, and a row per client on the screen. */
export const MAX_DEMO_CLIENTS = 32;
const HOST = '127.0.0.1';
/** After the last client is done, the server's last log lines have this long to arrive before the picture freezes. */
const SETTLE_MS = 150;

export interface DemoOptions {
  readonly servers: readonly ServerModelName[];
  readonly clients: number;
  readonly messages: number;
  readonly thinkMs: number;
  readonly threads: number;
  readonly live: boolean;
  readonly colour: boolean;
}

interface DemoArgs {
  server: DemoServer;
  clients: number;
  messages: number;
  'think-ms': number;
  threads?: number;
  plain: boolean;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'watch the queue live: a server and N chat clients (processes), who waits and who is served',
  builder: (yargs: Argv) =>
    yargs
      .option('server', { choices: DEMO_SERVERS, default: 'sequential' as DemoServer, describe: 'server model to start; all: the three one after the other' })
      .option('clients', { type: 'number', default: 4, describe: `client processes, started together (1 to ${MAX_DEMO_CLIENTS})` })
      .option('messages', { type: 'number', default: 3, describe: 'ECHO lines each client sends' })
      .option('think-ms', { type: 'number', default: 1000, describe: 'think time between two lines of a client (ms)' })
      .option('threads', { type: 'number', describe: 'workers: threads in the pool (default: half the clients, so that the pool\'s queue shows)' })
      .option('plain', { type: 'boolean', default: false, describe: 'timestamped lines instead of the live screen (the default when stdout is not a terminal)' })
      .example('$0 demo', 'a sequential server and 4 clients: the queue, live')
      .example('$0 demo --server all', 'sequential, workers (2 threads for 4 clients) and async one after the other')
      .example('$0 demo --server workers --threads 2 --clients 6', 'a pool of 2 threads: 4 clients wait for a free one')
      .example('$0 demo --clients 8 --think-ms 300', 'more clients, quicker chats')
      .epilogue('The server gets a free port and a temporary root, removed at the end; Ctrl-C stops everything at any moment.') as unknown as Argv<DemoArgs>,
  handler: async (args) => {
    try {
      await runDemo(demoOptions(args));
    } catch (error) {
      exitWithFailure(error);
    }
  },
};

/**
 * The demo's pool: half the clients, so that a pool with fewer threads than
 * clients shows its queue (with as many threads as clients, workers would
 * look exactly like async).
 */
export function demoThreads(clients: number): number {
  return Math.max(1, Math.floor(clients / 2));
}

function demoOptions(args: DemoArgs): DemoOptions {
  const terminal = process.stdout.isTTY === true && process.env.TERM !== 'dumb';
  const clients = checkInteger(args.clients, '--clients', 1, MAX_DEMO_CLIENTS);
  return {
    servers: args.server === 'all' ? [...SERVER_MODELS] : [args.server],
    clients,
    messages: checkInteger(args.messages, '--messages', 1, 1000),
    thinkMs: checkInteger(args['think-ms'], '--think-ms', 0, 600_000),
    threads: args.threads === undefined ? demoThreads(clients) : checkInteger(args.threads, '--threads', 1, 1024),
    live: terminal && !args.plain,
    colour: terminal && process.env.NO_COLOR === undefined,
  };
}

function specFor(model: ServerModelName, threads: number): TargetSpec {
  return model === 'workers' ? { kind: 'model', model, threads } : { kind: 'model', model };
}

/**
 * `npx socklab load chat sequential --clients 4 ...`: the bench's way to
 * measure what the demo showed, one command per server, each ready to paste
 * where the user is (bin/invocation.ts).
 */
function loadCommandsFor(options: DemoOptions, params: ScenarioParams): string[] {
  return options.servers.map((server) => {
    const threads = server === 'workers' ? ` --threads ${options.threads}` : '';
    return `${socklabCommand()} load chat ${server}${threads} ${describeParams(SCENARIOS.chat, params)}`;
  });
}

/** What to watch for, said before the run. */
function expectation(spec: TargetSpec, clients: number): string {
  if (spec.kind !== 'model') return '';
  switch (spec.model) {
    case 'sequential':
      return 'sequential serves one client at a time; the others wait in the queue.';
    case 'workers': {
      const threads = clientsServedAtOnce(spec, spec.model) ?? DEFAULT_THREADS;
      return threads >= clients
        ? `workers: a thread per client (${threads} threads, ${clients} clients): all served at once.`
        : `workers: ${counted(threads, 'thread')}, ${clients} clients: ${threads} served at once, the rest wait for a thread.`;
    }
    case 'async':
      return 'async serves every client at once from one event loop: nobody waits.';
  }
}

/** The signals that stop the demo: Ctrl-C, and what a closing terminal or a `kill` sends. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Ctrl-C (SIGINT), SIGTERM and SIGHUP: the first stops the demo cleanly, a second one at once. */
class StopSignal {
  signal: string | null = null;
  readonly stopped: Promise<void>;
  private resolve: () => void = () => {};
  private readonly handlers = new Map<NodeJS.Signals, () => void>();

  constructor(private readonly forceStop: () => void) {
    this.stopped = new Promise((resolve) => (this.resolve = resolve));
    for (const signal of STOP_SIGNALS) {
      const handler = () => this.request(signal);
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  /** Signals this process itself got: the load processes may see the terminal's Ctrl-C first, and that is not a second one. */
  private received = 0;

  request(signal: string): void {
    this.received++;
    if (this.received > 1) {
      this.forceStop();
      return;
    }
    this.note(signal);
  }

  /** Counts as stopped by `signal` (which reached the load processes before this one). */
  note(signal: string): void {
    this.signal ??= signal;
    this.resolve();
  }

  dispose(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
  }
}

/**
 * A load process killed by the terminal's Ctrl-C (the whole foreground
 * process group gets the SIGINT) fails the run before the demo's own handler
 * may have run: that is a stop, not a failure.
 */
export function killedBySignal(error: unknown): NodeJS.Signals | null {
  if (!(error instanceof LoadGeneratorError) || error.signal === null) return null;
  return STOP_SIGNALS.includes(error.signal) ? error.signal : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const origin = sharedNow();
  const write = (text: string) => {
    process.stdout.write(text);
  };
  process.stdout.on('error', () => {}); // a reader that went away (| head) must not crash the cleanup
  const view: DemoView = options.live ? new LiveView(process.stdout, options.colour, sharedNow) : new PlainView(write, origin, sharedNow);
  const params: ScenarioParams = scenarioParams(SCENARIOS.chat, { clients: options.clients, echoes: options.messages, thinkMs: options.thinkMs });
  const servers = new Set<ServerProcess>();
  const killServers = () => {
    for (const server of servers) {
      try {
        process.kill(server.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  // If this process ends any other way (an uncaught error), its server does not outlive it; its load processes
  // stop by themselves when their parent goes away.
  process.on('exit', killServers);
  const stop = new StopSignal(() => {
    killServers();
    view.close();
    process.stderr.write('socklab: stopped at once; the temporary root may be left behind\n');
    process.exit(130);
  });
  const generator = LoadGenerator.start(defaultProcessCount(options.clients), loadCompilerFor('chat'));
  const measurements: TargetMeasurement[] = [];
  try {
    for (const [index, model] of options.servers.entries()) {
      if (stop.signal !== null) break;
      const spec = specFor(model, options.threads);
      const intro: RunIntro = {
        counter: options.servers.length > 1 ? `run ${index + 1} of ${options.servers.length}` : '',
        script: `${options.clients} clients (processes) start at once: ${options.messages} ECHO line${options.messages === 1 ? '' : 's'} each, ${options.thinkMs} ms apart, then QUIT`,
        expectation: expectation(spec, options.clients),
      };
      const measured = await demoRun(spec, params, intro, { view, generator, stop, servers });
      if (measured === null) break;
      measurements.push(measured);
      if (options.servers.length > 1 && index < options.servers.length - 1) view.print('');
    }
  } finally {
    await generator.close();
    view.close();
    stop.dispose();
    process.off('exit', killServers);
  }

  const report = measurements.length === 0 ? null : buildScenarioReport('chat', params, null, measurements);
  // Prose is broken to fit the terminal (80 columns too); commands are not, so that they can be pasted.
  const width = outputWidth(false);
  const prose = (...paragraphs: string[]) => paragraphs.map((paragraph) => wrapText(paragraph, width));
  const out: string[] = [''];
  if (report !== null) {
    out.push(
      measurements.length > 1 ? 'Final timelines, one under the other on the same time scale:' : 'Final timeline:',
      ...prose(textTimeline(report)),
      'Who waited, and why:',
      ...prose(...demoSummary(report)),
      '',
      'The same load, measured (a table, repeatable):',
      ...loadCommandsFor(options, params).map((command) => `  ${command}`),
    );
  }
  if (stop.signal !== null) {
    out.push('', ...prose(`Stopped (${stop.signal}): the server and the ${options.clients} client processes have ended, the temporary root is removed.`));
  }
  view.print(`${out.join('\n')}\n`);
  const sessions = measurements.flatMap((m) => m.runs).flatMap((r) => r.sessions);
  if (sessions.length > 0 && sessions.every((s) => s.error !== null)) {
    throw new UsageError(`every client failed; the first: ${sessions[0]?.error?.message ?? 'unknown'}`);
  }
}

interface RunContext {
  readonly view: DemoView;
  readonly generator: LoadGenerator;
  readonly stop: StopSignal;
  readonly servers: Set<ServerProcess>;
}

/** One server model: start it, run the clients against it while the view shows them, stop it. Null when stopped. */
async function demoRun(spec: TargetSpec, params: ScenarioParams, intro: RunIntro, context: RunContext): Promise<TargetMeasurement | null> {
  const { view, generator, stop, servers } = context;
  const clients = params.clients ?? 1;
  const model = spec.kind === 'model' ? spec.model : 'sequential';
  const label = targetLabel(spec);
  const scenario = SCENARIOS.chat;
  const idealMs = idealMakespanMs(scenario, params, planSessions(scenario, params, null), clientsServedAtOnce(spec, null), null) ?? 0;
  const run = new DemoRun(label, clients, params.echoes ?? 1, idealMs);
  view.begin(run, intro);

  const starting = startServerProcess(model, {
    ...(spec.kind === 'model' && spec.threads !== undefined ? { threads: spec.threads } : {}),
    onOutputLine: (line) => {
      const entry = run.addLogLine(line, sharedNow());
      if (entry !== null) view.serverLine(run, entry);
    },
  });
  const server = await Promise.race([starting, stop.stopped.then(() => null)]);
  if (server === null) {
    view.end(run);
    // It may still come up: stop it then, so that nothing is left running.
    await starting.then((late) => late.stop()).catch(() => {});
    return null;
  }
  servers.add(server);
  try {
    run.host = HOST;
    run.port = server.port;
    const sessionTimeoutMs = clients * ((params.echoes ?? 1) * (params.thinkMs ?? 0) + 2000) + 30_000;
    const running = generator.run({
      scenario: 'chat',
      params,
      target: socklabEndpoints(HOST, server.port),
      arrivalsPerSecond: null,
      sessionTimeoutMs,
      onEvent: (event) => {
        const change = run.apply(event);
        if (change !== null) view.change(run, change);
      },
    });
    running.catch(() => {}); // when stopped, nobody awaits it any more
    const outcome = await Promise.race([
      running.then(
        (result): { result: LoadRunResult } | { error: unknown } => ({ result }),
        (error: unknown) => ({ error }),
      ),
      stop.stopped.then(() => null),
    ]);
    if (outcome === null || 'error' in outcome) {
      const signal = outcome === null ? null : killedBySignal(outcome.error);
      if (outcome !== null && signal === null) throw outcome.error;
      if (signal !== null) stop.note(signal);
      run.endedAt = sharedNow();
      view.end(run);
      return null;
    }
    const { result } = outcome;
    run.endedAt = result.startAt + makespanMs(result);
    await sleep(SETTLE_MS);
    view.end(run);
    return {
      spec,
      label,
      runs: [result],
      stats: null,
      resources: { cpuSecondsPerRun: server.cpuSeconds(), peakRssBytes: server.peakRss() },
      plainLoop: null,
    };
  } finally {
    await server.stop();
    servers.delete(server);
  }
}
