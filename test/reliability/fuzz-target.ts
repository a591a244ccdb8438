/**
 * A server process to fuzz (fuzz.ts, fuzz.test.ts), with what the crowd
 * beside the fuzzer needs (fuzz-crowd.ts): a file for `GET`s never read and a
 * large file to append to, a --max-file-size with room for the appends, a
 * short idle time, and threads for the fuzzer, the crowd and the appenders.
 * And what must hold after: a fresh client is greeted and served (PING, PUT,
 * STAT) at once, the server logged no failed session, SIGTERM stops it with
 * exit 0, no temporary file is left, nothing appeared next to its root, and
 * the appended file is its large start then whole records only.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ServerModelName } from '../../servers/index.js';
import { UPLOAD_RATE_GRACE_MS } from '../../servers/session.js';
import { tempFilesIn } from '../helpers/wire-fixture.js';
import { CASE_TIMEOUT_MS } from './fuzz-runner.js';
import { freshClientServed, type HoldLimits } from './hostile-clients.js';
import { writeHostileGetFile } from './hold-on-attack.js';
import { AppendLedger, LARGE_FILE_NAME, writeLargeStart } from './large-append-attack.js';
import { ServerProcess } from './processes.js';

export interface FuzzTargetOptions {
  /** Connections fuzzing at once: each may hold a workers thread. */
  readonly connections: number;
  /** Bytes of the large file the crowd appends to. */
  readonly largeFileBytes: number;
  /** Appends the crowd makes at most: the file limit leaves room for them all. */
  readonly maxAppends: number;
}

export interface FuzzTarget {
  readonly server: ServerProcess;
  /** Holds the root and a sentinel file, nothing else. */
  readonly outer: string;
  readonly ledger: AppendLedger;
  readonly maxFileSize: number;
  /** The server's limits, as the crowd's bounds need them. */
  readonly limits: Omit<HoldLimits, 'model'>;
}

const SENTINEL = 'sentinel.txt';
/** Short, so that a client that never reads is cut off soon; a fuzzing connection that stalls this long gets `421 idle timeout`, which the fuzzer accepts. */
const IDLE_SECONDS = 2;
/** workers: threads for the crowd, beyond the fuzzer's connections and the appenders. */
const CROWD_THREADS = 4;
/** Appenders at once (fuzz-crowd.ts), each holding a workers thread. */
export const CROWD_APPENDERS = 2;
/** The longest record an appender sends (appendRecord), with margin. */
const RECORD_BYTES = 128;
/**
 * Sessions other than the crowd's that a client may find ahead of it in line
 * (sequential, workers): the fuzzer's, a few cases each, and the appenders',
 * a few appends each.
 */
const AHEAD_MS = CASE_TIMEOUT_MS;
/** A fresh client once everything else is over: served at once, on any model. */
const FRESH_AFTER_MS = 10_000;

export async function startFuzzTarget(model: ServerModelName, outer: string, options: FuzzTargetOptions): Promise<FuzzTarget> {
  const root = path.join(outer, 'root');
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(outer, SENTINEL), 'outside the root');
  writeHostileGetFile(root);
  const ledger = new AppendLedger(writeLargeStart(path.join(root, LARGE_FILE_NAME), options.largeFileBytes));
  const maxFileSize = options.largeFileBytes + options.maxAppends * RECORD_BYTES;
  const threads = options.connections + CROWD_THREADS + CROWD_APPENDERS;
  const server = await ServerProcess.start(model, {
    root,
    args: ['--max-file-size', String(maxFileSize), '--idle-timeout', String(IDLE_SECONDS), '--threads', String(threads), '--grace', '2'],
  });
  const limits = { idleTimeoutMs: IDLE_SECONDS * 1000, uploadRateGraceMs: UPLOAD_RATE_GRACE_MS, threads: CROWD_THREADS, aheadMs: AHEAD_MS };
  return { server, outer, ledger, maxFileSize, limits };
}

export interface AfterFuzzing {
  /** Every problem found (empty: all well). */
  readonly problems: string[];
  /** How long the fresh client took, or null if it was not served. */
  readonly freshMs: number | null;
}

/** The checks after fuzzing (and after the crowd has stopped); stops the server. */
export async function checkAfterFuzzing(target: FuzzTarget): Promise<AfterFuzzing> {
  const problems: string[] = [];
  let freshMs: number | null = null;
  try {
    freshMs = await freshClientServed(target.server.port, FRESH_AFTER_MS);
  } catch (error) {
    problems.push(`after the fuzzing: ${(error as Error).message}`);
  }
  const failedSessions = target.server.lines.filter((line) => / failed: /.test(line));
  if (failedSessions.length > 0) problems.push(`${failedSessions.length} sessions failed in the server, e.g. ${failedSessions[0]}`);
  const exit = await target.server.stop();
  if (exit.code !== 0) problems.push(`SIGTERM: the server exited with ${exit.code ?? exit.signal}`);
  const temps = tempFilesIn(target.server.root);
  if (temps.length > 0) problems.push(`temporary files left: ${temps.join(', ')}`);
  const outside = fs.readdirSync(target.outer).sort();
  if (JSON.stringify(outside) !== JSON.stringify(['root', SENTINEL])) problems.push(`next to the root: ${outside.join(', ')}`);
  if (fs.readFileSync(path.join(target.outer, SENTINEL), 'utf8') !== 'outside the root') problems.push('the sentinel outside the root changed');
  problems.push(...target.ledger.check().map((problem) => `${LARGE_FILE_NAME}: ${problem}`));
  return { problems, freshMs };
}
