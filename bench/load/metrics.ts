/**
 * From session timelines to the numbers in the tables: makespan and its
 * ideal, queue wait and session time percentiles (HDR histograms, not
 * hand-rolled), throughput, how many clients were served at once, errors.
 */
import * as hdr from 'hdr-histogram-js';
import type { LoadRunResult } from './load-generator.js';
import type { PlannedSession, Scenario, ScenarioParams } from './scenarios.js';
import { errorLabel, servedInterval, type SessionTimeline } from './timeline.js';

const MiB = 1024 * 1024;
/** Histograms count microseconds: ms with three decimals, as integers. */
const US_PER_MS = 1000;

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** Milliseconds into an HDR histogram (3 significant digits), percentiles out. */
export class LatencyHistogram {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3, autoResize: true });

  record(ms: number): void {
    this.histogram.recordValue(Math.max(0, Math.round(ms * US_PER_MS)));
  }

  percentiles(): Percentiles {
    const h = this.histogram;
    if (h.totalCount === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
    const max = h.maxValue / US_PER_MS;
    // A percentile is the top of its bucket (3 significant digits), which may lie a hair above the largest value seen.
    const at = (percentile: number) => Math.min(max, h.getValueAtPercentile(percentile) / US_PER_MS);
    return { count: h.totalCount, p50: at(50), p95: at(95), p99: at(99), max };
  }
}

/** Time from TCP connect to the greeting: how long the server kept the client queued. */
export function queueWaitMs(session: Pick<SessionTimeline, 'connected' | 'greeted'>): number | null {
  return session.connected === null || session.greeted === null ? null : session.greeted - session.connected;
}

/** From the scheduled start (not the actual one), so a late start counts against the server too. */
export function sessionTimeMs(session: SessionTimeline): number {
  return session.done - session.scheduledStart;
}

export function makespanMs(run: Pick<LoadRunResult, 'startAt' | 'sessions'>): number {
  return run.sessions.reduce((latest, s) => Math.max(latest, s.done), run.startAt) - run.startAt;
}

/** The mean makespan over runs, as summarizeRuns reports it, without the rest of the summary. */
export function meanMakespanMs(runs: readonly Pick<LoadRunResult, 'startAt' | 'sessions'>[]): number {
  return mean(runs.map(makespanMs));
}

/** The most served intervals that overlap at any instant (touching ends do not overlap). */
export function maxServedAtOnce(sessions: readonly SessionTimeline[]): number {
  const edges: Array<{ at: number; delta: 1 | -1 }> = [];
  for (const session of sessions) {
    const served = servedInterval(session);
    if (served === null) continue;
    edges.push({ at: served.from, delta: 1 }, { at: served.to, delta: -1 });
  }
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let most = 0;
  for (const edge of edges) {
    now += edge.delta;
    most = Math.max(most, now);
  }
  return most;
}

/**
 * The best makespan a server serving `atOnce` clients at a time could reach:
 * sessions arrive at their planned offsets, are served first come first
 * served by the first free slot, and each takes its service time.
 * Closed model, all at once: ⌈clients ÷ atOnce⌉ × service time.
 */
export function simulateIdealMakespanMs(sessions: ReadonlyArray<{ readonly offsetMs: number; readonly serviceMs: number }>, atOnce: number): number {
  const slots = Math.max(1, Math.min(sessions.length, atOnce));
  const freeAt: number[] = Array.from({ length: slots }, () => 0);
  let makespan = 0;
  for (const session of [...sessions].sort((a, b) => a.offsetMs - b.offsetMs)) {
    let earliest = 0;
    for (let slot = 1; slot < slots; slot++) if ((freeAt[slot] ?? 0) < (freeAt[earliest] ?? 0)) earliest = slot;
    const end = Math.max(session.offsetMs, freeAt[earliest] ?? 0) + session.serviceMs;
    freeAt[earliest] = end;
    makespan = Math.max(makespan, end);
  }
  return makespan;
}

