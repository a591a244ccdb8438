/**
 * The blocking server, as in the lecture: one client at a time, start to
 * finish. Every other connection waits, accepted but ungreeted and unanswered,
 * in arrival order: from the client's side this is exactly a blocking server's
 * accept backlog. File I/O is synchronous and blocks the whole process, which
 * costs nothing here because there is never anyone else to serve meanwhile.
 *
 * (net.Server cannot stop accepting, so the queue is kept here. A waiting
 * client's bytes are held, not parsed, so that one who gives up is seen and
 * leaves the queue; the kernel's listen backlog would not notice.)
 */
import { ServerSession } from '../protocol/index.js';
import { runSession, sessionProgram } from './session.js';
import { startWith, type Connection, type RunningServer, type ServerOptions, type Shell } from './shell.js';
import { SocketSessionIO } from '../transport/socket-io.js';
import { SyncStorage } from './storage/sync.js';

export async function startSequentialServer(options: ServerOptions): Promise<RunningServer> {
  const storage = SyncStorage.open(options.root, { maxRootSize: options.maxRootSize });
  const waiting: Connection[] = [];
  let serving: Connection | null = null;

  async function serve(connection: Connection): Promise<void> {
    const io = new SocketSessionIO(connection.socket, options.idleTimeoutSeconds * 1000, connection.takeHeld());
    connection.onSignal = (signal) => io.signal(signal);
    connection.served(`${waiting.length} still waiting`);
    const session = new ServerSession({ model: 'sequential', maxFileSize: options.maxFileSize });
    connection.ended(await runSession(sessionProgram(session, options), io, storage));
  }

  /** Serves the queue in order until it is empty; only one of these loops ever runs. */
  async function serveQueue(): Promise<void> {
    for (let next = waiting.shift(); next !== undefined; next = waiting.shift()) {
      if (next.isEnded) continue; // refused while it waited (shutdown)
      serving = next;
      await serve(next).catch((error: unknown) => next.failed(error));
    }
    serving = null;
  }

  return startWith(
    {
      name: 'sequential',
      accept: (connection: Connection, shell: Shell) => {
        waiting.push(connection);
        if (serving === null) {
          void serveQueue();
        } else {
          if (shell.logs) shell.log(`${connection.label} waits: ${waiting.length} in the queue, serving ${serving.label}`);
          connection.holdUntilServed(() => connection.leave(waiting));
        }
      },
    },
    options,
  );
}
