/**
 * Connecting as every client command does: TCP connect, then wait (visibly) for
 * the greeting, then hand over a SocklabClient. Failures come out as one
 * sentence (ClientFailure); Ctrl-C while queued ends the program politely.
 */
import { SocklabClient, type Greeting } from '../protocol/index.js';
import { connectTcp } from '../transport/tcp-client.js';
import { checkedPort, UsageError } from '../bin/cli-support.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { exitWith, explainFailure, GaveUp } from './messages.js';
import { showWaiting } from './progress.js';

export interface ConnectionArgs {
  readonly host: string;
  readonly port: number;
}

export interface Session {
  readonly client: SocklabClient;
  readonly greeting: Greeting;
  readonly host: string;
  readonly port: number;
  /** Seconds from TCP connect to the greeting: the time spent queued. */
  readonly waitedSeconds: number;
}

export async function openSession(args: ConnectionArgs): Promise<Session> {
  const host = args.host;
  const port = checkedPort(args.port);
  if (port === 0) throw new UsageError('--port 0 means "any free port" to a server; a client needs the port the server listens on');
  let channel;
  try {
    channel = await connectTcp({ host, port });
  } catch (error) {
    throw explainFailure(error, { kind: 'connect', host, port });
  }
  const client = new SocklabClient(channel);
  const waiting = showWaiting();
  const gaveUp = () => {
    const waited = waiting.stop('failed');
    client.close();
    exitWith(new GaveUp(`gave up waiting for the server after ${waited.toFixed(1)} s`, INTERRUPTED_EXIT_CODE));
  };
  try {
    const greeting = await withInterruptHandler(gaveUp, () => client.greeting());
    return { client, greeting, host, port, waitedSeconds: waiting.stop('served') };
  } catch (error) {
    waiting.stop('failed');
    client.close();
    throw explainFailure(error, { kind: 'greeting' });
  }
}

/**
 * Says QUIT and closes. The work is done by then, so a server that is already
 * gone does not make it a failure.
 */
export async function quit(session: Session): Promise<void> {
  try {
    await session.client.quit();
  } catch {
    session.client.close();
  }
}
