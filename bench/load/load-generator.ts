/**
 * The parent side of `socklab load`: a set of load processes (child processes
 * running bench/load/load-worker.js, never threads) that run scripted sessions
 * together. N sessions are spread over P processes, round robin; every process
 * gets ready, all wait at the barrier, start at one instant on the shared
 * clock, and send back each session's timeline. The processes stay up from run
 * to run, so the bench's repeated iterations pay for starting them once.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseStartInstant, StartBarrier, startSkewMs, waitForStartInstant } from './barrier.js';
import type { ParentMessage, WorkerAssignment, WorkerMessage } from './load-messages.js';
import { planSessions, SCENARIOS, type PlannedSession, type ScenarioName, type ScenarioParams } from './scenarios.js';
import type { TargetEndpoints } from './script-client.js';
import { clockAnchor, sharedNow } from './shared-clock.js';
import { machineBusy, readCoreTicks, type CoreTicks, type MachineBusy } from './cpu-time.js';
import type { SessionEvent, SessionTimeline } from './timeline.js';

const WORKER_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), './load-worker.js');

/** One process per client, up to this many; beyond it, many connections per process. */
export const DEFAULT_MAX_PROCESSES = 32;
const READY_TIMEOUT_MS = 60_000;
/** After the last session's deadline, this long for a process to report before it is given up on. */
const REPORT_GRACE_MS = 10_000;
/** A load process gives up on a TCP handshake after this long (a queue is waited out after it: the greeting has no limit but the session timeout). */
const CONNECT_TIMEOUT_MS = 10_000;

export type LoadFailureCode = 'WORKER_EXITED' | 'WORKER_FAILED' | 'RUN_TIMEOUT' | 'BARRIER';

/** The load generator itself failed (not a session: those are recorded, not thrown). */
export class LoadGeneratorError extends Error {
  override readonly name = 'LoadGeneratorError';
  /**
   * The signal that killed the load process, when that is why the run failed:
   * a terminal's Ctrl-C reaches every process of its group, the load processes
   * too, sometimes before the command's own handler has run.
   */
  readonly signal: NodeJS.Signals | null;

  constructor(
    readonly code: LoadFailureCode,
    message: string,
    options?: { readonly cause?: unknown; readonly signal?: NodeJS.Signals | null },
  ) {
    super(message, options);
    this.signal = options?.signal ?? null;
  }
}

export interface LoadRunRequest {
  readonly scenario: ScenarioName;
  readonly params: ScenarioParams;
  readonly target: TargetEndpoints;
  /** Open model: session starts per second; null for the closed model (the scenario's own plan). */
  readonly arrivalsPerSecond: number | null;
  readonly sessionTimeoutMs: number;
  /** Told each session step as it happens (a live view); the load processes send them only when this is given. */
  readonly onEvent?: (event: SessionEvent) => void;
  /** The server's CPU seconds so far (null if unknown), read at the start instant and at the end of the run. */
  readonly serverCpuSeconds?: () => number | null;
}

/** Where the CPU went during one run: from the start instant to the last load process's report. */
export interface RunCpu {
  readonly windowMs: number;
  /** The load processes' user + system CPU seconds over the run, summed. */
  readonly loadCpuSeconds: number;
  /** The server's, over the same window; null when it cannot be read (a server this process did not start). */
  readonly serverCpuSeconds: number | null;
  /** How busy the machine's cores were over the window; null where /proc/stat cannot be read. */
  readonly machine: MachineBusy | null;
}

export interface LoadRunResult {
  /** The common start instant on the shared clock; every offset counts from it. */
  readonly startAt: number;
  /** When each process actually started. */
  readonly processStarts: readonly number[];
  readonly startSkewMs: number;
  readonly serverModel: string | null;
  readonly planned: readonly PlannedSession[];
  readonly sessions: readonly SessionTimeline[];
  readonly cpu: RunCpu;
}

/**
 * Which of V8's compilers a load process runs its JavaScript with. A process
 * that runs sessions (connect, a few requests, quit; a few dozen per run)
 * never runs a function long enough for the optimizing compiler (TurboFan) to
 * pay back its compile time, and 32 processes compile the same functions 32
 * times over: in a crowd on 2 cores, about a third of the load's CPU even
 * after six warm-up runs, taken from the server under test. So they run on
 * baseline code (`--max-opt=1`: the interpreter and Sparkplug). A PING burst
 * is one tight loop for seconds: there TurboFan pays for itself.
 */
