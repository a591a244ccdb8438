/**
 * Runs conformance cases against one server, one after the other (a sequential
 * server serves one connection at a time), each on its own connections and
 * within its own time limit, and says what passed and what failed.
 *
 * The check writes only files named `socklab-check-<run>-…`. Protocol v1 has no
 * command to delete a file, so it removes them itself only when told where the
 * server keeps its files (`root`, a server on this machine); otherwise it says
 * which names it left. It never reads the server's disk to decide a case.
 *
 * A run can be interrupted (`signal`, Ctrl-C for the command): no case starts
 * after that, the one in progress is cut short, and the files are removed as
 * at the end of any run.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConnectionError, ErrorCodes } from '../../protocol/index.js';
import { connectTcp } from '../../transport/tcp-client.js';
import { CASES, type CheckCase } from './cases.js';
import { CaseFailure, Conversation, type Endpoint, type FailureDetail } from './conversation.js';
import type { CaseContext } from './steps.js';

export const FILE_PREFIX = 'socklab-check-';
export const DEFAULT_CASE_TIMEOUT_SECONDS = 5;
/**
 * How long an interrupted case waits for the server to close the connections
 * it leaves: long enough for a server to finish with an upload, short enough
 * that Ctrl-C against a server that never answers still feels immediate.
 */
const LEAVE_GRACE_MS = 1000;

export interface CheckOptions extends Endpoint {
  readonly cases: readonly CheckCase[];
  readonly timeoutSeconds: number;
  /** The server's storage folder on this machine, to remove the check's files from; null: leave them. */
  readonly root: string | null;
  /** The run's id in file names (random by default). */
  readonly runId?: string;
  /** Aborted: start no more cases, cut the one in progress short, remove the files, return what ended. */
  readonly signal?: AbortSignal;
}

export interface CaseResult {
  readonly id: string;
  readonly section: string;
  readonly requirement: string;
  readonly passed: boolean;
  readonly ms: number;
  readonly failure?: FailureDetail;
  /** Why the case was not run (a case it needs failed); it counts as not passed. */
  readonly notRun?: string;
}

export interface CheckReport {
  readonly host: string;
  readonly port: number;
  /** Every file the check wrote starts with this. */
  readonly filePrefix: string;
  readonly results: CaseResult[];
  readonly passed: number;
  readonly failed: number;
  readonly notRun: number;
  /** Files removed from `root` afterwards, or null when no root was given (the files stay on the server). */
  readonly removed: string[] | null;
  /** Files of this run that are still in `root` because removing them failed; null when none did. */
  readonly notRemoved: RemovalFailure | null;
  /** A case sent a PUT: the server may hold files named `filePrefix`… */
  readonly sentPut: boolean;
  /** The server said it stored one (a 226 naming a file a case uploaded): `root` should have held it. */
  readonly storedFile: boolean;
  /** The run was interrupted (`signal`): `results` holds the cases that ended before, the rest never ran. */
  readonly interrupted: boolean;
}

export interface RemovalFailure {
  /** What is left: the file names, or `<prefix>*` when the folder could not even be listed. */
  readonly names: readonly string[];
  /** Why, as the system said it (EACCES...). */
  readonly reason: string;
}

export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

/**
 * The cases whose id matches one of `patterns`, ignoring case: a pattern with
 * `*` is a glob over the whole id; any other is an id, or the start of ids up
 * to a "/" or "-" (`get` is get, get/empty...; `put/350` is put/350-cancel...).
 */
