/**
 * The crowd that runs beside the fuzzer (fuzz.ts, fuzz.test.ts), against the
 * same server process and for as long as the fuzzing, so that hostile bytes,
 * clients that hold on and appends to a large file all meet in one server:
 *
 * - waves of clients that hold on (hold-on-attack.ts: never read, trickle an
 *   upload, queue and leave), one wave at a time, each followed by a fresh
 *   client that must be served within the model's bound, and the check that
 *   the server ended every hostile connection for its kind's reason (which
 *   frees the thread, the queue place or the file slot it held);
 * - appenders to a large file (large-append-attack.ts), in short sessions of a
 *   few appends, one in four of them leaving in the middle of its last append
 *   (half its record sent, or all of it but before the `226`).
 *
 * Bounded in count (`maxPerKind` clients of each kind per wave, `maxAppends`
 * appends in all) and in time (it stops when told, and every wait has a bound).
 * What it leaves for later: the appended file, checked by its ledger once the
 * server has stopped.
 */
import fs from 'node:fs';
import type { ServerModelName } from '../../servers/index.js';
import type { WireClient } from '../helpers/wire.js';
import { crowdBounds, HOSTILE_KINDS, type HoldLimits, type HostileKind } from './hostile-clients.js';
import { describeSlowestFresh, holdOnTrial, randomCrowd, type FreshService } from './hold-on-attack.js';
import { appendOnce, appendPastLimitRefused, appendRecord, greetedClient, LARGE_FILE_NAME, type AppendLedger } from './large-append-attack.js';
import { rng } from './processes.js';

export interface CrowdOptions {
  readonly server: { readonly port: number; readonly lines: readonly string[]; readonly model: ServerModelName };
  readonly seed: number;
  /** Most clients of each kind in one wave (0: no waves). */
  readonly maxPerKind: number;
  /**
   * Rest between waves as long as the last one took, so that the fuzzer has
   * the server at least half the time: for sequential, where a wave holds
   * everyone else (the fuzzer too) until its last client is cut off.
   */
  readonly restBetweenWaves: boolean;
  /** The kinds a wave draws from. */
  readonly kinds?: readonly HostileKind[];
  /** The server's limits, as the bounds of hostile-clients.ts need them. */
  readonly limits: Omit<HoldLimits, 'model'>;
  /** Appenders at once (0: none). */
  readonly appenders: number;
  readonly appendsPerSession: number;
  /** Appends in all, acknowledged or not. */
  readonly maxAppends: number;
  readonly ledger: AppendLedger;
  /** The server's --max-file-size: at the end, an append past it must get 552. */
  readonly maxFileSize: number;
}

export interface CrowdReport {
  readonly waves: number;
  readonly hostile: Readonly<Record<HostileKind, number>>;
  readonly fresh: readonly FreshService[];
  readonly appendSessions: number;
  /** Appends acknowledged with the right sha256. */
  readonly appends: number;
  /** Appends whose client left before their `226`. */
  readonly appendsLeft: number;
  readonly failures: readonly string[];
}

export interface RunningCrowd {
  /** Stops launching, waits for what is under way (bounded), checks the file limit; the report. */
  stop(): Promise<CrowdReport>;
}

/** The longest a client may wait for its turn beside a crowd of at most `maxPerKind` of each kind: the fuzzer's cases and the appenders wait that long too. */
export function crowdWaitMs(model: ServerModelName, limits: Omit<HoldLimits, 'model'>, maxPerKind: number, kinds: readonly HostileKind[] = HOSTILE_KINDS): number {
  const fullest = kinds.flatMap((kind) => Array.from<HostileKind>({ length: maxPerKind }).fill(kind));
  return crowdBounds(fullest, { model, ...limits }).freshMs;
}

const STEP_MS = 10_000;