export type LoadCompiler = 'baseline' | 'optimizing';

export function loadCompilerFor(scenario: ScenarioName): LoadCompiler {
  return SCENARIOS[scenario].script.kind === 'ping-burst' ? 'optimizing' : 'baseline';
}

const COMPILER_ARGS: { readonly [C in LoadCompiler]: readonly string[] } = { baseline: ['--max-opt=1'], optimizing: [] };

/** Default process count: the scenario's own, else one per client up to the cap. */
export function defaultProcessCount(clients: number, scenarioDefault?: number, cap = DEFAULT_MAX_PROCESSES): number {
  return Math.max(1, Math.min(clients, scenarioDefault ?? cap));
}

/** Round robin, so that every process has the same share (±1) and an open model's arrivals interleave. */
export function assignSessions(planned: readonly PlannedSession[], processes: number): PlannedSession[][] {
  const shares: PlannedSession[][] = Array.from({ length: processes }, () => []);
  planned.forEach((session, index) => shares[index % processes]?.push(session));
  return shares;
}

interface Worker {
  readonly index: number;
  readonly child: ChildProcess;
  /** Set while a run waits for this worker's next message. */
  listener: ((message: WorkerMessage) => void) | null;
  exited: { readonly signal: NodeJS.Signals | null; readonly how: string } | null;
}

export class LoadGenerator {
  private runs = 0;

  private constructor(private readonly workers: readonly Worker[]) {}

