/**
 * What a server does with one connection, written once for all three models.
 *
 * The program is a generator that *describes* its I/O as effects (read bytes,
 * write bytes, call storage) instead of performing it. A driver performs them:
 * `runSession` with promises (the sequential and async servers), or
 * `runSessionBlocking` with plain blocking calls (inside a worker thread). So
 * the protocol logic is the same code in every model, and the server files
 * differ only in how they run it: one at a time, one per thread, or all
 * interleaved on one event loop.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  ConnectionError,
  ErrorCodes,
  Replies,
  ServerSession,
  StorageError,
  type Upload,
} from '../protocol/index.js';
import type { AsyncSessionIO, BlockingSessionIO, ClientInput } from '../transport/session-io.js';
import type { AsyncStorageOps, ProbedName, ReadHandle, StorageOps } from './storage/types.js';

export type { AsyncSessionIO, BlockingSessionIO, ClientInput, ReadSignal } from '../transport/session-io.js';

export type Effect =
  | { readonly kind: 'read' }
  | { readonly kind: 'write'; readonly bytes: Uint8Array }
  | { readonly kind: 'storage'; readonly op: keyof StorageOps; readonly args: readonly unknown[] };

export interface SessionOutcome {
  /** For the log: `quit`, `client closed`, `idle timeout`, `shutdown`, ... */
  readonly outcome: string;
  readonly requests: number;
}

export type SessionProgram = Generator<Effect, SessionOutcome, unknown>;

/** GET reads the file in pieces of this size: memory per download stays bounded. */
const READ_CHUNK_BYTES = 64 * 1024;

/** One object for every read: a session asks for bytes once per request, and allocating nothing there is free speed. */
const READ: Effect = { kind: 'read' };

function write(bytes: Uint8Array): Effect {
  return { kind: 'write', bytes };
}

function* call<K extends keyof StorageOps>(op: K, ...args: Parameters<StorageOps[K]>): Generator<Effect, ReturnType<StorageOps[K]>, unknown> {
  return (yield { kind: 'storage', op, args }) as ReturnType<StorageOps[K]>;
}

type Attempt<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: StorageError };

/** A storage call whose protocol-level failure (StorageError) is a value, not an exception. */
function* attempt<K extends keyof StorageOps>(op: K, ...args: Parameters<StorageOps[K]>): Generator<Effect, Attempt<ReturnType<StorageOps[K]>>, unknown> {
  try {
    // The effect itself, not `yield* call(...)`: a session makes four of these per upload, each a generator less.
    return { ok: true, value: (yield { kind: 'storage', op, args }) as ReturnType<StorageOps[K]> };
  } catch (error) {
    if (error instanceof StorageError) return { ok: false, error };
    throw error;
  }
}

/** What a server asks of its clients beyond the protocol itself. */
export interface SessionPolicy {
  /**
   * Bytes per second an upload must keep up, counted over the time the server
   * waits for its data (not the time it spends writing), once the first
   * UPLOAD_RATE_GRACE_MS of waiting are over; 0: no minimum. Without it, a few
   * hundred clients sending a byte now and then (never idle long enough for
   * the idle timeout) could hold every open-file slot.
   */
  readonly minUploadRate: number;
  /** Waiting forgiven before the minimum rate applies; absent: UPLOAD_RATE_GRACE_MS (tests shorten it). */
  readonly uploadRateGraceMs?: number;
}

export const NO_POLICY: SessionPolicy = { minUploadRate: 0 };
/** Slow starts are forgiven: a new connection's window is small. */
export const UPLOAD_RATE_GRACE_MS = 10_000;

