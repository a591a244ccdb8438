/**
 * `socklab client put --retry N` and the interactive `socklab client`: work
 * that survives the server going away (killed, restarted, shutting down). When the connection is lost, the
 * client waits (exponential backoff), reconnects, and before sending anything
 * again finds out with STAT whether the lost attempt had committed after all:
 * the server may have committed the upload and died before its `226` reached
 * us. Only an upload known NOT to have committed is sent again, so an append
 * is never applied twice.
 *
 * How "committed?" is decided, from the file's state before the first attempt
 * (`base`, by STAT) and now:
 * - overwrite, new, ask: committed iff the file now has our size and sha256
 *   (and did not before: then the upload is simply sent again).
 * - append onto nothing: committed iff the file is exactly our bytes.
 * - append onto `base`: not committed iff the file is still `base` (size and
 *   sha256); committed iff it is `base` + our bytes, which a GET confirms (the
 *   first base.size bytes hash to base's sha256, the rest to ours). Anything
 *   else means someone else changed the file meanwhile: we stop rather than
 *   guess, since guessing wrong would append twice or lose the append.
 * This assumes nobody else uploads to the same name while we retry; if someone
 * does, the checks above notice it and stop.
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, ReplyError, type ExistsDecision, type FileDigest, type PutMode, type SocklabClient } from '../protocol/index.js';
import { socklabCommand } from '../bin/invocation.js';
import type { LocalFile } from './local-file.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { ClientFailure, exitWith, explainFailure, GaveUp, quote, type Operation } from './messages.js';
import type { StatusDisplay } from './progress.js';
import { isLost, openSession, quit, whyLost, type ConnectionArgs, type Session } from './session.js';
import { upload, type UploadOptions, type UploadOutcome } from './transfer.js';

/** Failures worth a new connection: the connection broke, or the server said 421 (shutting down, idle, full). */
export function isRetriable(error: unknown): error is ClientFailure {
  if (!(error instanceof ClientFailure)) return false;
  switch (error.code) {
    case ErrorCodes.CONNECTION_CLOSED:
    case ErrorCodes.CONNECTION_REFUSED:
    case ErrorCodes.CONNECTION_FAILED:
    case ErrorCodes.TIMEOUT:
      return true;
    case ErrorCodes.REPLY_ERROR:
      return error.cause instanceof ReplyError && error.cause.reply.code === 421;
    default:
      return false;
  }
}

/**
 * A request the server refused with a reply of its own before anything else
 * was under way (no such file, too large, a bad name, exists): the session is
 * back at its commands, so the next step may use it (no reconnection to say).
 */
const REFUSALS = new Set([550, 552, 553, 554]);
function leavesSessionUsable(error: unknown): boolean {
  const reply = error instanceof ClientFailure ? error.cause : error;
  return reply instanceof ReplyError && REFUSALS.has(reply.reply.code);
}

/** Milliseconds before retry number `retry` (1, 2, ...): 250 ms doubling to at most 4 s, ±25 % jitter so clients do not reconnect in lockstep. */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  const base = Math.min(4000, 250 * 2 ** Math.max(0, retry - 1));
  return Math.round(base * (0.75 + 0.5 * random()));
}

export interface RetryOptions {
  /** How many times to reconnect in all, after the first connection. */
  readonly retries: number;
  /** Where "retrying in ..." lines go (stderr in the CLI). */
  readonly say: (line: string) => void;
  /** What the lines say the client is about to do: `retrying` (put --retry) or `reconnecting` (the interactive client). */
  readonly verb?: string;
  /** Told of every new session after the first (the interactive client shows the greeting). */
  readonly onReconnected?: (session: Session) => void;
  /** Where the queue wait of a new session is drawn (see openSession). */
  readonly status?: StatusDisplay;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The connection to a server, opened again (with backoff) whenever it is lost.
 * run() does one step of the work on the live session; when the connection
 * breaks (or broke while the client was idle: see isLost) it says so, waits,
 * reconnects and runs the step again, from the start, on the new session. The
 * step must be safe to run again: an upload finds out first whether the lost
 * attempt committed (uploadWithRetry). At most `retries` reconnections in all,
 * so that a server that keeps failing ends the program.
 */
export class Reconnecting {
  private session: Session | null;
  private retried = 0;
  /** Counts the sessions opened: a step can tell it runs on a new one (whatever it knew about the server may be stale). */
  generation = 0;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly args: ConnectionArgs,
    private readonly options: RetryOptions,
    first: Session | null = null,
  ) {
    this.session = first;
    if (first !== null) {
      this.generation = 1;
      void first.channel.watch(); // idle until the first step
    }
    this.sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  }