/**
 * The ideal makespan of a plan: computed from the script where the scenario
 * defines service times (null if how many the server serves at once is
 * unknown), else the ceiling's makespan for the same load (null if the
 * ceiling was not measured).
 */
export function idealMakespanMs(
  scenario: Scenario,
  params: ScenarioParams,
  planned: readonly PlannedSession[],
  atOnce: number | null,
  ceilingMakespanMs: number | null,
): number | null {
  const timed = planned.map((session) => ({ offsetMs: session.offsetMs, serviceMs: scenario.serviceTimeMs(session, params) }));
  if (timed.some((session) => session.serviceMs === null)) return ceilingMakespanMs;
  return atOnce === null ? null : simulateIdealMakespanMs(timed as Array<{ offsetMs: number; serviceMs: number }>, atOnce);
}

/** Between the first request sent and the last reply read, over the events that match. */
function spanOf(sessions: readonly SessionTimeline[], matches: (request: string) => boolean): { count: number; ms: number } | null {
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  let count = 0;
  for (const session of sessions) {
    for (const reply of session.replies) {
      if (!matches(reply.request)) continue;
      first = Math.min(first, reply.sentAt);
      last = Math.max(last, reply.at);
      count += reply.count;
    }
  }
  return count === 0 ? null : { count, ms: last - first };
}

/** The measures of one run. */
export interface RunMetrics {
  readonly makespanMs: number;
  readonly sessions: number;
  readonly completed: number;
  readonly maxServedAtOnce: number;
  readonly startSkewMs: number;
  readonly uploadedBytes: number;
  /** From the first PUT to the last commit. */
  readonly uploadSpanMs: number | null;
  /** PINGs of the bursts, and from the first sent to the last answered. */
  readonly pings: number;
  readonly pingSpanMs: number | null;
  readonly errorsByKind: Readonly<Record<string, number>>;
}

export function measureRun(run: LoadRunResult): RunMetrics {
  const errorsByKind: Record<string, number> = {};
  for (const session of run.sessions) {
    if (session.error === null) continue;
    const kind = errorLabel(session.error);
    errorsByKind[kind] = (errorsByKind[kind] ?? 0) + 1;
  }
  const uploads = spanOf(run.sessions, (request) => request === 'PUT' || request === 'PUT data');
  const pings = spanOf(run.sessions, (request) => request.startsWith('PING'));
  return {
    makespanMs: makespanMs(run),
    sessions: run.sessions.length,
    completed: run.sessions.filter((s) => s.error === null).length,
    maxServedAtOnce: maxServedAtOnce(run.sessions),
    startSkewMs: run.startSkewMs,
    uploadedBytes: run.sessions.reduce((sum, s) => sum + s.uploadedBytes, 0),
    uploadSpanMs: uploads?.ms ?? null,
    pings: pings?.count ?? 0,
    pingSpanMs: pings?.ms ?? null,
    errorsByKind,
  };
}

/** Several runs of one scenario against one target, as one row of a table. */
export interface TargetSummary {
  readonly runs: number;
  readonly makespanMs: { readonly mean: number; readonly min: number; readonly max: number };
  readonly idealMs: number | null;
  /** Mean makespan ÷ ideal. */
  readonly idealRatio: number | null;
  readonly queueWaitMs: Percentiles;
  readonly sessionTimeMs: Percentiles;
  readonly sessionsPerSecond: number;
  readonly mibPerSecond: number | null;
  readonly pingsPerSecond: number | null;
  readonly maxServedAtOnce: number;
  readonly clients: number;
  readonly errors: number;
  readonly errorsByKind: Readonly<Record<string, number>>;
  readonly startSkewMs: { readonly mean: number; readonly max: number };
}

/** The mean of some values; 0 of none. */
export const mean = (values: readonly number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);