export function selectCases(patterns: readonly string[], cases: readonly CheckCase[] = CASES): CheckCase[] {
  if (patterns.length === 0) return [...cases];
  const tests = patterns.map((pattern) => {
    const lower = pattern.toLowerCase();
    if (!lower.includes('*')) return (id: string) => id === lower || id.startsWith(`${lower}/`) || id.startsWith(`${lower}-`);
    const regex = new RegExp(`^${lower.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    return (id: string) => regex.test(id);
  });
  return cases.filter((c) => tests.some((test) => test(c.id.toLowerCase())));
}

/**
 * Connects once before anything else, so that a server that is not there is
 * one sentence, not a failure in every case. The probe leaves the way a polite
 * client does (its EOF, then it reads until the server closes), so that even a
 * fragile server sees nothing worse than a client that said nothing.
 */
export async function probe(endpoint: Endpoint, timeoutSeconds: number): Promise<void> {
  try {
    const channel = await connectTcp({ ...endpoint, connectTimeoutMs: timeoutSeconds * 1000 });
    channel.socket.end();
    let timer: NodeJS.Timeout | undefined;
    const drained = (async () => {
      while ((await channel.read()) !== null);
    })();
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutSeconds * 1000)))]);
    clearTimeout(timer);
    channel.close();
  } catch (error) {
    if (error instanceof ConnectionError && error.code === ErrorCodes.CONNECTION_REFUSED) {
      throw new ConnectionError(
        ErrorCodes.CONNECTION_REFUSED,
        `nothing is listening on ${endpoint.host}:${endpoint.port} (connection refused): start your server first, or give its --host and --port`,
        { cause: error },
      );
    }
    throw error;
  }
}

export async function runCheck(options: CheckOptions, onResult: (result: CaseResult) => void = () => {}): Promise<CheckReport> {
  const filePrefix = `${FILE_PREFIX}${options.runId ?? newRunId()}-`;
  const results: CaseResult[] = [];
  let removal: Removal | null = null;
  let sentPut = false;
  let storedFile = false;
  let interrupted = false;
  // Set once a gate case fails: running the rest would only wait out every case's timeout to fail it.
  let closedGate: string | null = null;
  try {
    for (const checkCase of options.cases) {
      if (options.signal?.aborted === true) {
        interrupted = true;
        break;
      }
      if (closedGate !== null) {
        const skipped = notRun(checkCase, closedGate);
        results.push(skipped);
        onResult(skipped);
        continue;
      }
      const outcome = await runCase(checkCase, options, filePrefix);
      sentPut ||= outcome.sentPut;
      storedFile ||= outcome.storedFile;
      if (outcome.result === null) {
        interrupted = true;
        break;
      }
      const result = outcome.result;
      if (!result.passed && checkCase.gate !== undefined) closedGate = `${checkCase.id} failed, and ${checkCase.gate}`;
      if (result.failure?.refused === true) {
        const previous = results.at(-1)?.id;
        closedGate = `the server refused connections from ${checkCase.id} on${previous === undefined ? '' : `: did it stop during ${previous}?`}`;
      }
      results.push(result);
      onResult(result);
    }
  } finally {
    if (options.root !== null) removal = removeCheckFiles(options.root, filePrefix);
  }
  const passed = results.filter((r) => r.passed).length;
  const notRunCount = results.filter((r) => r.notRun !== undefined).length;
  return {
    host: options.host,
    port: options.port,
    filePrefix,
    results,
    passed,
    failed: results.length - passed - notRunCount,
    notRun: notRunCount,
    removed: removal?.removed ?? null,
    notRemoved: removal?.failure ?? null,
    sentPut,
    storedFile,
    interrupted,
  };
}

function notRun(checkCase: CheckCase, reason: string): CaseResult {
  return { id: checkCase.id, section: checkCase.section, requirement: checkCase.requirement, passed: false, ms: 0, notRun: reason };
}

interface CaseOutcome {
  /** Null when the run was interrupted during the case: it has no verdict. */
  readonly result: CaseResult | null;
  readonly sentPut: boolean;
  readonly storedFile: boolean;
}

const INTERRUPTED = Symbol('interrupted');

/** Resolves to INTERRUPTED when `signal` aborts (at once if it has); `stopWaiting` drops the listener. */
function abortOf(signal: AbortSignal | undefined): { readonly aborted: Promise<typeof INTERRUPTED>; stopWaiting(): void } {
  if (signal === undefined) return { aborted: new Promise(() => {}), stopWaiting: () => {} };
  let listener = () => {};
  const aborted = new Promise<typeof INTERRUPTED>((resolve) => {
    listener = () => resolve(INTERRUPTED);
    if (signal.aborted) listener();
    else signal.addEventListener('abort', listener, { once: true });
  });
  return { aborted, stopWaiting: () => signal.removeEventListener('abort', listener) };
}

async function runCase(checkCase: CheckCase, options: CheckOptions, filePrefix: string): Promise<CaseOutcome> {
  const began = performance.now();
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  const conversations: Conversation[] = [];
  let over = false;
  const keep = (c: Conversation) => {
    // A case cut short (by the bound below or an interruption) runs on unawaited: a connection it opens now must not outlive it.
    if (over) {
      c.close();
      throw new CaseFailure({ sent: ['(TCP connect)'], expected: 'the case to be still running', got: ['(it had been cut short)'] });
    }
    conversations.push(c);
    return c;
  };
  const context: CaseContext = {
    open: async () => keep(await Conversation.open(options, deadline, options.timeoutSeconds)),
    connect: async () => keep(await Conversation.connect(options, deadline, options.timeoutSeconds)),
    file: (suffix) => `${filePrefix}${checkCase.id.replace(/\//g, '-')}-${suffix}`,
  };
  let failure: FailureDetail | undefined;
  let interrupted = false;
  let timer: NodeJS.Timeout | undefined;
  const interruption = abortOf(options.signal);
  try {
    // Every wait in a case ends at the deadline; this bound is for a wait that would not (a bug in a case).
    const overrun = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the case did not end within ${options.timeoutSeconds} s`)), options.timeoutSeconds * 1000 + 2000);
    });
    interrupted = (await Promise.race([checkCase.run(context), overrun, interruption.aborted])) === INTERRUPTED;
  } catch (error) {
    failure = error instanceof CaseFailure ? error.detail : { sent: [], expected: 'the case to run', got: [`(${error instanceof Error ? error.message : String(error)})`] };
  } finally {
    over = true;
    clearTimeout(timer);
    interruption.stopWaiting();
  }
  if (interrupted) await Promise.all(conversations.map((c) => c.leave(LEAVE_GRACE_MS)));
  else for (const c of conversations) c.close();
  const writes = { sentPut: conversations.some((c) => c.sentPut), storedFile: conversations.some((c) => c.storedFile) };
  if (interrupted) return { result: null, ...writes };
  const ms = Math.round(performance.now() - began);
  const base = { id: checkCase.id, section: checkCase.section, requirement: checkCase.requirement, ms };
  return { result: failure === undefined ? { ...base, passed: true } : { ...base, passed: false, failure }, ...writes };
}

interface Removal {
  readonly removed: string[];
  readonly failure: RemovalFailure | null;
}

/** Removes the files of this run (and only those) from the server's root; says which it removed and which it could not. */
function removeCheckFiles(root: string, filePrefix: string): Removal {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (error) {
    return { removed: [], failure: { names: [`${filePrefix}*`], reason: `could not list the folder: ${systemReason(error)}` } };
  }
  const removed: string[] = [];
  const left: string[] = [];
  let reason: string | null = null;
  for (const entry of entries) {
    if (!entry.name.startsWith(filePrefix) || !entry.isFile()) continue;
    try {
      fs.rmSync(path.join(root, entry.name), { force: true });
      removed.push(entry.name);
    } catch (error) {
      left.push(entry.name);
      reason ??= systemReason(error);
    }
  }
  return { removed: removed.sort(), failure: reason === null ? null : { names: left.sort(), reason } };
}

/** EACCES, EPERM...: the code says it; the message would repeat the path. */
function systemReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}
