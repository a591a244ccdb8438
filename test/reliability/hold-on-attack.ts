/**
 * The "clients that hold on" attack of `npm run torture` (issue 11), against a
 * real server process run as a user runs it (`--idle-timeout 1`, the default
 * minimum upload rate and its 10 s grace): per trial, a random crowd of
 * clients that never read, trickle uploads, or queue and leave
 * (hostile-clients.ts), then a fresh client that must be served within the
 * model's bound, and every hostile connection ended for its kind's reason.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ServerModelName } from '../../servers/index.js';
import { UPLOAD_RATE_GRACE_MS } from '../../servers/session.js';
import { crowdBounds, freshClientServed, HOSTILE_GET_BYTES, HOSTILE_GET_NAME, HOSTILE_KINDS, hostileEndings, launchCrowd, type HoldLimits, type HostileKind } from './hostile-clients.js';
import { ServerProcess, randomInt, rng } from './processes.js';

export interface HoldOnOptions {
  readonly model: ServerModelName;
  /** A directory of its own; created. */
  readonly root: string;
  readonly trials: number;
  readonly seed: number;
  /** Most clients of each kind in one trial's crowd. */
  readonly maxPerKind: number;
}

export interface HoldOnReport {
  readonly trials: number;
  readonly hostileClients: number;
  /** Per trial: how long the fresh client took, and its bound. */
  readonly fresh: readonly FreshService[];
  readonly failures: readonly string[];
}

const IDLE_SECONDS = 1;
const THREADS = 4;

export async function holdOnAttack(options: HoldOnOptions): Promise<HoldOnReport> {
  fs.mkdirSync(options.root, { recursive: true });
  writeHostileGetFile(options.root);
  const random = rng(options.seed);
  const limits = { model: options.model, idleTimeoutMs: IDLE_SECONDS * 1000, uploadRateGraceMs: UPLOAD_RATE_GRACE_MS, threads: THREADS };
  const failures: string[] = [];
  const fresh: FreshService[] = [];
  let hostileClients = 0;
  const server = await ServerProcess.start(options.model, { root: options.root, args: ['--idle-timeout', String(IDLE_SECONDS), '--threads', String(THREADS)] });
  try {
    for (let trial = 1; trial <= options.trials; trial++) {
      const crowd = randomCrowd(random, options.maxPerKind);
      hostileClients += crowd.length;
      const outcome = await holdOnTrial(server, crowd, limits);
      if (outcome.fresh !== null) fresh.push(outcome.fresh);
      for (const problem of outcome.failures) failures.push(`trial ${trial}: ${problem}`);
      if (server.hasExited) {
        failures.push(`trial ${trial}: the server exited`);
        break;
      }
    }
  } finally {
    await server.stop();
  }
  return { trials: options.trials, hostileClients, fresh, failures: failures.slice(0, 20) };
}

/** The file a `never-reads-get` client asks for, in a server's root. */
export function writeHostileGetFile(root: string): void {
  fs.writeFileSync(path.join(root, HOSTILE_GET_NAME), Buffer.alloc(HOSTILE_GET_BYTES, 0x68));
}

/** A random crowd: up to `maxPerKind` clients of each kind (never none at all), in random order. */
export function randomCrowd(random: () => number, maxPerKind: number, kinds: readonly HostileKind[] = HOSTILE_KINDS): HostileKind[] {
  const crowd = shuffled(
    kinds.flatMap((kind) => Array.from<HostileKind>({ length: randomInt(random, 0, maxPerKind) }).fill(kind)),
    random,
  );
  if (crowd.length === 0) crowd.push(kinds[0] ?? 'never-reads-get');
  return crowd;
}

export interface FreshService {
  readonly tookMs: number;
  readonly boundMs: number;
}

/**
 * One trial against a running server: `crowd` launched, then a fresh client
 * that must be served within the model's bound, and every hostile connection
 * ended for its kind's reason. Returns the fresh client's time (null if it was
 * not served) and what went wrong.
 */
export async function holdOnTrial(server: { readonly port: number; readonly lines: readonly string[] }, crowd: readonly HostileKind[], limits: HoldLimits): Promise<{ fresh: FreshService | null; failures: string[] }> {
  const failures: string[] = [];
  let fresh: FreshService | null = null;
  // Only the log from here on: a long run reuses local ports, and an older connection's close must not count.
  const logFrom = server.lines.length;
  const hostiles = await launchCrowd(crowd, server.port);
  try {
    const bounds = crowdBounds(crowd, limits);
    try {
      fresh = { tookMs: await freshClientServed(server.port, bounds.freshMs), boundMs: bounds.freshMs };
    } catch (error) {
      failures.push(`(${crowd.join(', ')}): ${(error as Error).message}`);
    }
    failures.push(...(await hostileEndings(hostiles, () => server.lines.slice(logFrom), bounds.endedMs, limits.idleTimeoutMs)));
  } finally {
    for (const h of hostiles) h.stop();
  }
  return { fresh, failures };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The slowest fresh client, with its bound, as `1.2 s (its bound 6.0 s)`. */
export function describeSlowestFresh(fresh: readonly FreshService[]): string {
  const slowest = fresh.reduce((worst, f) => (f.tookMs > worst.tookMs ? f : worst), { tookMs: 0, boundMs: 0 });
  return `${(slowest.tookMs / 1000).toFixed(1)} s (its bound ${(slowest.boundMs / 1000).toFixed(1)} s)`;
}

export function describeHoldOn(report: HoldOnReport): string {
  return (
    `${report.trials} hold-on trials, ${report.hostileClients} hostile clients (never read / trickle / queue and leave): ` +
    `a fresh client served ${report.fresh.length} of ${report.trials} times, slowest ${describeSlowestFresh(report.fresh)}; ` +
    `${report.failures.length === 0 ? 'held' : `${report.failures.length} failures`}`
  );
}
