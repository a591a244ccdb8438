/**
 * `socklab client put --retry N`: an upload that survives the server going
 * away (killed, restarted, shutting down). When the connection is lost, the
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
import type { LocalFile } from './local-file.js';
import { ClientFailure, explainFailure, quote } from './messages.js';
import { openSession, quit, type ConnectionArgs } from './session.js';
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

/** Milliseconds before retry number `retry` (1, 2, ...): 250 ms doubling to at most 4 s, ±25 % jitter so clients do not reconnect in lockstep. */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  const base = Math.min(4000, 250 * 2 ** Math.max(0, retry - 1));
  return Math.round(base * (0.75 + 0.5 * random()));
}

export interface RetryOptions {
  /** How many times to reconnect after the first attempt. */
  readonly retries: number;
  /** Where "retrying in ..." lines go (stderr in the CLI). */
  readonly say: (line: string) => void;
  readonly sleep?: (ms: number) => Promise<void>;
}

type Judgement = 'committed' | 'not-committed' | { readonly conflict: string };

/**
 * Uploads `file` as `name`, reconnecting up to `retries` times. Each session
 * is opened and closed here. Failures that are not about the connection
 * (552, 553, 554, a sha256 mismatch...) end it at once, as without --retry.
 */
export async function uploadWithRetry(args: ConnectionArgs, file: LocalFile, name: string, options: UploadOptions, retry: RetryOptions): Promise<UploadOutcome> {
  const sleep = retry.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const sha256 = await file.sha256();
  const ours: FileDigest = { size: file.size, sha256 };
  // The mode actually in force: after a 350 answered with overwrite or append, later attempts say so themselves.
  let mode: PutMode = options.mode;
  /**
   * The file before our first attempt could have changed it (null: absent);
   * undefined until known. Known only once an attempt went on to upload, so
   * from then on an attempt may have reached the server's commit.
   */
  let base: FileDigest | null | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const session = await openSession(args);
      try {
        if (base !== undefined) {
          const judgement = await judge(session.client, name, mode, base, ours);
          if (judgement === 'committed') {
            await quit(session);
            const size = mode === 'append' && base !== null ? base.size + ours.size : ours.size;
            return { outcome: 'committed', name, size, sha256, summary: 'committed by the attempt whose confirmation was lost' };
          }
          if (judgement !== 'not-committed') {
            throw new ClientFailure(ErrorCodes.EXISTS, judgement.conflict);
          }
        }
        if (base === undefined) base = await statOrFail(session.client, name);
        const result = await upload(session.client, file, name, {
          ...options,
          mode,
          sha256,
          onExists: async (currentSize) => {
            const decision: ExistsDecision = await options.onExists(currentSize);
            if (decision !== 'cancel') mode = decision;
            return decision;
          },
        });
        await quit(session);
        return result;
      } catch (error) {
        session.client.close();
        throw error;
      }
    } catch (error) {
      const failure = explainFailure(error, { kind: 'put', name, size: file.size });
      if (!isRetriable(failure)) throw failure;
      if (attempt >= retry.retries) {
        throw new ClientFailure(failure.code, `${failure.message} (gave up after ${retry.retries} ${retry.retries === 1 ? 'retry' : 'retries'})`, { cause: failure });
      }
      const wait = backoffMs(attempt + 1);
      retry.say(`socklab: ${failure.message}; retrying in ${(wait / 1000).toFixed(1)} s (retry ${attempt + 1} of ${retry.retries})`);
      await sleep(wait);
    }
  }
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
  return `${quote(name)} changed on the server while the upload was retried (it was ${before}, it is now ${state}): not sending the append again, so that it is never applied twice; check it with "socklab client stat ${name}"`;
}