export function* sessionProgram(session: ServerSession, policy: SessionPolicy = NO_POLICY): SessionProgram {
  let requests = 0;
  /** Set once by a 'shutdown' signal; the session then ends at its next idle moment. */
  const shutdown = { requested: false };
  const ended = (outcome: string): SessionOutcome => ({ outcome, requests });

  try {
    yield write(session.greeting());
    for (;;) {
      const event = session.nextEvent();
      if (event.kind !== 'need-bytes') requests++;
      switch (event.kind) {
        case 'need-bytes': {
          if (shutdown.requested && session.isIdle) {
            yield write(session.closeReply(Replies.shuttingDown()));
            return ended('shutdown');
          }
          const input = (yield READ) as ClientInput;
          if (input instanceof Uint8Array) {
            session.receive(input);
          } else if (input === 'shutdown') {
            shutdown.requested = true;
          } else if (input === 'idle-timeout') {
            yield write(session.closeReply(Replies.idleTimeout()));
            return ended('idle timeout');
          } else if (input === 'eof') {
            return ended('client closed');
          } else {
            yield write(session.closeReply(Replies.shuttingDown()));
            return ended('aborted');
          }
          break;
        }
        case 'reply':
          yield write(event.bytes);
          if (event.close) return ended(event.reply.code === 221 ? 'quit' : `closed after ${event.reply.code} ${event.reply.text}`);
          break;
        case 'list': {
          const listed = yield* attempt('list');
          yield write(listed.ok ? session.listReply(listed.value) : session.storageErrorReply(listed.error));
          break;
        }
        case 'stat': {
          const digest = yield* attempt('stat', event.name);
          yield write(digest.ok ? session.statReply(digest.value.size, digest.value.sha256) : session.storageErrorReply(digest.error, event.name));
          break;
        }
        case 'get': {
          const end = yield* sendFile(session, event.name);
          if (end !== null) return ended(end);
          break;
        }
        case 'put': {
          const size = yield* attempt('probe', event.request.name);
          if (!size.ok) {
            yield write(session.storageErrorReply(size.error, event.request.name));
            break;
          }
          const answer = session.answerPut(size.value);
          if (answer.kind === 'reply') {
            yield write(answer.bytes);
            break;
          }
          // Straight on from the probe: the storage need not look the name up again.
          const end = yield* receiveUpload(session, answer.upload, shutdown, policy, { size: size.value });
          if (end !== null) return ended(end);
          break;
        }
        case 'upload-start': {
          const end = yield* receiveUpload(session, event.upload, shutdown, policy);
          if (end !== null) return ended(end);
          break;
        }
        case 'upload-data':
        case 'upload-end':
          // receiveUpload consumes these; seeing one here means the core and this loop disagree.
          throw new Error(`unexpected ${event.kind} outside an upload`);
      }
    }
  } catch (error) {
    // The client left, or stopped reading our replies: the session is over, not broken.
    if (error instanceof ConnectionError) return ended(error.code === ErrorCodes.WRITE_STALLED ? error.message : 'client left');
    throw error;
  }
}

/**
 * GET: `150 <size>`, the bytes, `226 <sha256>`. Returns null when the session
 * goes on, or why it must end: once the `150` has promised a byte count, a
 * read that fails or comes up short can only drop the connection, with no
 * further byte (a reply line now would be read as the file's data).
 */
function* sendFile(session: ServerSession, name: string): Generator<Effect, string | null, unknown> {
  const opened = yield* attempt('openRead', name);
  if (!opened.ok) {
    yield write(session.storageErrorReply(opened.error, name));
    return null;
  }
  const handle = opened.value;
  try {
    yield write(session.getStartReply(handle.size));
    const hash = createHash('sha256');
    let sent = 0;
    for (;;) {
      const read = yield* readAfterPromise(handle);
      if (!read.ok) return `GET ${name} failed after its 150 (${read.error.message}): dropped`;
      const chunk = read.value;
      if (chunk === null) break;
      hash.update(chunk);
      sent += chunk.length;
      yield write(chunk);
    }
    if (sent !== handle.size) return `GET ${name}: the file shrank while being sent (${sent} of ${handle.size} bytes): dropped`;
    yield write(session.getEndReply(hash.digest('hex')));
    return null;
  } finally {
    yield* call('closeRead', handle);
  }
}

/**
 * A read of a GET's data: any failure, a bug's included, only drops the
 * connection (the session's usual `421 internal server error` line would go
 * out inside the promised bytes). The client leaving still ends it as such.
 */
