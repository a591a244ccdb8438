/**
 * The sentences that open each scenario's section: what the numbers show,
 * said with the numbers, generated from them (so they are true of this run,
 * not of the run someone once wrote them for); then, where a result is not
 * the model's story or the machine set it, why (causes.ts).
 */
import { causeSentences } from './causes.js';
import { capitalize, formatMs, formatPercent, formatRate } from './format.js';
import { LatencyHistogram, queueGrowth } from '../load/metrics.js';
import type { TargetReport } from './report-model.js';
import type { ScenarioStory } from '../load/scenarios.js';

/** R² from which "waited ≈ (k−1) × t" describes the queue (a chat's sequential queue fits at 0.99 and more). */
const LINEAR_ENOUGH = 0.9;

export function scenarioSentences(story: ScenarioStory, targets: readonly TargetReport[]): string[] {
  const servers = targets.filter((t) => t.spec.kind !== 'ceiling');
  const sentences: string[] = [];
  if (servers.length > 0) sentences.push(`${capitalize(servers.map(concurrencyClause).join('; '))}.`);
  if (targets.length > 0) sentences.push(makespanSentence(targets));
  const told = storySentence(story, servers, targets.find((t) => t.spec.kind === 'ceiling'));
  if (told !== null) sentences.push(told);
  sentences.push(...causeSentences(story, targets));
  return sentences;
}

/** How many clients the server served at once, and what that did to the queue. */
export function concurrencyClause(target: TargetReport): string {
  const { clients, maxServedAtOnce: most, queueWaitMs } = target.summary;
  if (clients <= 1) return `${target.label}: a single client`;
  if (most === 0) return `${target.label}: no client was served`;
  if (most === 1) {
    const growth = queueGrowth(target.timeline.sessions);
    return growth.fit >= LINEAR_ENOUGH
      ? `${target.label}: one client at a time, the k-th client served waited ≈ (k−1) × ${formatMs(growth.perPlaceMs)}`
      : `${target.label}: one client at a time, queue wait p50 ${formatMs(queueWaitMs.p50)}, up to ${formatMs(queueWaitMs.max)}`;
  }
  if (most >= clients) return `${target.label}: all ${clients} clients served at once (queue wait p95 ${formatMs(queueWaitMs.p95)})`;
  return `${target.label}: at most ${most} of ${clients} clients served at once, queue wait up to ${formatMs(queueWaitMs.max)}`;
}

function makespanSentence(targets: readonly TargetReport[]): string {
  const parts = targets.map((t) => {
    const { makespanMs, idealRatio } = t.summary;
    return `${t.label} ${formatMs(makespanMs.mean)}${idealRatio === null ? '' : ` (${idealRatio.toFixed(2)}× ideal)`}`;
  });
  return `Makespan: ${parts.join(', ')}.`;
}

function storySentence(story: ScenarioStory, servers: readonly TargetReport[], ceiling: TargetReport | undefined): string | null {
  if (servers.length === 0) return null;
  switch (story) {
    case 'queue': {
      const bySpeed = [...servers].sort((a, b) => a.summary.makespanMs.mean - b.summary.makespanMs.mean);
      const fastest = bySpeed[0];
      const slowest = bySpeed[bySpeed.length - 1];
      if (fastest === undefined || slowest === undefined || fastest === slowest) return null;
      const times = slowest.summary.makespanMs.mean / fastest.summary.makespanMs.mean;
      return (
        `The same scripts took ${slowest.label} ${times.toFixed(1)}× as long as ${fastest.label}: ` +
        `the difference is time spent queued (longest queue wait ${formatMs(slowest.summary.queueWaitMs.max)} against ${formatMs(fastest.summary.queueWaitMs.max)}).`
      );
    }
    case 'head-of-line': {
      const quick = servers.map((t) => `${t.label} ${formatMs(medianSessionTimeMs(t, 'quick'))}`);
      const slow = servers[0] === undefined ? 0 : medianSessionTimeMs(servers[0], 'slow');
      return `Behind a slow upload of ${formatMs(slow)}, the quick clients' median session time was: ${quick.join(', ')}.`;
    }
    case 'bytes': {
      const rates = servers.map((t) => `${t.label} ${formatRate(t.summary.mibPerSecond ?? 0)} MiB/s`);
      const ceilingRate = ceiling?.summary.mibPerSecond ?? null;
      const best = Math.max(...servers.map((t) => t.summary.mibPerSecond ?? 0));
      return ceilingRate === null
        ? `Upload throughput: ${rates.join(', ')}.`
        : `Upload throughput: ${rates.join(', ')}; the raw copy reached ${formatRate(ceilingRate)} MiB/s, so the best server moved ${formatPercent(best / ceilingRate)} of the ceiling.`;
    }
    case 'scale': {
      const parts = servers.map(
        (t) => `${t.label} ${formatRate(t.summary.sessionsPerSecond)} sessions/s, ${t.summary.maxServedAtOnce} at once${t.summary.errors > 0 ? `, ${t.summary.errors} errors` : ''}`,
      );
      return `With ${servers[0]?.summary.clients ?? 0} connections at once: ${parts.join('; ')}.`;
    }
    case 'rate': {
      const ceilingRate = ceiling?.summary.pingsPerSecond ?? null;
      const parts = servers.map((t) => {
        const rate = t.summary.pingsPerSecond ?? 0;
        return `${t.label} ${formatRate(rate)}${ceilingRate === null ? '' : ` (${formatPercent(rate / ceilingRate)})`}`;
      });
      const plain = ceiling?.plainLoop ?? null;
      const check =
        plain === null || ceilingRate === null
          ? ''
          : `; the plain PING loop doing the same job from one process reached ${formatRate(plain.requestsPerSecond)}/s against the same line server, so the load generator drove it at ${(ceilingRate / plain.requestsPerSecond).toFixed(2)}× the plain loop's rate`;
      return `PINGs per second: ${parts.join(', ')}${ceilingRate === null ? '' : `, against ${formatRate(ceilingRate)} for the bare line server`}${check}.`;
    }
  }
}

/** Median session time of one role's sessions in the target's timeline (from the HDR histogram). */
function medianSessionTimeMs(target: TargetReport, role: string): number {
  const histogram = new LatencyHistogram();
  for (const session of target.timeline.sessions) if (session.role === role && session.error === null) histogram.record(session.done - session.scheduledStart);
  return histogram.percentiles().p50;
}
