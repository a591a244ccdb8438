/**
 * Clients that hold on (issue 11), for the slowloris tests and `npm run
 * torture`: each kind of hostile client, launched against any server on
 * loopback, and the two checks that say the server held:
 *
 * - a fresh client is greeted and served (PING, a small PUT, its STAT) within a bound
 *   that is the model's own: async at once; workers once a thread is free;
 *   sequential after the clients ahead of it, each cut off in its turn;
 * - every hostile connection is ended by the server, for the reason its kind
 *   calls for, as the server's log says (a client that never reads cannot
 *   see the server's close: its own socket is paused).
 */
import type { ServerModelName } from '../../servers/index.js';
import { WireClient } from '../helpers/wire.js';
import { sha256 } from '../protocol/fixtures.js';

export const HOSTILE_KINDS = ['never-reads-get', 'never-reads-echo', 'trickles-upload', 'queues-and-leaves'] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

/** The file a `never-reads-get` client asks for: large enough to fill every buffer between them. */
export const HOSTILE_GET_NAME = 'hostile-big.bin';
export const HOSTILE_GET_BYTES = 16 * 1024 * 1024;
/** A `trickles-upload` client announces this, then sends a byte per TRICKLE_EVERY_MS (never idle for long). */
const TRICKLE_ANNOUNCED = 1_000_000;
const TRICKLE_EVERY_MS = 250;
/** A `queues-and-leaves` client gives up after this long. */
const LEAVE_AFTER_MS = 300;
/** About 8 MB of ECHO lines, sent at once and never read back. */
const ECHO_FLOOD = `ECHO ${'x'.repeat(1000)}\n`.repeat(8000);

/** Why the server must end each kind of connection (the end of its log line). */
const EXPECTED_OUTCOME: Record<HostileKind, RegExp> = {
  'never-reads-get': /client stopped reading: no progress on a reply for [0-9.]+ s$/,
  'never-reads-echo': /client stopped reading: no progress on a reply for [0-9.]+ s$/,
  'trickles-upload': /upload too slow: \d+ B in [0-9.]+ s of waiting \(discarded\)$/,
  'queues-and-leaves': /(left the queue|client closed|client left)$/,
};

export interface Hostile {
  readonly kind: HostileKind;
  readonly client: WireClient;
  /** Its local port, which names it in the server's log (read at once: a closed socket no longer has one). */
  readonly localPort: number;
  /**
   * A trickler's longest time between two of its ticks (0 for the other kinds): on a loaded machine this
   * process itself can be held up past the idle time, and then the server is right to call it idle.
   */
  longestSilenceMs(): number;
  /** Stops what it sends and drops the connection (teardown). */
  stop(): void;
}

/** Opens one hostile client of `kind`; it starts misbehaving at once. */
export async function launchHostile(kind: HostileKind, port: number, index: number): Promise<Hostile> {
  const client = await WireClient.connect(port, { label: `${kind} ${index}` });
  const localPort = client.socket.localPort ?? 0;
  let timer: NodeJS.Timeout | undefined;
  let longestSilenceMs = 0;
  switch (kind) {
    case 'never-reads-get':
      client.socket.pause();
      void client.send(`GET ${HOSTILE_GET_NAME}\n`).catch(() => {});
      break;
    case 'never-reads-echo':
      client.socket.pause();
      void client.send(ECHO_FLOOD).catch(() => {});
      break;
    case 'trickles-upload': {
      void client.send(`PUT hostile-trickle-${index}.bin ${TRICKLE_ANNOUNCED}\n`).catch(() => {});
      let lastTick = performance.now();
      timer = setInterval(() => {
        const now = performance.now();
        longestSilenceMs = Math.max(longestSilenceMs, now - lastTick);
        lastTick = now;
        if (!client.isEnded) client.socket.write('t');
      }, TRICKLE_EVERY_MS);
      break;
    }
    case 'queues-and-leaves':
      timer = setTimeout(() => client.destroy(), LEAVE_AFTER_MS);
      break;
  }
  return {
    kind,
    client,
    localPort,
    longestSilenceMs: () => longestSilenceMs,
    stop: () => {
      clearInterval(timer);
      client.destroy();
    },
  };
}

export interface HoldLimits {
  readonly model: ServerModelName;
  readonly idleTimeoutMs: number;
  readonly uploadRateGraceMs: number;
  /** workers: threads in the pool the crowd can have (threads other clients keep busy do not count). */
  readonly threads: number;
  /**
   * How long other sessions (not the crowd's) may be ahead in line, for the
   * models that make clients wait: the fuzzer's own, while it runs beside a crowd.
   */
  readonly aheadMs?: number;
}

/** Slack for a loaded 2-core machine: the bounds are about order and the model, not speed. */
const SLACK_MS = 5000;

