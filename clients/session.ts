/**
 * Connecting as every client command does: TCP connect, then wait (visibly) for
 * the greeting, then hand over a SocklabClient. Failures come out as one
 * sentence (ClientFailure); Ctrl-C while queued ends the program politely.
 * While the user thinks, the connection is watched (unlessLost), so that a
 * server that goes away is noticed at once, with its reason.
 */
import { ErrorCodes, ReplyError, SocklabClient, type Greeting } from '../protocol/index.js';
import { connectTcp } from '../transport/tcp-client.js';
import { checkedPort, UsageError } from '../bin/cli-support.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { ClientFailure, exitWith, explainFailure, GaveUp } from './messages.js';
import { showWaiting, type StatusDisplay } from './progress.js';
import { WatchedChannel } from './watched-channel.js';

export interface ConnectionArgs {
  readonly host: string;
  readonly port: number;
}

export interface Session {
  readonly client: SocklabClient;
  /** What the client reads through; it tells whether the server spoke (or closed) unasked. */
  readonly channel: WatchedChannel;
  readonly greeting: Greeting;
  readonly host: string;
  readonly port: number;
  /** Seconds from TCP connect to the greeting: the time spent queued. */
  readonly waitedSeconds: number;
}

/**
 * `status`: where the queue wait is drawn (a Prompter's, so that what the user
 * types ahead does not garble it); stderr's status line by default.
 */
export async function openSession(args: ConnectionArgs, status?: StatusDisplay): Promise<Session> {
  const host = args.host;
  const port = checkedPort(args.port);
  if (port === 0) throw new UsageError('--port 0 means "any free port" to a server; a client needs the port the server listens on');
  let channel;
  try {
    channel = await connectTcp({ host, port });
  } catch (error) {
    throw explainFailure(error, { kind: 'connect', host, port });
  }
  const watched = new WatchedChannel(channel);
  const client = new SocklabClient(watched);
  const waiting = showWaiting(process.stderr, status);
  const gaveUp = (why = '', exitCode = INTERRUPTED_EXIT_CODE) => {
    const waited = waiting.stop('failed');
    client.close();
    exitWith(new GaveUp(`gave up waiting for the server after ${waited.toFixed(1)} s${why}`, exitCode));
  };
  // Ctrl-D while queued means "never mind" as much as Ctrl-C does; it is not an interruption, hence exit code 1.
  const stopWatchingInput = status?.onGiveUp?.(() => gaveUp(' (the input ended)', 1));
  try {
    const greeting = await withInterruptHandler(() => gaveUp(), () => client.greeting());
    return { client, channel: watched, greeting, host, port, waitedSeconds: waiting.stop('served') };
  } catch (error) {
    waiting.stop('failed');
    client.close();
    throw explainFailure(error, { kind: 'greeting' });
  } finally {
    stopWatchingInput?.();
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

/**
 * Waits for `work` (the user typing an answer) while watching the connection.
 * If the server speaks first, it is going away (a `421`: idle timeout, shutting
 * down) or already gone (killed, crashed): that wins, as a ClientFailure saying
 * why, and the connection is closed.
 */
export async function unlessLost<T>(session: Session, work: Promise<T>): Promise<T> {
  const lost = Symbol('lost');
  const first = await Promise.race([work, session.channel.watch().then(() => lost)]);
  if (first !== lost) return first as T;
  work.catch(() => {}); // abandoned: its end (the prompt closing) is nobody's business now
  throw await whyLost(session);
}

/** True when the server spoke (or closed) while nothing was asked of it: the session is over. */
export function isLost(session: Session): boolean {
  return session.channel.spokeUnasked;
}

/** Why the server ended a session it spoke in unasked (see isLost); closes it. */
export async function whyLost(session: Session): Promise<ClientFailure> {
  try {
    const reply = await session.client.readReply();
    return asFailure(new ReplyError(reply, 'unasked'));
  } catch (error) {
    return asFailure(error);
  } finally {
    session.client.close();
  }
}

function asFailure(error: unknown): ClientFailure {
  const failure = explainFailure(error, { kind: 'idle' });
  return failure instanceof ClientFailure ? failure : new ClientFailure(ErrorCodes.INVALID_STATE, failure.message, { cause: error });
}