/** Percentiles over every session of every run; rates and makespan as means over the runs. */
export function summarizeRuns(runs: readonly LoadRunResult[], idealMs: number | null): TargetSummary {
  const queueWait = new LatencyHistogram();
  const sessionTime = new LatencyHistogram();
  for (const run of runs) {
    for (const session of run.sessions) {
      const wait = queueWaitMs(session);
      if (wait !== null) queueWait.record(wait);
      if (session.error === null) sessionTime.record(sessionTimeMs(session));
    }
  }
  const measured = runs.map(measureRun);
  const makespans = measured.map((m) => m.makespanMs);
  const meanMakespan = mean(makespans);
  const errorsByKind: Record<string, number> = {};
  for (const m of measured) for (const [kind, count] of Object.entries(m.errorsByKind)) errorsByKind[kind] = (errorsByKind[kind] ?? 0) + count;
  const rate = (amounts: Array<number | null>) => {
    const known = amounts.filter((a): a is number => a !== null && Number.isFinite(a));
    return known.length === 0 ? null : mean(known);
  };
  return {
    runs: runs.length,
    makespanMs: { mean: meanMakespan, min: Math.min(...makespans), max: Math.max(...makespans) },
    idealMs,
    idealRatio: idealMs === null || idealMs <= 0 ? null : meanMakespan / idealMs,
    queueWaitMs: queueWait.percentiles(),
    sessionTimeMs: sessionTime.percentiles(),
    sessionsPerSecond: mean(measured.map((m) => (m.makespanMs > 0 ? m.completed / (m.makespanMs / 1000) : 0))),
    mibPerSecond: rate(measured.map((m) => (m.uploadSpanMs && m.uploadedBytes > 0 ? m.uploadedBytes / MiB / (m.uploadSpanMs / 1000) : null))),
    pingsPerSecond: rate(measured.map((m) => (m.pingSpanMs && m.pings > 0 ? m.pings / (m.pingSpanMs / 1000) : null))),
    maxServedAtOnce: Math.max(0, ...measured.map((m) => m.maxServedAtOnce)),
    clients: Math.max(0, ...measured.map((m) => m.sessions)),
    errors: Object.values(errorsByKind).reduce((a, b) => a + b, 0),
    errorsByKind,
    startSkewMs: { mean: mean(measured.map((m) => m.startSkewMs)), max: Math.max(0, ...measured.map((m) => m.startSkewMs)) },
  };
}

/** The run whose makespan is the median: the one a timeline picture shows. */
export function representativeRun<T extends Pick<LoadRunResult, 'startAt' | 'sessions'>>(runs: readonly T[]): T {
  const sorted = [...runs].sort((a, b) => makespanMs(a) - makespanMs(b));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  if (median === undefined) throw new RangeError('no runs to choose from');
  return median;
}

/** How a client's queue wait grows with its turn in the queue. */
export interface QueueGrowth {
  /** Least-squares slope through the origin: ms of waiting per place ahead in the queue. */
  readonly perPlaceMs: number;
  /** How well `wait ≈ place × perPlaceMs` fits (R², 1 = exactly): a chat on a sequential server is ≈ 1. */
  readonly fit: number;
}

/**
 * Queue wait against the order in which clients were greeted (place 0, 1, 2...):
 * a sequential server's chat shows one script time per place.
 */
export function queueGrowth(sessions: ReadonlyArray<Pick<SessionTimeline, 'connected' | 'greeted'>>): QueueGrowth {
  const waits = sessions
    .filter((s) => s.greeted !== null && s.connected !== null)
    .sort((a, b) => (a.greeted ?? 0) - (b.greeted ?? 0))
    .map((s) => queueWaitMs(s) ?? 0);
  let products = 0;
  let squares = 0;
  waits.forEach((wait, place) => {
    products += place * wait;
    squares += place * place;
  });
  const perPlaceMs = squares === 0 ? 0 : products / squares;
  const meanWait = mean(waits);
  let residual = 0;
  let total = 0;
  waits.forEach((wait, place) => {
    residual += (wait - place * perPlaceMs) ** 2;
    total += (wait - meanWait) ** 2;
  });
  return { perPlaceMs, fit: total === 0 ? 0 : 1 - residual / total };
}
