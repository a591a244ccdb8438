/**
 * Runs inside a worker thread of the workers server: one connection's whole
 * session as blocking code, the way the seed's Python server reads. The thread
 * sleeps in each read until the main thread relays bytes from the socket, and
 * its file I/O is synchronous. Nothing else runs on this thread meanwhile:
 * that is the point of the model, and why it needs one thread per client.
 */
import { workerData } from 'node:worker_threads';
import { ServerSession } from '../protocol/index.js';
import { BlockingRelayIO } from '../transport/thread-relay.js';
import { runSessionBlocking, sessionProgram, type SessionOutcome } from './session.js';
import { SharedAdmissions } from './storage/shared-admissions.js';
import { SharedNameLock } from './storage/shared-lock.js';
import { SyncStorage } from './storage/sync.js';

export interface WorkerSessionConfig {
  readonly root: string;
  readonly maxFileSize: number;
  /** --max-root-size (absent or 0: no quota); every thread's storage enforces it, under the shared lock. */
  readonly maxRootSize: number | undefined;
  /** --min-upload-rate (session.ts SessionPolicy). */
  readonly minUploadRate: number;
  readonly uploadRateGraceMs: number | undefined;
  /** The lock table every thread shares, so commits to one name never interleave. */
  readonly lockBuffer: SharedArrayBuffer;
  /** The upload bytes every thread has admitted, so each free-space estimate counts the others' (storage/shared-admissions.ts). */
  readonly admissionsBuffer: SharedArrayBuffer;
}

export type WorkerSessionTask =
  /** The connection's shared rings (transport/thread-relay.ts). */
  | { readonly channel: SharedArrayBuffer }
  | { readonly warmUp: { readonly arrived: SharedArrayBuffer; readonly threads: number } };

const config = workerData as WorkerSessionConfig;
const storage = SyncStorage.attach(config.root, {
  lock: new SharedNameLock(config.lockBuffer),
  admissions: new SharedAdmissions(config.admissionsBuffer),
  maxRootSize: config.maxRootSize,
});

export default function serveConnection(task: WorkerSessionTask): SessionOutcome {
  if ('warmUp' in task) throw new Error('a warm-up task was sent to the session entry point');
  const io = new BlockingRelayIO(task.channel);
  try {
    const session = new ServerSession({ model: 'workers', maxFileSize: config.maxFileSize });
    return runSessionBlocking(sessionProgram(session, config), io, storage);
  } finally {
    io.done();
  }
}

const WARM_UP_LIMIT_MS = 10_000;

/** Holds this thread until every thread of the pool has taken one warm-up task. */
export function warmUp(task: WorkerSessionTask): SessionOutcome {
  if (!('warmUp' in task)) throw new Error('a session task was sent to the warm-up entry point');
  const arrived = new Int32Array(task.warmUp.arrived);
  Atomics.add(arrived, 0, 1);
  Atomics.notify(arrived, 0);
  const deadline = performance.now() + WARM_UP_LIMIT_MS;
  for (let count = Atomics.load(arrived, 0); count < task.warmUp.threads && performance.now() < deadline; count = Atomics.load(arrived, 0)) {
    Atomics.wait(arrived, 0, count, deadline - performance.now());
  }
  return { outcome: 'warm', requests: 0 };
}
