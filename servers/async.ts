/**
 * The non-blocking server: every connection is served at once, interleaved on
 * one thread by the event loop. Nothing ever blocks: socket reads and writes,
 * and file I/O (fs/promises, run on libuv's thread pool), are all awaited, so
 * while one session waits for its disk or its client, the loop runs the others.
 */
import { ServerSession } from '../protocol/index.js';
import { runSession, sessionProgram } from './session.js';
import { startWith, type Connection, type RunningServer, type ServerOptions } from './shell.js';
import { SocketSessionIO } from '../transport/socket-io.js';
import { AsyncStorage } from './storage/async.js';

export async function startAsyncServer(options: ServerOptions): Promise<RunningServer> {
  const storage = await AsyncStorage.open(options.root, { maxRootSize: options.maxRootSize, fileSlots: options.fileSlots });

  async function serve(connection: Connection): Promise<void> {
    const io = new SocketSessionIO(connection.socket, options.idleTimeoutSeconds * 1000);
    connection.onSignal = (signal) => io.signal(signal);
    connection.served();
    const session = new ServerSession({ model: 'async', maxFileSize: options.maxFileSize });
    connection.ended(await runSession(sessionProgram(session, options), io, storage));
  }

  return startWith(
    {
      name: 'async',
      // Every connection starts its session immediately: none waits for another.
      accept: (connection) => {
        serve(connection).catch((error: unknown) => connection.failed(error));
      },
    },
    options,
  );
}
