/**
 * The sentences that say why, where a result is not what the concurrency
 * model alone would give: the cores were saturated (the run measured the
 * machine), async moved fewer bytes or PINGs than workers, async did not
 * serve every client at once, a server beat the ceiling. Each names the
 * measured cause with its figures (the cores each side used, the machine's
 * busy share, the runs' spread, where the clients' wait went), and each is
 * said only when its situation arises.
 */
import { capitalize, formatMs, formatPercent, formatRate } from './format.js';
import { cpuFigures, formatCores, formatCpuSeconds, formatShare, type CpuFigures } from './cpu-use.js';
import { LatencyHistogram } from '../load/metrics.js';
import type { ScenarioStory } from '../load/scenarios.js';
import { servedInterval } from '../load/timeline.js';
import type { RelativeSession, TargetReport } from './report-model.js';

/** From this busy share of all the machine's cores over a run, the run measured the machine, not the model. */
export const SATURATED_BUSY_SHARE = 0.9;
/** Async below this share of workers' bytes or PINGs per second contradicts the model's story; closer is not worth a sentence. */
const CLEARLY_BELOW = 0.95;
/** An all-at-once server serving fewer than this share of its clients at once contradicts its story. */
const MOSTLY_ALL = 0.9;
/** A process that used this many cores or more kept a core busy for the whole run. */
const A_FULL_CORE = 0.85;
/** A difference in cores used worth naming. */
const MORE_CORES = 0.2;
/** Server CPU per run this many times the other's, for the same work: the slower one spent more CPU on it. */
const MORE_CPU = 1.15;
/** Above this "% of ceiling" reads above 100% (formatPercent rounds). */
const ABOVE_CEILING = 1.005;
/** Busy core-seconds that were neither server nor clients are named when they are at least this share of all busy core-seconds. */
const NOTABLE_OTHER_SHARE = 0.1;

export function causeSentences(story: ScenarioStory, targets: readonly TargetReport[]): string[] {
  const servers = targets.filter((t) => t.spec.kind !== 'ceiling');
  const ceiling = targets.find((t) => t.spec.kind === 'ceiling');
  return [
    saturationSentence(targets),
    asyncBelowWorkersSentence(story, servers),
    ...targets.map(notAllAtOnceSentence),
    ...(ceiling === undefined ? [] : servers.map((server) => aboveCeilingSentence(story, server, ceiling))),
  ].filter((sentence): sentence is string => sentence !== null);
}

/** "During the async run the 2 cores were 97% busy (…): this run measured the machine, not the model." */
function saturationSentence(targets: readonly TargetReport[]): string | null {
  const saturated = targets.filter(isSaturated);
  if (saturated.length === 0) return null;
  const clauses = saturated.map((target) => {
    const f = cpuFigures(target);
    const many = target.summary.runs > 1;
    const busyCoreSeconds = (f.busyShare ?? 0) * (f.cores ?? 0) * (f.runMs / 1000);
    const other = f.otherCpuSeconds ?? 0;
    const spent = [
      `${formatCpuSeconds(f.loadCpuSeconds ?? 0)} core-seconds of load processes`,
      ...(f.serverCpuSeconds === null ? [] : [`${formatCpuSeconds(f.serverCpuSeconds)} of server`]),
      ...(other >= 0.005 && other >= NOTABLE_OTHER_SHARE * busyCoreSeconds ? [`${formatCpuSeconds(other)} of other processes${other >= busyCoreSeconds / 2 ? ', the most of it' : ''}`] : []),
    ];
    return `during the ${target.label} run${many ? 's' : ''} ${coresWere(f)} ${formatShare(f.busyShare ?? 0)} busy (${many ? 'per run: ' : ''}${spent.join(', ')}, in ${formatMs(f.runMs)})`;
  });
  const runs = saturated.reduce((sum, t) => sum + t.summary.runs, 0);
  return `${capitalize(clauses.join('; '))}: ${runs === 1 ? 'this run' : 'these runs'} measured the machine, not the model.`;
}