/** The longest one client of `kind` may hold a session before the server cuts it off. */
function holdMs(kind: HostileKind, limits: HoldLimits): number {
  switch (kind) {
    case 'never-reads-get':
    case 'never-reads-echo':
      // Buffers fill within a moment; then no progress for the idle time ends it.
      return limits.idleTimeoutMs + 1000;
    case 'trickles-upload':
      return limits.uploadRateGraceMs + 2 * TRICKLE_EVERY_MS + 500;
    case 'queues-and-leaves':
      return LEAVE_AFTER_MS + 500;
  }
}

export interface CrowdBounds {
  /** How long a fresh client, arriving after the crowd, may wait for its service. */
  readonly freshMs: number;
  /** How long, from then, until the server has ended every connection of the crowd. */
  readonly endedMs: number;
}

/**
 * The model's own bounds for a crowd: async serves a fresh client at once,
 * and cuts each hostile one after its own hold; workers get through the
 * crowd's holds a thread-full at a time; sequential through every hold in
 * the crowd, one after the other.
 */
export function crowdBounds(crowd: readonly HostileKind[], limits: HoldLimits): CrowdBounds {
  const holds = crowd.map((kind) => holdMs(kind, limits));
  const longest = Math.max(0, ...holds);
  switch (limits.model) {
    case 'async':
      return { freshMs: SLACK_MS, endedMs: longest + SLACK_MS };
    case 'workers': {
      const bound = Math.ceil(holds.length / limits.threads) * longest + (limits.aheadMs ?? 0) + SLACK_MS;
      return { freshMs: bound, endedMs: bound };
    }
    case 'sequential': {
      const bound = holds.reduce((a, b) => a + b, 0) + (limits.aheadMs ?? 0) + SLACK_MS;
      return { freshMs: bound, endedMs: bound };
    }
  }
}

/**
 * A fresh client: greeted, PING answered, a small PUT landed and its STAT
 * answered (a file slot to be had, in async), all within
 * `boundMs`. Returns how long it took; throws (saying which step) past the bound.
 */
export async function freshClientServed(port: number, boundMs: number): Promise<number> {
  const started = performance.now();
  const left = () => Math.max(1, boundMs - (performance.now() - started));
  const c = await WireClient.connect(port, { label: 'fresh client', timeoutMs: left() });
  try {
    const greeting = await c.readLine(left());
    if (!greeting.startsWith('220 ')) throw new Error(`fresh client: greeting ${JSON.stringify(greeting)}`);
    const pong = await c.request('PING', left());
    if (pong !== '200 PONG') throw new Error(`fresh client: PING got ${JSON.stringify(pong)}`);
    const data = 'served\n';
    const accepted = await c.request(`PUT fresh.txt ${data.length} mode=overwrite`, left());
    if (accepted !== `150 send ${data.length} bytes`) throw new Error(`fresh client: PUT got ${JSON.stringify(accepted)}`);
    await c.send(data);
    const landed = await c.readLine(left());
    if (!landed.startsWith('226 fresh.txt ')) throw new Error(`fresh client: the upload got ${JSON.stringify(landed)}`);
    const stat = await c.request('STAT fresh.txt', left());
    if (stat !== `213 ${data.length} ${sha256(data)}`) throw new Error(`fresh client: STAT got ${JSON.stringify(stat)}`);
    return performance.now() - started;
  } finally {
    c.destroy();
  }
}

/** The end of a trickler that went quiet for the idle time (see Hostile.longestSilenceMs). */
const TRICKLER_WENT_QUIET = /idle timeout \(upload discarded\)$/;

/**
 * Waits until the log has the close of every hostile connection (by its
 * local port), and returns what is wrong: a connection still open after
 * `timeoutMs`, or one ended for another reason than its kind's (a trickler
 * that was itself silent for `idleTimeoutMs` may be ended as idle).
 */
export async function hostileEndings(crowd: readonly Hostile[], log: () => readonly string[], timeoutMs: number, idleTimeoutMs: number): Promise<string[]> {
  const closeLine = (h: Hostile) => {
    const label = `closed 127.0.0.1:${h.localPort} (#`;
    return log().find((line) => line.includes(label));
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !crowd.every((h) => closeLine(h) !== undefined)) await new Promise((resolve) => setTimeout(resolve, 50));
  const problems: string[] = [];
  for (const h of crowd) {
    const line = closeLine(h);
    if (line === undefined) problems.push(`${h.client.label}: still open after ${timeoutMs} ms`);
    else if (!EXPECTED_OUTCOME[h.kind].test(line) && !(TRICKLER_WENT_QUIET.test(line) && h.longestSilenceMs() >= idleTimeoutMs)) {
      const silence = h.kind === 'trickles-upload' ? ` (its longest silence ${h.longestSilenceMs().toFixed(0)} ms)` : '';
      problems.push(`${h.client.label}: ${line.replace(/^\S+Z /, '')}${silence}`);
    }
  }
  return problems;
}

/** Launches `crowd` in order (so a queue sees them in that order) and returns them. */
export async function launchCrowd(crowd: readonly HostileKind[], port: number): Promise<Hostile[]> {
  const hostiles: Hostile[] = [];
  for (const [index, kind] of crowd.entries()) hostiles.push(await launchHostile(kind, port, index + 1));
  return hostiles;
}
