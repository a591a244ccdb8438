/**
 * What one scripted session records, on the shared clock (ms since the epoch,
 * sub-millisecond): when it was meant to start, when it connected, when the
 * server greeted it, every reply, when it said QUIT, when it ended and how.
 * Load processes record these and send them to the parent, which aggregates them.
 */
import { ErrorCodes, ReplyError, SocklabError } from '../../protocol/index.js';
import { sharedNow } from './shared-clock.js';

export interface ReplyEvent {
  /** The request word (`ECHO`, `PUT`...), `PING×n` for a burst recorded as one event, or `line` for a line sent to a plain line server. */
  readonly request: string;
  readonly sentAt: number;
  /** When its reply was read. */
  readonly at: number;
  /** The reply's code; null for a plain line server's answer, which carries none (--protocol echo). */
  readonly code: number | null;
  /** Requests this event stands for: 1, or the length of a burst. */
  readonly count: number;
}

export interface SessionError {
  /** A SocklabError code, an errno code (`ECONNRESET`), or `SOCKLAB_TIMEOUT`. */
  readonly code: string;
  /** The reply code when the server refused something (`421`...). */
  readonly replyCode: number | null;
  readonly message: string;
}

export interface SessionTimeline {
  /** The client's number in the run, from 0: the row it gets in a timeline. */
  readonly client: number;
  /** The load process that ran it. */
  readonly process: number;
  /** The scenario's name for what this client does (`chat`, `slow`, `quick`...). */
  readonly role: string;
  /** When the plan said it starts: latency counts from here, so a stalled server cannot hide it (open model). */
  readonly scheduledStart: number;
  readonly connectStart: number | null;
  readonly connected: number | null;
  /**
   * The `220` (on a plain line server, which does not greet: the answer to the
   * first line): until then the client waited in the server's queue.
   */
  readonly greeted: number | null;
  readonly replies: readonly ReplyEvent[];
  /**
   * When QUIT was sent. The server was serving this client at least until it
   * read it, so [greeted, quitSent] lies inside the server's own serving time,
   * whichever process's clock read which end (see servedInterval).
   */
  readonly quitSent: number | null;
  readonly done: number;
  /** Payload bytes uploaded and committed. */
  readonly uploadedBytes: number;
  readonly error: SessionError | null;
}

/** One step of a session as it happens, for a live view (socklab demo); `at` is on the shared clock. */
export type SessionEvent =
  | { readonly client: number; readonly kind: 'connect-start' | 'connected' | 'greeted' | 'quit-sent'; readonly at: number; readonly localPort?: number }
  | { readonly client: number; readonly kind: 'reply'; readonly at: number; readonly reply: ReplyEvent }
  | { readonly client: number; readonly kind: 'done'; readonly at: number; readonly error: SessionError | null };

/** Builds one SessionTimeline as the session runs. */
export class SessionRecorder {
  private connectStart: number | null = null;
  private connected: number | null = null;
  private greeted: number | null = null;
  private quitSent: number | null = null;
  private uploadedBytes = 0;
  private readonly replies: ReplyEvent[] = [];
  private watcher: ((event: SessionEvent) => void) | null = null;

  constructor(
    private readonly client: number,
    private readonly process: number,
    private readonly role: string,
    private readonly scheduledStart: number,
    private readonly now: () => number = sharedNow,
  ) {}

  /** Tells `watcher` each step as it is recorded (a live view); nothing is told without one. */
  watch(watcher: (event: SessionEvent) => void): void {
    this.watcher = watcher;
  }

  markConnectStart(): void {
    this.connectStart = this.step('connect-start');
  }

  /** `localPort`: the client's end of the connection, as the server's log names it (a live view matches them up). */
  markConnected(localPort?: number): void {
    this.connected = this.step('connected', localPort);
  }

  markGreeted(): void {
    this.greeted = this.step('greeted');
  }

  /** Whether the server has started serving this session (greeted it, or answered its first line). */
  get served(): boolean {
    return this.greeted !== null;
  }

  markQuitSent(): number {
    this.quitSent = this.step('quit-sent');
    return this.quitSent;
  }

  /** The time of a step now, told to the watcher if there is one. */
  private step(kind: 'connect-start' | 'connected' | 'greeted' | 'quit-sent', localPort?: number): number {
    const at = this.now();
    this.watcher?.({ client: this.client, kind, at, ...(localPort === undefined ? {} : { localPort }) });
    return at;
  }

  addUploadedBytes(bytes: number): void {
    this.uploadedBytes += bytes;
  }

  reply(request: string, sentAt: number, code: number | null, count = 1): void {
    const reply = { request, sentAt, at: this.now(), code, count };
    this.replies.push(reply);
    this.watcher?.({ client: this.client, kind: 'reply', at: reply.at, reply });
  }

  /**
   * Runs one request/reply exchange and records it: the reply code is
   * `expectedCode` when `exchange` succeeds (null: a plain line server's
   * answer), the server's code when it throws a ReplyError (which is
   * rethrown). `sentAt` says when the request counts as sent if not when the
   * exchange began (an upload's data, once it flows).
   */
  async exchange<T>(request: string, expectedCode: number | null, exchange: () => Promise<T>, sentAt?: () => number): Promise<T> {
    const began = this.now();
    const sent = () => sentAt?.() ?? began;
    try {
      const result = await exchange();
      this.reply(request, sent(), expectedCode);
      return result;
    } catch (error) {
      if (error instanceof ReplyError) this.reply(request, sent(), error.reply.code);
      throw error;
    }
  }

  finish(error: SessionError | null): SessionTimeline {
    const done = this.now();
    this.watcher?.({ client: this.client, kind: 'done', at: done, error });
    return {
      client: this.client,
      process: this.process,
      role: this.role,
      scheduledStart: this.scheduledStart,
      connectStart: this.connectStart,
      connected: this.connected,
      greeted: this.greeted,
      replies: this.replies,
      quitSent: this.quitSent,
      done,
      uploadedBytes: this.uploadedBytes,
      error,
    };
  }
}

/** Any failure as the short, stable code a table counts by. */
export function describeSessionError(error: unknown, timedOut: boolean): SessionError {
  const message = error instanceof Error ? error.message : String(error);
  if (timedOut) return { code: ErrorCodes.TIMEOUT, replyCode: null, message: `session timed out (${message})` };
  if (error instanceof ReplyError) return { code: error.code, replyCode: error.reply.code, message };
  if (error instanceof SocklabError) return { code: error.code, replyCode: null, message };
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  return { code: typeof errno === 'string' ? errno : 'UNEXPECTED', replyCode: null, message };
}

/** How an error is counted in tables: the reply code if the server sent one, else the error code. */
export function errorLabel(error: SessionError): string {
  return error.replyCode !== null ? String(error.replyCode) : error.code.replace(/^SOCKLAB_/, '');
}

/**
 * The time the server was certainly serving this client: from the greeting it
 * read to the QUIT it sent (or its end, if it never got to QUIT). Both ends
 * are read on the client side, after the server started serving and before it
 * stopped, so these intervals never overlap more than the server's did.
 */
export function servedInterval(session: Pick<SessionTimeline, 'greeted' | 'quitSent' | 'done'>): { readonly from: number; readonly to: number } | null {
  if (session.greeted === null) return null;
  return { from: session.greeted, to: session.quitSent ?? session.done };
}