/** On bytes (upload) or PINGs (ceiling): async below the best workers pool, and why. */
function asyncBelowWorkersSentence(story: ScenarioStory, servers: readonly TargetReport[]): string | null {
  const throughput = throughputOf(story);
  if (throughput === null) return null;
  const amount = throughput.of;
  const async = servers.find((t) => t.spec.kind === 'model' && t.spec.model === 'async');
  const workers = servers
    .filter((t) => t.spec.kind === 'model' && t.spec.model === 'workers')
    .sort((a, b) => (amount(b) ?? 0) - (amount(a) ?? 0))[0];
  const asyncAmount = async === undefined ? null : amount(async);
  const workersAmount = workers === undefined ? null : amount(workers);
  if (async === undefined || workers === undefined || asyncAmount === null || workersAmount === null || asyncAmount >= workersAmount * CLEARLY_BELOW) return null;
  const what = story === 'bytes' ? 'moved fewer bytes per second' : 'answered fewer PINGs per second';
  return `${capitalize(async.label)} ${what} than ${workers.label} (${formatRate(asyncAmount)} against ${formatRate(workersAmount)} ${throughput.unit}): ${whyBehind(async, workers)}.`;
}

/**
 * Why `behind` came out behind `ahead` on the same work, from what was
 * measured: the cores each used, the machine's busy share in each run, the
 * CPU each spent, the runs' spread. Every cause that holds is named; if none
 * does, the figures say so.
 */
export function whyBehind(behind: TargetReport, ahead: TargetReport): string {
  const b = cpuFigures(behind);
  const a = cpuFigures(ahead);
  const causes: string[] = [];
  const coresUsed = b.serverCores === null || a.serverCores === null ? null : { behind: b.serverCores, ahead: a.serverCores };
  const fewerCores = coresUsed !== null && coresUsed.behind >= A_FULL_CORE && coresUsed.ahead >= coresUsed.behind + MORE_CORES;
  if (fewerCores) {
    causes.push(
      `${nameOf(ahead)} used ${formatCores(coresUsed.ahead)} cores, ${nameOf(behind)} ${formatCores(coresUsed.behind)}` +
        (isOneEventLoop(behind) ? `: ${possessive(behind)} one event loop cannot use a second core` : ''),
    );
  }
  if (isSaturated(behind) && isSaturated(ahead)) {
    causes.push(
      `the cores were saturated in both (${formatShare(b.busyShare ?? 0)} busy during ${runsOf(behind)}, ${formatShare(a.busyShare ?? 0)} during ${possessive(ahead)}): ` +
        'the machine set both figures, and the gap says nothing about the models',
    );
  } else if (isSaturated(behind)) {
    causes.push(
      `the cores were ${formatShare(b.busyShare ?? 0)} busy during ${runsOf(behind)} (its load processes used ${formatCores(b.loadCores ?? 0)} cores)` +
        (a.busyShare === null ? '' : `, ${formatShare(a.busyShare)} during ${possessive(ahead)}`),
    );
  }
  if (b.serverCpuSeconds !== null && a.serverCpuSeconds !== null && a.serverCpuSeconds > 0 && b.serverCpuSeconds >= a.serverCpuSeconds * MORE_CPU) {
    causes.push(`${nameOf(behind)} spent ${formatCpuSeconds(b.serverCpuSeconds)} CPU seconds per run on the same work, ${nameOf(ahead)} ${formatCpuSeconds(a.serverCpuSeconds)}`);
  }
  const spread = withinSpread(behind, ahead);
  if (spread !== null) causes.push(`the gap is within the runs' spread (${spread})`);
  // The cores each used, said once: as the cause above, or else beside the causes (or their absence) for the reader to weigh.
  const cores = coresUsed === null || fewerCores ? null : `${nameOf(behind)} used ${formatCores(coresUsed.behind)} cores, ${nameOf(ahead)} ${formatCores(coresUsed.ahead)}`;
  if (causes.length > 0) return [...causes, ...(cores === null ? [] : [cores])].join('; ');
  if (cores === null) return 'no CPU figures were recorded for these servers to explain it';
  const busy = b.busyShare === null || a.busyShare === null ? '' : `, the cores ${formatShare(b.busyShare)} and ${formatShare(a.busyShare)} busy`;
  const runs = Math.min(behind.summary.runs, ahead.summary.runs) < 2 ? '; with a single run each, run-to-run spread is not measured (--iterations)' : '';
  return `the CPU figures do not explain it (${cores}${busy})${runs}`;
}

