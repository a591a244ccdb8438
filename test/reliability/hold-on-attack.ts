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
import { crowdBounds, freshClientServed, HOSTILE_GET_BYTES, HOSTILE_GET_NAME, HOSTILE_KINDS, hostileEndings, launchCrowd, type HostileKind } from './hostile-clients.js';
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
  readonly fresh: readonly { readonly tookMs: number; readonly boundMs: number }[];
  readonly failures: readonly string[];
}

const IDLE_SECONDS = 1;
const THREADS = 4;

export async function holdOnAttack(options: HoldOnOptions): Promise<HoldOnReport> {
  fs.mkdirSync(options.root, { recursive: true });
  fs.writeFileSync(path.join(options.root, HOSTILE_GET_NAME), Buffer.alloc(HOSTILE_GET_BYTES, 0x68));
  const random = rng(options.seed);
  const limits = { model: options.model, idleTimeoutMs: IDLE_SECONDS * 1000, uploadRateGraceMs: UPLOAD_RATE_GRACE_MS, threads: THREADS };
  const failures: string[] = [];
  const fresh: { tookMs: number; boundMs: number }[] = [];
  let hostileClients = 0;
  const server = await ServerProcess.start(options.model, { root: options.root, args: ['--idle-timeout', String(IDLE_SECONDS), '--threads', String(THREADS)] });
  try {
    for (let trial = 1; trial <= options.trials; trial++) {
      const crowd = shuffled(
        HOSTILE_KINDS.flatMap((kind) => Array.from<HostileKind>({ length: randomInt(random, 0, options.maxPerKind) }).fill(kind)),
        random,
      );
      if (crowd.length === 0) crowd.push('never-reads-get');
      hostileClients += crowd.length;
      const hostiles = await launchCrowd(crowd, server.port);
      try {
        const bounds = crowdBounds(crowd, limits);
        try {
          fresh.push({ tookMs: await freshClientServed(server.port, bounds.freshMs), boundMs: bounds.freshMs });
        } catch (error) {
          failures.push(`trial ${trial} (${crowd.join(', ')}): ${(error as Error).message}`);
        }
        for (const problem of await hostileEndings(hostiles, () => server.lines, bounds.endedMs)) failures.push(`trial ${trial}: ${problem}`);
      } finally {
        for (const h of hostiles) h.stop();
      }
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

function shuffled<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function describeHoldOn(report: HoldOnReport): string {
  const slowest = report.fresh.reduce((worst, f) => (f.tookMs > worst.tookMs ? f : worst), { tookMs: 0, boundMs: 0 });
  return (
    `${report.trials} hold-on trials, ${report.hostileClients} hostile clients (never read / trickle / queue and leave): ` +
    `a fresh client served ${report.fresh.length} of ${report.trials} times, slowest ${(slowest.tookMs / 1000).toFixed(1)} s (its bound ${(slowest.boundMs / 1000).toFixed(1)} s); ` +
    `${report.failures.length === 0 ? 'held' : `${report.failures.length} failures`}`
  );
}
