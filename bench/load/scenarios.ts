/**
 * The load scenarios: what each client does, with every parameter a flag
 * (`socklab load <scenario> --help`), and what the ideal makespan is.
 *
 * A scenario's ideal is either computed from its script (chat, slow-client:
 * each session needs a known time that no server can shorten, and a server
 * serving k clients at once can at best run them k at a time, first come first
 * served), or, where the work is bytes and the machine decides how fast they
 * move, the makespan of the ceiling (bare Node servers) doing the same load in
 * the same run.
 */
import { byteSizeText } from '../../bin/cli-support.js';
import { formatBytes, formatMs } from '../report/format.js';
import type { LineScriptClient, Payload, ScriptClient } from './script-client.js';
import { sharedNow, sleepUntil } from './shared-clock.js';

export type ParamUnit = 'count' | 'ms' | 'bytes' | 'bytes/s';

export interface ParamSpec {
  /** The command-line flag, without the dashes. */
  readonly flag: string;
  readonly unit: ParamUnit;
  readonly default: number;
  readonly min: number;
  readonly describe: string;
}

export type ScenarioParams = Readonly<Record<string, number>>;

/** One client's session, as planned before the run. */
export interface PlannedSession {
  readonly client: number;
  readonly role: string;
  /** When it starts, after the common start instant (the open model overrides it). */
  readonly offsetMs: number;
}

/** Payloads by size, prepared (and hashed) once in each load process. */
export type Payloads = ReadonlyMap<number, Payload>;

/** Which of the numbers tells the scenario's story (the report's sentences lead with it). */
export type ScenarioStory = 'queue' | 'bytes' | 'head-of-line' | 'scale' | 'rate';

/**
 * What a session does between connecting and closing. A `lines` script only
 * sends lines and waits for their answers, so it runs against socklab's
 * servers (as ECHO) and against any plain line server (`--protocol echo`).
 * Most scenarios script it through the protocol client; the ceiling scenario
 * measures raw request rate, so its sessions run the plain PING loop of
 * bench/load/ping-load.ts. Both of those need a protocol-v1 server.
 */
export type SessionScript<P extends ScenarioParams> =
  | {
      readonly kind: 'lines';
      /** The session between the greeting and QUIT, on a socklab server; between connecting and closing, on a plain one. */
      run(client: LineScriptClient, session: PlannedSession, params: P): Promise<void>;
    }
  | {
      readonly kind: 'protocol';
      /** The session between the greeting and QUIT (the runner does both). */
      run(client: ScriptClient, session: PlannedSession, params: P, payloads: Payloads): Promise<void>;
    }
  | {
      readonly kind: 'ping-burst';
      /** PINGs each session sends, each after the previous reply, between its greeting and its QUIT. */
      requests(params: P): number;
    };

export interface Scenario<P extends ScenarioParams = ScenarioParams> {
  readonly name: ScenarioName;
  readonly summary: string;
  /**
   * How the ideal makespan is defined, in a sentence for the report and --help,
   * with its example worked out for these parameters (--help: the defaults).
   */
  idealDefinition(params: P): string;
  readonly story: ScenarioStory;
  readonly params: { readonly [K in keyof P]: ParamSpec };
  plan(params: P): PlannedSession[];
  /**
   * The time this session needs on a server that serves it at once and
   * instantly; null when only the ceiling can say (the ideal is then the
   * ceiling's makespan).
   */
  serviceTimeMs(session: PlannedSession, params: P): number | null;
  payloadSizes(params: P): number[];
  readonly script: SessionScript<P>;
  /** Load processes when --procs is not given; absent: one per client, up to the cap. */
  readonly defaultProcesses?: number;
  /**
   * Warm-up runs a comparison makes before its measured ones when --warmup is
   * not given; absent: DEFAULT_WARMUP_RUNS. A scenario whose runs are many short sessions needs
   * more of them for a fresh server process to have compiled its
   * per-session code (SESSIONS_TO_WARM_UP).
   */
  defaultWarmupRuns?(params: P): number;
}

/**
 * Sessions a fresh server process serves before its per-session code runs
 * compiled. Measured on async, crowds of 1000 one after the other: V8's
 * compiler threads used 190, 180 and 130 ms of CPU in the first three, 20–40
 * ms from the fourth on, and the main thread 450, 310, 300 ms, then 230–300.
 * On 2 cores that compilation competes with the server and its clients, so a
 * makespan over fewer sessions measures V8's compiler as much as the model,
 * and a big program (a socklab server) more than a small one (a ceiling).
 */