/** `makespan 851 ms ±9.0% against 722 ms ±16.5%` when the two makespans' 95% margins overlap; null otherwise or with single runs. */
function withinSpread(one: TargetReport, other: TargetReport): string | null {
  if (one.stats === null || other.stats === null || one.stats.samples < 2 || other.stats.samples < 2) return null;
  const m1 = one.summary.makespanMs.mean;
  const m2 = other.summary.makespanMs.mean;
  const margin = (m1 * one.stats.rmePercent + m2 * other.stats.rmePercent) / 100;
  if (Math.abs(m1 - m2) > margin) return null;
  return `makespan ${formatMs(m1)} ±${one.stats.rmePercent.toFixed(1)}% against ${formatMs(m2)} ±${other.stats.rmePercent.toFixed(1)}%`;
}

/**
 * An all-at-once server (async, the ceiling) that served well below all its
 * clients at once, with all of them planned to start together: how long the
 * greetings took to come against how long a greeted session lasted, and
 * whether the clients' wait was the server's (connected, not yet greeted) or
 * the load generator's (late to start connecting, slow to connect).
 */
function notAllAtOnceSentence(target: TargetReport): string | null {
  const { clients, maxServedAtOnce: most } = target.summary;
  if (!servesAllAtOnce(target) || clients <= 1 || most === 0 || most >= clients * MOSTLY_ALL) return null;
  const greeted = target.timeline.sessions.filter((s): s is RelativeSession & { greeted: number } => s.greeted !== null);
  if (greeted.length < 2) return null;
  const served = new LatencyHistogram();
  for (const session of greeted) {
    const interval = servedInterval(session);
    if (interval !== null) served.record(interval.to - interval.from);
  }
  const servedMedianMs = served.percentiles().p50;
  const starts = target.timeline.sessions.map((s) => s.scheduledStart);
  // A plan that spreads the starts (--rate) never meant them to be served together.
  if (Math.max(...starts) - Math.min(...starts) >= servedMedianMs) return null;
  const greetings = greeted.map((s) => s.greeted);
  const greetingSpreadMs = Math.max(...greetings) - Math.min(...greetings);
  const notGreetedMs = maxOf(greeted, (s) => (s.connected === null ? null : s.greeted - s.connected));
  const lateStart = maxOf(greeted, (s) => (s.connectStart === null ? null : s.connectStart - s.scheduledStart));
  const connecting = maxOf(greeted, (s) => (s.connected === null || s.connectStart === null ? null : s.connected - s.connectStart));
  const f = cpuFigures(target);
  const serverSide = notGreetedMs >= lateStart + connecting;
  const serverFigures =
    f.serverCores === null
      ? ''
      : ` while ${nameOf(target)} used ${formatCores(f.serverCores)} cores (${formatCpuSeconds(f.serverCpuSeconds ?? 0)} CPU seconds in ${formatMs(f.runMs)})` +
        (isOneEventLoop(target) && f.serverCores >= A_FULL_CORE ? ': its one event loop was busy the whole run' : '');
  const clientFigures =
    `clients began connecting up to ${formatMs(lateStart)} after their start (start skew ${formatMs(target.timeline.startSkewMs)})` +
    ` and took up to ${formatMs(connecting)} to connect` +
    (f.loadCores === null ? '' : `, the load processes using ${formatCores(f.loadCores)} cores`);
  const wait = serverSide
    ? `The wait was the server's: clients waited up to ${formatMs(notGreetedMs)} connected but not yet greeted${serverFigures}; ${clientFigures}.`
    : `The wait was the load generator's: ${clientFigures}; once connected, they waited up to ${formatMs(notGreetedMs)} for the greeting${serverFigures}.`;
  return (
    `${capitalize(nameOf(target))} served at most ${most} of ${clients} clients at once, not all: in its median run the greetings came over ${formatMs(greetingSpreadMs)} ` +
    `while a greeted session lasted ${formatMs(servedMedianMs)} (median), so the first clients had left before the last were greeted. ${wait}`
  );
}