  /** Runs `step` on a live session (see the class comment); `operation` words a failure it did not word itself. */
  async run<T>(step: (session: Session) => Promise<T>, operation?: Operation): Promise<T> {
    for (;;) {
      try {
        if (this.session === null) {
          this.session = await openSession(this.args, this.options.status);
          this.generation++;
          if (this.generation > 1) this.options.onReconnected?.(this.session);
        }
        if (isLost(this.session)) throw await whyLost(this.session);
        const result = await step(this.session);
        // Idle from here until the next step: watch, so that a drop meanwhile is known (and why).
        void this.session.channel.watch();
        return result;
      } catch (error) {
        // A session kept is idle again until the next step: watched, like after a success.
        if (leavesSessionUsable(error)) void this.session?.channel.watch();
        else this.close();
        const failure = explainFailure(error, operation);
        if (!isRetriable(failure) || this.options.retries === 0) throw failure;
        if (this.retried >= this.options.retries) {
          const retries = this.options.retries;
          throw new ClientFailure(failure.code, `${failure.message} (gave up after ${retries} ${retries === 1 ? 'retry' : 'retries'})`, { cause: failure });
        }
        this.retried++;
        const wait = backoffMs(this.retried);
        this.options.say(`socklab: ${failure.message}; ${this.options.verb ?? 'retrying'} in ${(wait / 1000).toFixed(1)} s (retry ${this.retried} of ${this.options.retries})`);
        const gaveUp = () => exitWith(new GaveUp(`gave up reconnecting; the last attempt failed: ${failure.message}`, INTERRUPTED_EXIT_CODE));
        await withInterruptHandler(gaveUp, () => this.sleep(wait));
      }
    }
  }

  /** QUIT on the live session, if any (a server gone by then does not matter: the work is done). */
  async quit(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (session !== null) await quit(session);
  }

  close(): void {
    this.session?.client.close();
    this.session = null;
  }
}

export interface RetriedUploadOptions extends UploadOptions {
  /**
   * The user answered the server's `350` and can be asked again (the
   * interactive client): if the file changed on the server before the answer
   * could be carried out, the question is asked again rather than the answer
   * applied to a file the user has not seen.
   */
  readonly askAgainIfChanged?: boolean;
}

/**
 * Uploads `file` as `name` over `connection`, which reconnects as it allows.
 * Failures that are not about the connection (552, 553, 554, a sha256
 * mismatch...) end it at once, as without --retry.
 */
