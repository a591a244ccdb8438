/**
 * The thread-per-connection server: each connection gets a worker thread of
 * its own from a fixed pool (piscina), and inside it the session is plain
 * blocking code: read a line and wait, read n bytes and wait, synchronous
 * file I/O (see worker-session.ts). The main thread only accepts and relays
 * bytes. With N threads, N clients are served at once; the next ones wait,
 * accepted but ungreeted, in the pool's queue, until a thread is free.
 *
 * Commits to one name are serialised across threads by a lock table in a
 * SharedArrayBuffer that every thread maps (storage/shared-lock.ts).
 */
import { Piscina } from 'piscina';
import { Replies } from '../protocol/index.js';
import { RelayChannelPool, SocketRelay } from '../transport/thread-relay.js';
import type { SessionOutcome } from './session.js';
import { startWith, type Connection, type RunningServer, type ServerOptions, type Shell } from './shell.js';
import { SharedAdmissions } from './storage/shared-admissions.js';
import { SharedNameLock } from './storage/shared-lock.js';
import { SyncStorage } from './storage/sync.js';
import type { WorkerSessionConfig, WorkerSessionTask } from './worker-session.js';

export async function startWorkersServer(options: ServerOptions): Promise<RunningServer> {
  SyncStorage.open(options.root); // creates the root and clears stale temporary files once, before any thread runs
  const config: WorkerSessionConfig = {
    root: options.root,
    maxFileSize: options.maxFileSize,
    maxRootSize: options.maxRootSize,
    minUploadRate: options.minUploadRate,
    uploadRateGraceMs: options.uploadRateGraceMs,
    lockBuffer: new SharedNameLock().buffer,
    admissionsBuffer: new SharedAdmissions().buffer,
  };
  const pool = new Piscina<WorkerSessionTask, SessionOutcome>({
    filename: new URL('./worker-session.js', import.meta.url).href,
    minThreads: options.threads,
    maxThreads: options.threads,
    idleTimeout: Number.POSITIVE_INFINITY,
    // The threads run only socklab's own code: the main thread's flags (a test
    // runner's loader hooks, a profiler) are not inherited, so they start fast and alike.
    execArgv: [],
    workerData: config,
  });
  await warmUp(pool, options.threads);
  /** Sessions running in a thread. */
  let busy = 0;
  /** Connections handed to the pool (at most one per thread), started or about to start. */
  let running = 0;
  // Connections get threads in arrival order, so they wait here, oldest first,
  // and reach the pool only when a thread is free for them: piscina reorders
  // what it queues itself (an abortable task it cannot dispatch at once goes to
  // the back of its queue), which let later clients overtake a waiting one.
  const queue: Connection[] = [];
  const channels = new RelayChannelPool(options.idleTimeoutSeconds * 1000);
  const dispatch = () => {
    while (running < options.threads) {
      const next = queue.shift();
      if (next === undefined) return;
      if (next.isEnded) continue; // refused while it waited (shutdown)
      running++;
      runInThread(next);
    }
  };

  function serve(connection: Connection, shell: Shell): void {
    if (running + queue.length >= options.threads + options.maxQueue) {
      connection.refuse(Replies.tooManyConnections(), `refused: ${options.threads} threads busy and ${queue.length} waiting (--max-queue ${options.maxQueue})`);
      return;
    }
    queue.push(connection);
    if (running >= options.threads) {
      if (shell.logs) shell.log(`${connection.label} waits for a thread: ${queue.length} waiting, ${busy} busy`);
      // A client that gives up while queued frees its place at once.
      connection.holdUntilServed(() => connection.leave(queue));
    }
    dispatch();
  }

  function runInThread(connection: Connection): void {
    const channel = channels.take();
    let started = false;
    const onStarted = () => {
      started = true;
      busy++;
      connection.served(`${busy} of ${options.threads} threads busy, ${queue.length} waiting`);
    };
    const relay = new SocketRelay(connection.socket, channel, options.idleTimeoutSeconds * 1000, onStarted, connection.takeHeld());
    // The thread is free: the session starts at once and hears the signal in its first read.
    connection.onSignal = (signal) => relay.signal(signal);
    /** Set once the thread's task has returned: only then is the thread done with the channel. */
    let returned = false;
    pool
      .run({ channel })
      .then(
        async (outcome) => {
          returned = true;
          await relay.finished;
          connection.ended(outcome);
        },
        (error: unknown) => connection.failed(error),
      )
      .finally(() => {
        if (started) busy--;
        relay.close();
        // Reused only after a task that returned: a pool being destroyed rejects a task whose thread may still run.
        if (returned) channels.give(channel);
        running--;
        dispatch();
      });
  }

  return startWith({ name: 'workers', copiesEachRead: true, accept: serve, dispose: () => pool.destroy() }, options);
}

/**
 * Starts every thread and loads the session code in it before the first client
 * comes: one task per thread, each holding its thread until all have arrived.
 */
async function warmUp(pool: Piscina<WorkerSessionTask, SessionOutcome>, threads: number): Promise<void> {
  const arrived = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
  await Promise.all(Array.from({ length: threads }, () => pool.run({ warmUp: { arrived, threads } }, { name: 'warmUp' })));
}