/** A server above 100% of the ceiling, in the table's makespan column or in the scenario's bytes or PINGs, and why. */
function aboveCeilingSentence(story: ScenarioStory, server: TargetReport, ceiling: TargetReport): string | null {
  const beaten: string[] = [];
  const makespan = server.summary.makespanMs.mean;
  const ceilingMakespan = ceiling.summary.makespanMs.mean;
  if (makespan > 0 && ceilingMakespan / makespan >= ABOVE_CEILING) {
    beaten.push(`${formatPercent(ceilingMakespan / makespan)} of it by makespan: ${formatMs(makespan)} against ${formatMs(ceilingMakespan)}`);
  }
  const measure = throughputOf(story);
  const amount = measure?.of(server) ?? null;
  const ceilingAmount = measure?.of(ceiling) ?? null;
  if (measure !== null && amount !== null && ceilingAmount !== null && ceilingAmount > 0 && amount / ceilingAmount >= ABOVE_CEILING) {
    beaten.push(`${formatPercent(amount / ceilingAmount)} by ${measure.unit}: ${formatRate(amount)} against ${formatRate(ceilingAmount)}`);
  }
  if (beaten.length === 0) return null;
  return `${capitalize(server.label)} came out above the ceiling (${beaten.join('; ')}): ${whyBehind(ceiling, server)}.`;
}

/** What a throughput scenario measures its servers by: bytes (upload) or PINGs (ceiling); null for the others. */
function throughputOf(story: ScenarioStory): { readonly of: (target: TargetReport) => number | null; readonly unit: string } | null {
  switch (story) {
    case 'bytes':
      return { of: (target) => target.summary.mibPerSecond, unit: 'MiB/s' };
    case 'rate':
      return { of: (target) => target.summary.pingsPerSecond, unit: 'PING/s' };
    default:
      return null;
  }
}

function isSaturated(target: TargetReport): boolean {
  return (target.cpu?.machine?.busyShare ?? 0) >= SATURATED_BUSY_SHARE;
}

/** async and the ceiling: one event loop, every client served from the moment it is accepted. */
function servesAllAtOnce(target: TargetReport): boolean {
  return target.spec.kind === 'ceiling' || (target.spec.kind === 'model' && target.spec.model === 'async');
}

/** Servers whose work runs on one JavaScript thread. */
function isOneEventLoop(target: TargetReport): boolean {
  return target.spec.kind === 'ceiling' || (target.spec.kind === 'model' && target.spec.model !== 'workers');
}

function coresWere(f: CpuFigures): string {
  return f.cores === 1 ? 'the one core was' : `the ${f.cores ?? 0} cores were`;
}

function maxOf<T>(items: readonly T[], value: (item: T) => number | null): number {
  return items.reduce((most, item) => Math.max(most, value(item) ?? 0), 0);
}

/** `async's run`, `the ceiling's runs`. */
function runsOf(target: TargetReport): string {
  return `${possessive(target)} run${target.summary.runs > 1 ? 's' : ''}`;
}

/** A server as a sentence names it: `async`, `the ceiling`. */
function nameOf(target: TargetReport): string {
  return target.spec.kind === 'ceiling' ? 'the ceiling' : target.label;
}

/** `async's`, `the ceiling's`. */
function possessive(target: TargetReport): string {
  return `${nameOf(target)}'s`;
}