function* readAfterPromise(handle: ReadHandle): Generator<Effect, { readonly ok: true; readonly value: Uint8Array | null } | { readonly ok: false; readonly error: Error }, unknown> {
  try {
    return yield* attempt('readChunk', handle, READ_CHUNK_BYTES);
  } catch (error) {
    if (error instanceof ConnectionError) throw error;
    return { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
  }
}

/**
 * From `upload-start` to the reply after the data. Returns null when the
 * session goes on, or the outcome when the client left or the server stops it.
 */
function* receiveUpload(
  session: ServerSession,
  upload: Upload,
  shutdown: { requested: boolean },
  policy: SessionPolicy,
  probed?: ProbedName,
): Generator<Effect, string | null, unknown> {
  const begun = yield* attempt('beginUpload', upload, probed);
  if (!begun.ok) {
    yield write(session.storageErrorReply(begun.error));
    return null;
  }
  const handle = begun.value;
  let settled = false;
  try {
    yield write(session.acceptUpload(upload));
    // A write that fails (disk full) must not desynchronise the stream: the
    // remaining data is still read and dropped, and the failure is the reply.
    let failure: StorageError | null = null;
    /** Time spent waiting for the client's data, and the bytes it brought. */
    let waitedMs = 0;
    let receivedBytes = 0;
    const graceMs = policy.uploadRateGraceMs ?? UPLOAD_RATE_GRACE_MS;
    for (;;) {
      const event = session.nextEvent();
      if (event.kind === 'upload-end') break;
      if (event.kind === 'upload-data') {
        if (failure === null) {
          const written = yield* attempt('writeUpload', handle, event.bytes);
          if (!written.ok) failure = written.error;
        }
        continue;
      }
      const waitStarted = performance.now();
      const input = (yield READ) as ClientInput;
      waitedMs += performance.now() - waitStarted;
      if (input instanceof Uint8Array) {
        session.receive(input);
        receivedBytes += input.length;
        if (policy.minUploadRate > 0 && waitedMs > graceMs && receivedBytes < (policy.minUploadRate * waitedMs) / 1000) {
          yield write(session.closeReply(Replies.uploadTooSlow(policy.minUploadRate)));
          return `upload too slow: ${receivedBytes} B in ${(waitedMs / 1000).toFixed(1)} s of waiting (discarded)`;
        }
      } else if (input === 'idle-timeout') {
        yield write(session.closeReply(Replies.idleTimeout()));
        return 'idle timeout (upload discarded)';
      } else if (input === 'shutdown') {
        // An upload in progress is allowed to finish; the session ends after its reply.
        shutdown.requested = true;
      } else if (input === 'eof') {
        return 'client closed mid-upload (discarded)';
      } else {
        // Grace time over: say so (if the client is still there, the write fails otherwise and it left).
        yield write(session.closeReply(Replies.shuttingDown()));
        return 'aborted mid-upload (discarded)';
      }
    }
    settled = true;
    if (failure !== null) {
      yield* call('abortUpload', handle);
      yield write(session.storageErrorReply(failure));
      return null;
    }
    const committed = yield* attempt('commitUpload', handle);
    yield write(committed.ok ? session.finishUpload(upload, committed.value.size, committed.value.sha256) : session.storageErrorReply(committed.error));
    return null;
  } finally {
    if (!settled) yield* call('abortUpload', handle);
  }
}

/**
 * Runs a session on the event loop. Storage may be either flavour: the async
 * server passes AsyncStorage; the sequential server passes SyncStorage, whose
 * calls block the event loop, which is exactly its model.
 *
 * Effects that complete at once (bytes already received, a reply queued, a
 * synchronous storage call) are fed straight back into the program: only a
 * real wait costs a callback, so a server answering small requests spends its
 * time on the requests, not on promises.
 */
export function runSession(program: SessionProgram, io: AsyncSessionIO, storage: StorageOps | AsyncStorageOps): Promise<SessionOutcome> {
  return new Promise((resolve, reject) => {
    const resumeWith = (input: ClientInput) => run(false, input);
    const succeed = (value: unknown) => run(false, value);
    const fail = (error: unknown) => run(true, error);
    /** Advances the program with `value` (thrown into it if `failed`) until it must wait. */
    function run(failed: boolean, value: unknown): void {
      for (;;) {
        let step: IteratorResult<Effect, SessionOutcome>;
        try {
          step = failed ? program.throw(value) : program.next(value);
        } catch (error) {
          io.flush();
          reject(error);
          return;
        }
        if (step.done) {
          io.flush();
          resolve(step.value);
          return;
        }
        const effect = step.value;
        failed = false;
        try {
          if (effect.kind === 'read') {
            value = io.read(resumeWith);
            if (value !== null) continue;
            io.flush();
            return;
          }
          value = effect.kind === 'write' ? io.write(effect.bytes) : invoke(storage, effect);
        } catch (error) {
          failed = true;
          value = error;
          continue;
        }
        if (value instanceof Promise) {
          io.flush();
          value.then(succeed, fail);
          return;
        }
      }
    }
    run(false, undefined);
  });
}

/** Runs a session as plain blocking code (a worker thread's whole life for one connection). */
export function runSessionBlocking(program: SessionProgram, io: BlockingSessionIO, storage: StorageOps): SessionOutcome {
  let step = program.next();
  while (!step.done) {
    const effect = step.value;
    let result: unknown;
    try {
      if (effect.kind === 'read') result = io.read();
      else if (effect.kind === 'write') result = io.write(effect.bytes);
      else {
        io.flush();
        result = invoke(storage, effect);
      }
    } catch (error) {
      step = program.throw(error);
      continue;
    }
    step = program.next(result);
  }
  io.flush();
  return step.value;
}

function invoke(storage: StorageOps | AsyncStorageOps, effect: Extract<Effect, { kind: 'storage' }>): unknown {
  const method = storage[effect.op] as (...args: readonly unknown[]) => unknown;
  return Reflect.apply(method, storage, effect.args);
}