export async function uploadWithRetry(connection: Reconnecting, file: LocalFile, name: string, options: RetriedUploadOptions, say: (line: string) => void): Promise<UploadOutcome> {
  const sha256 = await file.sha256();
  const ours: FileDigest = { size: file.size, sha256 };
  // The mode actually in force: after a 350 answered with overwrite or append, later attempts say so themselves.
  let mode: PutMode = options.mode;
  let answered = false;
  /**
   * The file before our first attempt could have changed it (null: absent);
   * undefined until known. Known only once an attempt went on to upload, so
   * from then on an attempt may have reached the server's commit.
   */
  let base: FileDigest | null | undefined;
  return connection.run(
    async (session) => {
      if (base !== undefined) {
        const judgement = await judge(session.client, name, mode, base, ours);
        if (judgement === 'committed') {
          const size = mode === 'append' && base !== null ? base.size + ours.size : ours.size;
          return { outcome: 'committed', name, size, sha256, summary: 'committed by the attempt whose confirmation was lost' };
        }
        const askAgain = answered && options.askAgainIfChanged === true;
        if (judgement !== 'not-committed' && !askAgain) throw new ClientFailure(ErrorCodes.EXISTS, judgement.conflict);
        if (askAgain && (judgement !== 'not-committed' || !(await unchanged(session.client, name, base)))) {
          // What the user decided about is not there any more: the server asks again (350) if the name is taken.
          say(`socklab: ${quote(name)} changed on the server while we were reconnecting; your answer was about the file as it was, so it is not applied`);
          mode = options.mode;
          answered = false;
          base = undefined;
        }
      }
      if (base === undefined) base = await statOrFail(session.client, name);
      return upload(session.client, file, name, {
        ...options,
        mode,
        sha256,
        onExists: async (currentSize) => {
          const decision: ExistsDecision = await options.onExists(currentSize);
          if (decision !== 'cancel') {
            mode = decision;
            answered = true;
          }
          return decision;
        },
      });
    },
    { kind: 'put', name, size: file.size },
  );
}

type Judgement = 'committed' | 'not-committed' | { readonly conflict: string };

/** True when `name` on the server is still `base` (size and sha256; null: still absent). */
async function unchanged(client: SocklabClient, name: string, base: FileDigest | null): Promise<boolean> {
  const now = await statOrFail(client, name);
  return now === null || base === null ? now === base : now.size === base.size && now.sha256 === base.sha256;
}

async function statOrFail(client: SocklabClient, name: string): Promise<FileDigest | null> {
  try {
    return await client.stat(name);
  } catch (error) {
    throw explainFailure(error, { kind: 'stat', name });
  }
}

/** Did the attempt whose reply was lost commit? See the comment at the top. */
async function judge(client: SocklabClient, name: string, mode: PutMode, base: FileDigest | null, ours: FileDigest): Promise<Judgement> {
  const now = await statOrFail(client, name);
  const same = (a: FileDigest | null, b: FileDigest | null) => a !== null && b !== null && a.size === b.size && a.sha256 === b.sha256;
  if (mode !== 'append' || base === null) {
    // (If the file held our bytes already, nothing tells; sending again lets the server decide, as the first time.)
    if (same(now, ours) && !same(base, ours)) return 'committed';
    if (mode !== 'append') return 'not-committed'; // sending it again replaces whatever is there, exactly once
    return now === null ? 'not-committed' : { conflict: changedMeanwhile(name, now, 'absent') };
  }
  if (same(now, base)) return 'not-committed';
  if (now !== null && now.size === base.size + ours.size && (await endsWithOurs(client, name, base, ours))) return 'committed';
  return { conflict: changedMeanwhile(name, now, `${base.size} bytes`) };
}

/** GETs the file and checks it is exactly `base` followed by our bytes (nothing is saved). */
async function endsWithOurs(client: SocklabClient, name: string, base: FileDigest, ours: FileDigest): Promise<boolean> {
  const head = createHash('sha256');
  const tail = createHash('sha256');
  let at = 0;
  try {
    await client.get(name, (chunk) => {
      const split = Math.max(0, Math.min(chunk.length, base.size - at));
      head.update(chunk.subarray(0, split));
      tail.update(chunk.subarray(split));
      at += chunk.length;
    });
  } catch (error) {
    throw explainFailure(error, { kind: 'get', name });
  }
  return head.digest('hex') === base.sha256 && tail.digest('hex') === ours.sha256;
}

function changedMeanwhile(name: string, now: FileDigest | null, before: string): string {
  const state = now === null ? 'gone' : `${now.size} bytes`;
  return `${quote(name)} changed on the server while the upload was retried (it was ${before}, it is now ${state}): not sending the append again, so that it is never applied twice; check it with "${socklabCommand()} client stat ${name}"`;
}