  static start(processes: number, compiler: LoadCompiler): LoadGenerator {
    const workers = Array.from({ length: processes }, (_, index): Worker => {
      // Only these: a parent run under --inspect (or a test runner's hooks) must not hand its own to 32 children.
      const child = fork(WORKER_SCRIPT, [], { execArgv: [...COMPILER_ARGS[compiler]], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
      const worker: Worker = { index, child, listener: null, exited: null };
      child.on('message', (message: WorkerMessage) => worker.listener?.(message));
      const markExited = (how: { readonly signal: NodeJS.Signals | null; readonly how: string }) => {
        if (worker.exited !== null) return;
        worker.exited = how;
        worker.listener?.({ type: 'failed', message: how.how });
      };
      child.once('exit', (code, signal) => markExited({ signal, how: signal !== null ? `killed by ${signal}` : `exited with code ${code}` }));
      child.on('error', (error) => {
        // A message sent just as the process died fails (EPIPE): its exit, which follows, fails the run. A process
        // that could not be started at all has no exit to come.
        if (child.pid === undefined) markExited({ signal: null, how: `could not be started (${error.message})` });
      });
      return worker;
    });
    return new LoadGenerator(workers);
  }

  /** The load processes' pids (a process that could not be started has none). */
  get processIds(): readonly number[] {
    return this.workers.flatMap((worker) => (worker.child.pid === undefined ? [] : [worker.child.pid]));
  }

  /** One run: prepare every process, release them together, collect every timeline. */
  async run(request: LoadRunRequest): Promise<LoadRunResult> {
    this.runs++;
    const scenario = SCENARIOS[request.scenario];
    const planned = planSessions(scenario, request.params, request.arrivalsPerSecond);
    const shares = assignSessions(planned, this.workers.length);
    const active = this.workers.filter((worker) => (shares[worker.index]?.length ?? 0) > 0);
    const barrier = new StartBarrier(active.length);
    /** The signal that killed a load process lost before the start: the first such loss fails the barrier, and its error carries it on. */
    let lostSignal: NodeJS.Signals | null = null;
    const reports = active.map((worker, participant) => {
      const assignment: WorkerAssignment = {
        processIndex: worker.index,
        clockAnchor: clockAnchor(),
        scenario: request.scenario,
        params: request.params,
        target: request.target,
        sessions: shares[worker.index] ?? [],
        sessionTimeoutMs: request.sessionTimeoutMs,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        live: request.onEvent !== undefined,
      };
      const report = this.exchange(worker, { type: 'prepare', assignment }, (message) => {
        if (message.type === 'ready') barrier.arrive(participant);
        if (message.type === 'event') request.onEvent?.(message.event);
        return message.type === 'finished' ? message : null;
      }).catch((error: unknown) => {
        lostSignal ??= error instanceof LoadGeneratorError ? error.signal : null;
        barrier.lose(participant, error instanceof Error ? error.message : String(error));
        throw error;
      });
      // Awaited below; until then (and if the barrier fails first) this keeps the rejection from counting as unhandled.
      report.catch(() => {});
      return report;
    });

    try {
      await barrier.allReady(READY_TIMEOUT_MS);
    } catch (error) {
      throw new LoadGeneratorError('BARRIER', error instanceof Error ? error.message : String(error), { cause: error, signal: lostSignal });
    }
    const startAt = chooseStartInstant(active.length);
    for (const worker of active) this.post(worker, { type: 'start', at: startAt });
    // Read at the instant itself, as the load processes start (a timer alone may fire several ms late on a busy machine).
    const windowStart = waitForStartInstant(startAt).then(() => cpuReading(request));

    const lastOffset = planned.reduce((latest, s) => Math.max(latest, s.offsetMs), 0);
    const lastDeadline = startAt + lastOffset + request.sessionTimeoutMs + REPORT_GRACE_MS;
    const finished = await withDeadline(Promise.all(reports), lastDeadline, () => this.close());
    const windowEnd = cpuReading(request);
    const begun = await windowStart;
    const sessions = finished.flatMap((report) => report.sessions).sort((a, b) => a.client - b.client);
    const processStarts = finished.map((report) => report.startedAt);
    return {
      startAt,
      processStarts,
      startSkewMs: startSkewMs(processStarts),
      serverModel: finished.find((report) => report.serverModel !== null)?.serverModel ?? null,
      planned,
      sessions,
      cpu: {
        windowMs: windowEnd.at - begun.at,
        loadCpuSeconds: finished.reduce((sum, report) => sum + report.cpuSeconds, 0),
        serverCpuSeconds: windowEnd.serverCpuSeconds === null || begun.serverCpuSeconds === null ? null : windowEnd.serverCpuSeconds - begun.serverCpuSeconds,
        machine: machineBusy(begun.cores, windowEnd.cores),
      },
    };
  }

  /** Stops every load process (they also stop by themselves when this process goes away). */
  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.exited !== null) return resolve();
            worker.child.once('exit', () => resolve());
            if (worker.child.connected) worker.child.send({ type: 'exit' } satisfies ParentMessage);
            setTimeout(() => worker.child.kill('SIGKILL'), 2000).unref();
          }),
      ),
    );
  }

  private post(worker: Worker, message: ParentMessage): void {
    if (worker.exited === null && worker.child.connected) worker.child.send(message);
  }

  /**
   * Sends `message`, then passes every reply to `onMessage` until it returns a
   * result; a `failed` message or the worker's exit rejects.
   */
  private exchange<T>(worker: Worker, message: ParentMessage, onMessage: (message: WorkerMessage) => T | null): Promise<T> {
    return new Promise((resolve, reject) => {
      if (worker.exited !== null) {
        reject(new LoadGeneratorError('WORKER_EXITED', `load process ${worker.index} ${worker.exited.how}`, { signal: worker.exited.signal }));
        return;
      }
      worker.listener = (reply) => {
        if (reply.type === 'failed') {
          worker.listener = null;
          const code = worker.exited !== null ? 'WORKER_EXITED' : 'WORKER_FAILED';
          reject(new LoadGeneratorError(code, `load process ${worker.index} (run ${this.runs}): ${reply.message}`, { signal: worker.exited?.signal ?? null }));
          return;
        }
        const result = onMessage(reply);
        if (result !== null) {
          worker.listener = null;
          resolve(result);
        }
      };
      this.post(worker, message);
    });
  }
}

/** One edge of a run's CPU window: when, the machine's core counters, the server's CPU so far. */
function cpuReading(request: LoadRunRequest): { at: number; cores: CoreTicks[] | null; serverCpuSeconds: number | null } {
  return { at: sharedNow(), cores: readCoreTicks(), serverCpuSeconds: request.serverCpuSeconds?.() ?? null };
}

async function withDeadline<T>(work: Promise<T>, deadline: number, onTimeout: () => Promise<void>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        void onTimeout();
        reject(new LoadGeneratorError('RUN_TIMEOUT', `the load processes had not all reported ${REPORT_GRACE_MS / 1000} s after the last session's deadline`));
      },
      Math.max(0, deadline - sharedNow()),
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