export function startCrowd(options: CrowdOptions): RunningCrowd {
  const { server, ledger } = options;
  const kinds = options.kinds ?? HOSTILE_KINDS;
  const random = rng(options.seed);
  const limits: HoldLimits = { model: server.model, ...options.limits };
  const stepMs = STEP_MS + crowdWaitMs(server.model, options.limits, options.maxPerKind, kinds);
  const failures: string[] = [];
  const fresh: FreshService[] = [];
  const hostile = Object.fromEntries(HOSTILE_KINDS.map((kind) => [kind, 0])) as Record<HostileKind, number>;
  let running = true;
  let wakeFromRest: (() => void) | null = null;
  const rest = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeFromRest = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  let waves = 0;
  let appendSessions = 0;
  let appends = 0;
  let appendsLeft = 0;
  let appendsStarted = 0;

  const waveLoop = async (): Promise<void> => {
    while (running && options.maxPerKind > 0 && failures.length < 20) {
      const crowd = randomCrowd(random, options.maxPerKind, kinds);
      waves++;
      for (const kind of crowd) hostile[kind]++;
      const began = performance.now();
      const outcome = await holdOnTrial(server, crowd, limits);
      if (outcome.fresh !== null) fresh.push(outcome.fresh);
      for (const problem of outcome.failures) failures.push(`wave ${waves}: ${problem}`);
      if (options.restBetweenWaves && running) await rest(performance.now() - began);
    }
  };

  const appenderLoop = async (appender: number): Promise<void> => {
    let index = 0;
    while (running && appendsStarted < options.maxAppends && failures.length < 20) {
      appendSessions++;
      const leaves = random() < 0.25 ? (random() < 0.5 ? 'mid-data' : 'before-reply') : null;
      let c: WireClient | null = null;
      try {
        c = await greetedClient(server.port, stepMs);
        let left = false;
        for (let i = 0; i < options.appendsPerSession && appendsStarted < options.maxAppends && !left; i++) {
          const record = appendRecord(appender, index++);
          appendsStarted++;
          left = leaves !== null && i === options.appendsPerSession - 1;
          if (left) {
            ledger.leftBeforeReply(record);
            appendsLeft++;
            await leaveDuringAppend(c, record, leaves ?? 'mid-data', stepMs);
          } else {
            await appendOnce(c, LARGE_FILE_NAME, record, stepMs);
            ledger.landed(record);
            appends++;
          }
        }
        if (!left) await c.request('QUIT', stepMs);
      } catch (error) {
        failures.push(`appender ${appender}, session ${appendSessions}: ${(error as Error).message}`);
      } finally {
        c?.destroy();
      }
    }
  };

  const work = Promise.all([waveLoop(), ...Array.from({ length: options.appenders }, (_, a) => appenderLoop(a))]);
  return {
    async stop(): Promise<CrowdReport> {
      running = false;
      (wakeFromRest as (() => void) | null)?.();
      await work;
      if (options.appenders > 0) {
        // An append that starts now may not fit, whatever the ones still committing do.
        const over = options.maxFileSize - fs.statSync(ledger.start.file).size + 1;
        const refused = await appendPastLimitRefused(server.port, LARGE_FILE_NAME, over).catch((error: Error) => `an append past --max-file-size: ${error.message}`);
        if (refused !== null) failures.push(refused);
      }
      return { waves, hostile, fresh, appendSessions, appends, appendsLeft, failures: failures.slice(0, 20) };
    },
  };
}

/** PUT with `150`, then half the record (or all of it), then gone before the `226`. */
async function leaveDuringAppend(c: WireClient, record: Buffer, how: 'mid-data' | 'before-reply', timeoutMs: number): Promise<void> {
  const first = await c.request(`PUT ${LARGE_FILE_NAME} ${record.length} mode=append`, timeoutMs);
  if (first !== `150 send ${record.length} bytes`) throw new Error(`PUT ${LARGE_FILE_NAME} ${record.length} mode=append got ${first}`);
  await c.send(how === 'mid-data' ? record.subarray(0, record.length >> 1) : record);
  c.destroy();
}

export function describeCrowd(report: CrowdReport): string {
  const kinds = HOSTILE_KINDS.map((kind) => `${report.hostile[kind]} ${kind}`).join(', ');
  return (
    `crowd alongside: ${report.waves} waves (${kinds}), a fresh client served ${report.fresh.length} of ${report.waves} times, slowest ${describeSlowestFresh(report.fresh)}; ` +
    `${report.appends} appends to ${LARGE_FILE_NAME} acknowledged and ${report.appendsLeft} left mid-append in ${report.appendSessions} sessions`
  );
}