export const SESSIONS_TO_WARM_UP = 3000;
/** A bound on those runs, so that a crowd of a few clients is not warmed up for minutes. */
const MAX_WARMUP_RUNS = 5;

/** Warm-up runs of `sessionsPerRun` sessions each that reach SESSIONS_TO_WARM_UP (1 to MAX_WARMUP_RUNS). */
export function runsToWarmUp(sessionsPerRun: number): number {
  return Math.min(MAX_WARMUP_RUNS, Math.max(1, Math.ceil(SESSIONS_TO_WARM_UP / Math.max(1, sessionsPerRun))));
}

/** A comparison's warm-up runs when neither --warmup nor the scenario says otherwise: one run warms caches and the JIT of long sessions. */
export const DEFAULT_WARMUP_RUNS = 1;

/** The warm-up runs a comparison of `scenario` makes when --warmup is not given. */
export function defaultWarmupRuns<P extends ScenarioParams>(scenario: Scenario<P>, params: P): number {
  return scenario.defaultWarmupRuns?.(params) ?? DEFAULT_WARMUP_RUNS;
}

export const SCENARIO_NAMES = ['chat', 'upload', 'slow-client', 'crowd', 'ceiling'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/**
 * What the load speaks to the server: socklab's protocol v1 (a greeting,
 * commands), or plain lines, each answered with one line (`echo`: the
 * lecture's server as the homeworks complete it, in any language).
 */
export const LOAD_PROTOCOLS = ['v1', 'echo'] as const;
export type LoadProtocol = (typeof LOAD_PROTOCOLS)[number];

const KiB = 1024;
const MiB = 1024 * KiB;

function clientsParam(defaultCount: number): ParamSpec {
  return { flag: 'clients', unit: 'count', default: defaultCount, min: 1, describe: 'clients (sessions), each its own connection' };
}

function everyoneAtOnce(clients: number, role: string): PlannedSession[] {
  return Array.from({ length: clients }, (_, client) => ({ client, role, offsetMs: 0 }));
}

function payloadFor(payloads: Payloads, size: number): Payload {
  const payload = payloads.get(size);
  // The worker prepares every size payloadSizes() names; a miss is a bug in a scenario.
  if (payload === undefined) throw new Error(`no payload of ${size} bytes was prepared`);
  return payload;
}

type ChatParams = { readonly clients: number; readonly echoes: number; readonly thinkMs: number };

/** How long one chat script lasts: the think times between its ECHO lines (the ideal, and its sentence). */
function chatScriptMs(p: ChatParams): number {
  return (p.echoes - 1) * p.thinkMs;
}

/** Homework 2: each client sends ECHO lines a think time apart, then QUIT. */
const chat: Scenario<ChatParams> = {
  name: 'chat',
  summary: 'homework 2: each client sends ECHO lines a think time apart, then QUIT',
  idealDefinition: (p) =>
    `a client's script lasts (echoes − 1) × think (${p.echoes} ECHO ${formatMs(p.thinkMs)} apart = ${p.echoes - 1} gaps = ${formatMs(chatScriptMs(p))}); ` +
    'a server serving k clients at once needs ⌈clients ÷ k⌉ scripts: sequential k = 1, workers k = --threads, async k = clients, a server of your own k = --serves',
  story: 'queue',
  params: {
    clients: clientsParam(8),
    echoes: { flag: 'echoes', unit: 'count', default: 5, min: 1, describe: 'ECHO lines each client sends' },
    thinkMs: { flag: 'think-ms', unit: 'ms', default: 200, min: 0, describe: 'think time between two ECHO lines' },
  },
  plan: (p) => everyoneAtOnce(p.clients, 'chat'),
  serviceTimeMs: (_session, p) => chatScriptMs(p),
  payloadSizes: () => [],
  script: {
    kind: 'lines',
    /**
     * Lines 200 ms apart means sent 200 ms apart: line k goes (k − 1) think times after the first
     * was answered (or as soon as the previous answer is back, if that is later), so round trips do
     * not add up. The clock starts at the first answer, not at the first line sent: a plain line
     * server does not greet, and the first answer is when it starts serving this client.
     */
    async run(client, session, p) {
      const line = (n: number) => `client ${session.client + 1} line ${n}`;
      await client.echo(line(1));
      const firstAnsweredAt = sharedNow();
      for (let n = 2; n <= p.echoes; n++) {
        await sleepUntil(firstAnsweredAt + (n - 1) * p.thinkMs);
        await client.echo(line(n));
      }
    },
  },
};

type OneUploadParams = { readonly clients: number; readonly size: number };

/** Scenarios in which each client uploads one file and quits; their ideal is the ceiling's makespan. */
function oneUploadEach(
  fields: Pick<Scenario<OneUploadParams>, 'name' | 'summary' | 'idealDefinition' | 'story' | 'defaultWarmupRuns'> & { readonly clients: number; readonly size: number },
): Scenario<OneUploadParams> {
  return {
    ...(fields.defaultWarmupRuns === undefined ? {} : { defaultWarmupRuns: fields.defaultWarmupRuns }),
    name: fields.name,
    summary: fields.summary,
    idealDefinition: fields.idealDefinition,
    story: fields.story,
    params: {
      clients: clientsParam(fields.clients),
      size: { flag: 'size', unit: 'bytes', default: fields.size, min: 0, describe: 'bytes each client uploads' },
    },
    plan: (p) => everyoneAtOnce(p.clients, fields.name),
    serviceTimeMs: () => null,
    payloadSizes: (p) => [p.size],
    script: {
      kind: 'protocol',
      async run(client, session, p, payloads) {
        await client.put(`${fields.name}-${session.client + 1}.bin`, payloadFor(payloads, p.size));
      },
    },
  };
}

/** Homework 3: each client uploads one large file with its sha256. */
const upload = oneUploadEach({
  name: 'upload',
  summary: 'homework 3: each client PUTs one large file with its sha256',
  idealDefinition: () => "the ceiling's makespan: the same clients copying the same bytes raw into files (and fsyncing them) on this machine, in the same run",
  story: 'bytes',
  clients: 8,
  size: 16 * MiB,
});

type SlowClientParams = {
  readonly clients: number;
  readonly slowSize: number;
  readonly slowRate: number;
  readonly quickSize: number;
  readonly quickDelayMs: number;
};

/** The shortest the slow client's upload can take at its rate (the ideal, and its sentence). */
function slowUploadMs(p: SlowClientParams): number {
  return (p.slowSize / p.slowRate) * 1000;
}

/** Head-of-line blocking: one client trickles an upload; the others want a moment each. */
const slowClient: Scenario<SlowClientParams> = {
  name: 'slow-client',
  summary: 'head-of-line blocking: client 1 trickles an upload while the others each do LIST and a small PUT',
  idealDefinition: (p) => {
    const slowest = formatMs(slowUploadMs(p));
    return (
      `the slow upload cannot end before size ÷ rate (${formatBytes(p.slowSize)} at ${formatBytes(p.slowRate)}/s = ${slowest}) and the quick clients need next to nothing, ` +
      `so ${slowest} on every server; what differs is how long the quick clients wait (queue wait, session time)`
    );
  },
  story: 'head-of-line',
  params: {
    clients: clientsParam(8),
    slowSize: { flag: 'slow-size', unit: 'bytes', default: 1 * MiB, min: 1, describe: 'bytes the slow client uploads' },
    slowRate: { flag: 'slow-rate', unit: 'bytes/s', default: 256 * KiB, min: 1, describe: 'how fast the slow client sends' },
    quickSize: { flag: 'quick-size', unit: 'bytes', default: 4 * KiB, min: 0, describe: 'bytes each quick client uploads after its LIST' },
    quickDelayMs: {
      flag: 'quick-delay-ms',
      unit: 'ms',
      default: 100,
      min: 0,
      describe: 'the quick clients start this long after the slow one, so it is being served when they arrive',
    },
  },
  plan: (p) =>
    Array.from({ length: p.clients }, (_, client) =>
      client === 0 ? { client, role: 'slow', offsetMs: 0 } : { client, role: 'quick', offsetMs: p.quickDelayMs },
    ),
  serviceTimeMs: (session, p) => (session.role === 'slow' ? slowUploadMs(p) : 0),
  payloadSizes: (p) => [p.slowSize, p.quickSize],
  script: {
    kind: 'protocol',
    async run(client, session, p, payloads) {
      if (session.role === 'slow') {
        await client.put('slow.bin', payloadFor(payloads, p.slowSize), p.slowRate);
        return;
      }
      await client.list();
      await client.put(`quick-${session.client + 1}.bin`, payloadFor(payloads, p.quickSize));
    },
  },
};

/** Scaling: many connections at once, each with a small upload. */
const crowd = oneUploadEach({
  name: 'crowd',
  summary: 'scaling: many connections at once, each PUTs a small file',
  idealDefinition: () => "the ceiling's makespan: as many connections each copying the same bytes raw into a file (and fsyncing it), in the same run",
  story: 'scale',
  clients: 1000,
  size: 1 * KiB,
  // Each run is one short session per client: the per-session code must be compiled before the makespans mean anything.
  defaultWarmupRuns: (p) => runsToWarmUp(p.clients),
});

type CeilingParams = { readonly clients: number; readonly requests: number };

/**
 * The machine's limit for small requests: each client sends PINGs as fast as
 * the replies come, against the bare Node line server by default, so every
 * table can say "% of ceiling". (The limit for bulk bytes is the ceiling row of
 * the upload, slow-client and crowd scenarios: a raw loopback copy into a file.)
 */
const ceiling: Scenario<CeilingParams> = {
  name: 'ceiling',
  summary: "the machine's limit for small requests: each client sends PINGs back to back",
  idealDefinition: () => "the ceiling's own makespan (the bare Node line server answering the same PINGs), in the same run",
  story: 'rate',
  params: {
    clients: clientsParam(8),
    requests: { flag: 'requests', unit: 'count', default: 5000, min: 1, describe: 'PINGs each client sends, each after the previous reply' },
  },
  plan: (p) => everyoneAtOnce(p.clients, 'ceiling'),
  serviceTimeMs: () => null,
  payloadSizes: () => [],
  script: { kind: 'ping-burst', requests: (p) => p.requests },
  // One load process for all clients, as the plain loop it is checked against has: on 2 cores, a process
  // per client spends more CPU being woken for each reply than the line server spends answering it.
  defaultProcesses: 1,
};

export const SCENARIOS: { readonly [N in ScenarioName]: Scenario } = {
  chat,
  upload,
  'slow-client': slowClient,
  crowd,
  ceiling,
};

/** The protocols a scenario's sessions can speak: plain lines only for a `lines` script. */
export function scenarioProtocols(scenario: Scenario): readonly LoadProtocol[] {
  return scenario.script.kind === 'lines' ? LOAD_PROTOCOLS : ['v1'];
}

/** Whether the ideal comes from the script alone (given how many clients the server serves at once), not from the ceiling. */
export function scenarioIdealIsComputed(scenario: Scenario, params: ScenarioParams): boolean {
  return scenario.plan(params).every((session) => scenario.serviceTimeMs(session, params) !== null);
}

/** The scenario's defaults, overridden by whatever is given. */
export function scenarioParams(scenario: Scenario, overrides: Readonly<Record<string, number | undefined>> = {}): ScenarioParams {
  const params: Record<string, number> = {};
  for (const [key, spec] of Object.entries(scenario.params)) params[key] = overrides[key] ?? spec.default;
  return params;
}

/** The session plan: the scenario's own (closed model), or one start every 1/rate s (open model). */
export function planSessions(scenario: Scenario, params: ScenarioParams, arrivalsPerSecond: number | null): PlannedSession[] {
  const planned = scenario.plan(params);
  if (arrivalsPerSecond === null) return planned;
  return planned.map((session, index) => ({ ...session, offsetMs: (index * 1000) / arrivalsPerSecond }));
}

/** Parameters as `--clients 8 --echoes 5 --think-ms 200`, for reports and for reproducing a run. */
export function describeParams(scenario: Scenario, params: ScenarioParams): string {
  return Object.entries(scenario.params)
    .map(([key, spec]) => `--${spec.flag} ${formatParam(spec.unit, params[key] ?? spec.default)}`)
    .join(' ');
}

/** Whether a parameter is a size (given with units like 16MiB) rather than a count or ms. */
export function isByteUnit(unit: ParamUnit): boolean {
  return unit === 'bytes' || unit === 'bytes/s';
}

export function formatParam(unit: ParamUnit, value: number): string {
  return isByteUnit(unit) ? byteSizeText(value) : String(value);
}
