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
import { createRelayChannel, SocketRelay } from '../transport/thread-relay.js';
import type { SessionOutcome } from './session.js';
import { startWith, type Connection, type RunningServer, type ServerOptions, type Shell } from './shell.js';
import { SharedNameLock } from './storage/shared-lock.js';
import { SyncStorage } from './storage/sync.js';
import type { WorkerSessionConfig, WorkerSessionTask } from './worker-session.js';

export async function startWorkersServer(options: ServerOptions): Promise<RunningServer> {
  SyncStorage.open(options.root); // creates the root and clears stale temporary files once, before any thread runs
  const config: WorkerSessionConfig = {
    root: options.root,
    maxFileSize: options.maxFileSize,
    maxRootSize: options.maxRootSize,
    idleTimeoutMs: options.idleTimeoutSeconds * 1000,
    lockBuffer: new SharedNameLock().buffer,
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
  let busy = 0;
  let waiting = 0;
  // Connections get threads in arrival order, so they wait here, oldest first,
  // and reach the pool only when a thread is free for them: piscina reorders
  // what it queues itself (an abortable task it cannot dispatch at once goes to
  // the back of its queue), which let later clients overtake a waiting one.
  const queue: (() => void)[] = [];
  let running = 0;
  const dispatch = () => {
    while (running < options.threads) {
      const next = queue.shift();
      if (next === undefined) return;
      running++;
      next();
    }
  };

  function serve(connection: Connection, shell: Shell): void {
    if (busy + waiting >= options.threads + options.maxQueue) {
      connection.refuse(Replies.tooManyConnections(), `refused: ${options.threads} threads busy and ${waiting} waiting (--max-queue ${options.maxQueue})`);
      return;
    }
    const channel = createRelayChannel();
    const cancel = new AbortController();
    let started = false;
    waiting++;
    const relay = new SocketRelay(connection.socket, channel, options.idleTimeoutSeconds * 1000, () => {
      started = true;
      waiting--;
      busy++;
      connection.served(`${busy} of ${options.threads} threads busy, ${waiting} waiting`);
    });
    connection.onSignal = (signal) => {
      if (started) relay.signal(signal);
      else {
        cancel.abort();
        connection.refuse(Replies.shuttingDown(), 'shutdown before being served');
      }
    };
    // A client that gives up while queued frees its place instead of holding a thread later.
    connection.socket.once('close', () => {
      if (!started) cancel.abort();
    });
    if (busy + waiting > options.threads) shell.log(`${connection.label} waits for a thread: ${waiting} waiting, ${busy} busy`);
    // (A connection cancelled while it waits here is run anyway: the pool rejects its aborted task at once.)
    queue.push(() => {
      pool
        .run({ channel }, { signal: cancel.signal })
        .then(
          async (outcome) => {
            await relay.finished;
            connection.ended(outcome);
          },
          (error: unknown) => (cancel.signal.aborted && !started ? connection.ended({ outcome: 'left the queue', requests: 0 }) : connection.failed(error)),
        )
        .finally(() => {
          if (started) busy--;
          else waiting--;
          relay.close();
          running--;
          dispatch();
        });
    });
    dispatch();
  }

  return startWith({ name: 'workers', accept: serve, dispose: () => pool.destroy() }, options);
}

/**
 * Starts every thread and loads the session code in it before the first client
 * comes: one task per thread, each holding its thread until all have arrived.
 */
async function warmUp(pool: Piscina<WorkerSessionTask, SessionOutcome>, threads: number): Promise<void> {
  const arrived = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
  await Promise.all(Array.from({ length: threads }, () => pool.run({ warmUp: { arrived, threads } }, { name: 'warmUp' })));
}
