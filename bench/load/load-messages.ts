/**
 * The messages between `socklab load` (the parent) and its load processes
 * (bench/load/load-worker.ts), over the child_process IPC channel. One run:
 *
 *   parent → worker  prepare   the sessions this process runs, and against what
 *   worker → parent  ready     connect-ready: payloads hashed, code warm, host resolved
 *   parent → worker  start     the start instant, once every process is ready
 *   worker → parent  finished  when it actually started, the CPU it used since, and every session's timeline
 *
 * A worker serves any number of runs, one after the other, until `exit` or
 * until its parent goes away.
 */
import type { PlannedSession, ScenarioName, ScenarioParams } from './scenarios.js';
import type { TargetEndpoints } from './script-client.js';
import type { SessionEvent, SessionTimeline } from './timeline.js';

export interface WorkerAssignment {
  readonly processIndex: number;
  /** The parent's shared-clock anchor (see shared-clock.ts), so that every process's timestamps compare exactly. */
  readonly clockAnchor: number;
  readonly scenario: ScenarioName;
  readonly params: ScenarioParams;
  readonly target: TargetEndpoints;
  readonly sessions: readonly PlannedSession[];
  /** A session still running this long after its scheduled start is ended as timed out. */
  readonly sessionTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Also send each session step as it happens (`event`), for a live view (socklab demo). */
  readonly live?: boolean;
}

export type ParentMessage =
  | { readonly type: 'prepare'; readonly assignment: WorkerAssignment }
  | { readonly type: 'start'; readonly at: number }
  | { readonly type: 'exit' };

export type WorkerMessage =
  | { readonly type: 'ready' }
  | {
      readonly type: 'finished';
      /** The shared-clock instant this process actually started at (for the start skew). */
      readonly startedAt: number;
      /** User + system CPU seconds this process used from the start instant to this report (process.cpuUsage, exact to the µs). */
      readonly cpuSeconds: number;
      /** The model the server named in its first greeting, if any greeting came. */
      readonly serverModel: string | null;
      readonly sessions: readonly SessionTimeline[];
    }
  | { readonly type: 'event'; readonly event: SessionEvent }
  | { readonly type: 'failed'; readonly message: string };
