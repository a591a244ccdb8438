/**
 * The demo's closing words: for each server, why its clients waited (the
 * model, in a sentence), then who waited how long and for whom: the clients
 * the server was serving meanwhile. Worked out from the run's timelines, so it
 * says what happened in this run, in the order the server served them.
 */
import { DEFAULT_THREADS } from '../../servers/cli.js';
import { counted, formatMs } from '../report/format.js';
import type { RelativeSession, ScenarioReport, TargetReport } from '../report/report-model.js';
import { servedInterval } from '../load/timeline.js';
import { clientsServedAtOnce } from '../targets/targets.js';

/**
 * Below this a client counts as served at once: connecting and being
 * scheduled take some ms on a busy machine. It grows with the sessions (a
 * tenth of the median one), so a think time of seconds is not confused with
 * a scheduling hiccup.
 */
const NOTICEABLE_WAIT_MS = 100;
const NOTICEABLE_SHARE_OF_SESSION = 0.1;
/** Another client held this one up when it was being served for this share of its wait (or a noticeable wait). */
const BLOCKER_SHARE = 0.25;

export function demoSummary(report: ScenarioReport): string[] {
  const out: string[] = [];
  for (const target of report.targets) {
    out.push(`${target.label} ${modelExplanation(target)}`);
    for (const line of clientLines(target.timeline.sessions)) out.push(`  ${line}`);
  }
  out.push('', ...report.sentences);
  return out;
}

/** Why the clients of this server waited or did not, in one sentence. */
export function modelExplanation(target: TargetReport): string {
  const { clients, maxServedAtOnce, queueWaitMs } = target.summary;
  const spec = target.spec;
  const model = spec.kind === 'model' ? spec.model : null;
  const waits = `longest wait ${formatMs(queueWaitMs.max)}`;
  switch (model) {
    case 'sequential':
      return (
        'serves one client at a time: while it serves a client it blocks waiting for that client\'s next line, ' +
        `so every other client waits in the queue until that session is over (${waits}).`
      );
    case 'workers': {
      const threads = clientsServedAtOnce(spec, model) ?? DEFAULT_THREADS;
      return threads >= clients
        ? `gives each client a thread of its own (${threads} threads for ${clients} clients): a blocked thread stops only its own client, so nobody waits for another (${waits}).`
        : `has ${counted(threads, 'thread')}, one per client served: at most ${counted(threads, 'client')} at once (here ${maxServedAtOnce}); the others waited in the queue for a thread to be freed (${waits}).`;
    }
    case 'async':
      return `serves every client at once from one event loop: it never blocks on any one client's socket, so nobody waits (${maxServedAtOnce} of ${clients} served at once, ${waits}).`;
    default:
      return `served ${maxServedAtOnce} of ${clients} clients at once (${waits}).`;
  }
}

const name = (session: RelativeSession) => `client ${session.client + 1}`;

/** `clients 1, 2 and 4`. */
export function clientList(sessions: readonly RelativeSession[]): string {
  const numbers = sessions.map((s) => String(s.client + 1));
  if (numbers.length === 1) return `client ${numbers[0]}`;
  return `clients ${numbers.slice(0, -1).join(', ')} and ${numbers[numbers.length - 1]}`;
}

/** The wait from which a client counts as having waited, for these sessions. */
export function noticeableWaitMs(sessions: readonly RelativeSession[]): number {
  const served = sessions
    .map(servedInterval)
    .filter((span) => span !== null)
    .map((span) => span.to - span.from)
    .sort((a, b) => a - b);
  const median = served[Math.floor((served.length - 1) / 2)] ?? 0;
  return Math.max(NOTICEABLE_WAIT_MS, NOTICEABLE_SHARE_OF_SESSION * median);
}

/** The clients the server was serving while `session` waited, in the order they were served. */
export function blockersOf(session: RelativeSession, all: readonly RelativeSession[], noticeableMs = noticeableWaitMs(all)): RelativeSession[] {
  if (session.connected === null) return [];
  const waitFrom = session.connected;
  const waitTo = session.greeted ?? session.done;
  const enough = Math.min(noticeableMs, BLOCKER_SHARE * (waitTo - waitFrom));
  return all
    .filter((other) => {
      if (other === session) return false;
      const served = servedInterval(other);
      if (served === null) return false;
      return Math.min(waitTo, served.to) - Math.max(waitFrom, served.from) >= enough;
    })
    .sort((a, b) => (a.greeted ?? 0) - (b.greeted ?? 0));
}

/** A line per client in the order it was served: how long it waited, for whom, and how long it was served. */
export function clientLines(sessions: readonly RelativeSession[]): string[] {
  const order = (s: RelativeSession) => s.greeted ?? Number.POSITIVE_INFINITY;
  const noticeable = noticeableWaitMs(sessions);
  return [...sessions]
    .sort((a, b) => order(a) - order(b) || a.client - b.client)
    .map((session) => {
      const wait = session.connected === null ? null : (session.greeted ?? session.done) - session.connected;
      const served = servedInterval(session);
      const servedText = served === null ? '' : `; served ${formatMs(served.to - served.from)}`;
      const failed = session.error === null ? '' : `; failed: ${session.error}`;
      if (wait === null) return `${name(session)} never connected${failed}`;
      if (wait < noticeable) return `${name(session)} waited ${formatMs(wait)}: served at once${servedText}${failed}`;
      const blockers = blockersOf(session, sessions, noticeable);
      const forWhom = blockers.length === 0 ? '' : ` for ${clientList(blockers)}`;
      const verb = session.greeted === null ? 'waited in the queue' : 'waited';
      return `${name(session)} ${verb} ${formatMs(wait)}${forWhom}${servedText}${failed}`;
    });
}
