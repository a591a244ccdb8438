/**
 * Shared test doubles for the protocol tests (not a test file itself: tap only
 * runs `*.test.js`).
 *
 * - MemoryStorage + SessionDriver: a tiny in-memory server around ServerSession,
 *   answering every storage event the way PROTOCOL.md says a server must.
 * - FakeChannel: a ByteChannel whose reads return queued server bytes in odd
 *   chunk sizes and which records every write.
 * - LoopbackChannel: a ByteChannel wired straight to a SessionDriver.
 */
import { createHash } from 'node:crypto';
import type tap from 'tap';
import {
  ErrorCodes,
  ServerSession,
  StorageError,
  type ByteChannel,
  type ListEntry,
  type ServerSessionOptions,
  type Upload,
} from '../../protocol/index.js';

const encoder = new TextEncoder();

/** The assertions a subtest offers (the same methods as the root `t`). */
export type Asserts = Pick<typeof tap, 'ok' | 'notOk' | 'equal' | 'not' | 'same' | 'match' | 'notMatch' | 'type' | 'fail' | 'pass'>;

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Bytes given as a latin1 string: every char code 0..255 is one byte. */
export function raw(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'latin1'));
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
}

/** A byte-exact, printable view of bytes (latin1 maps each byte to one char). */
export function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function utf8(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface StoredFile {
  data: Uint8Array;
  mtime: Date;
}

export type StoragePhase = 'list' | 'stat' | 'get' | 'put' | 'upload-start' | 'upload-end';

/** The smallest storage that behaves like PROTOCOL.md's server storage. */
export class MemoryStorage {
  readonly files = new Map<string, StoredFile>();
  /** Total bytes the storage may hold; an upload crossing it gets NO_SPACE. */
  quota = Number.POSITIVE_INFINITY;
  /** Errors to throw the next time a phase runs (consumed once). */
  readonly failures = new Map<StoragePhase, StorageError>();

  constructor(initial: Record<string, string | Uint8Array> = {}) {
    let second = 0;
    for (const [name, content] of Object.entries(initial)) {
      this.files.set(name, {
        data: typeof content === 'string' ? bytes(content) : content,
        mtime: new Date(Date.UTC(2024, 0, 2, 3, 4, second++)),
      });
    }
  }

  failOnce(phase: StoragePhase, error: StorageError): void {
    this.failures.set(phase, error);
  }

  check(phase: StoragePhase): void {
    const error = this.failures.get(phase);
    if (error !== undefined) {
      this.failures.delete(phase);
      throw error;
    }
  }

  used(): number {
    let total = 0;
    for (const f of this.files.values()) total += f.data.length;
    return total;
  }

  list(): ListEntry[] {
    return [...this.files.entries()]
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map(([name, f]) => ({ name, size: f.data.length, mtime: f.mtime }));
  }

  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, f] of this.files) out[name] = latin1(f.data);
    return out;
  }
}

/**
 * Drives a ServerSession the way a server does, synchronously, answering each
 * storage event from a MemoryStorage. Everything the server would write to
 * the socket is collected in `output`.
 */
export class SessionDriver {
  readonly session: ServerSession;
  readonly output: Uint8Array[] = [];
  /** The kinds of all events seen, in order (need-bytes excluded). */
  readonly events: string[] = [];
  private parts: Uint8Array[] = [];

  constructor(
    readonly storage: MemoryStorage,
    options: Partial<ServerSessionOptions> = {},
  ) {
    this.session = new ServerSession({ model: 'async', maxFileSize: 64 * 1024 * 1024, ...options });
  }

  get closed(): boolean {
    return this.session.isClosed;
  }

  get written(): Uint8Array {
    return concat(this.output);
  }

  feed(chunk: Uint8Array): void {
    if (this.closed) return; // the server stopped reading after closing
    this.session.receive(chunk);
    this.pump();
  }

  private emit(b: Uint8Array): void {
    this.output.push(b);
  }

  private attempt(phase: StoragePhase, name: string, action: () => void): void {
    try {
      this.storage.check(phase);
      action();
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      this.emit(this.session.storageErrorReply(error, name));
    }
  }

  pump(): void {
    const { session, storage } = this;
    while (!session.isClosed) {
      const event = session.nextEvent();
      if (event.kind === 'need-bytes') return;
      this.events.push(event.kind);
      switch (event.kind) {
        case 'reply':
          this.emit(event.bytes);
          break;
        case 'list':
          this.attempt('list', '', () => this.emit(session.listReply(storage.list())));
          break;
        case 'stat':
          this.attempt('stat', event.name, () => {
            const f = storage.files.get(event.name);
            if (f === undefined) throw new StorageError(ErrorCodes.NOT_FOUND, `${event.name}: no such file`);
            this.emit(session.statReply(f.data.length, sha256(f.data)));
          });
          break;
        case 'get':
          this.attempt('get', event.name, () => {
            const f = storage.files.get(event.name);
            if (f === undefined) throw new StorageError(ErrorCodes.NOT_FOUND, `${event.name}: no such file`);
            this.emit(session.getStartReply(f.data.length));
            if (f.data.length > 0) this.emit(f.data);
            this.emit(session.getEndReply(sha256(f.data)));
          });
          break;
        case 'put':
          this.attempt('put', event.request.name, () => {
            const f = storage.files.get(event.request.name);
            const answer = session.answerPut(f === undefined ? null : f.data.length);
            if (answer.kind === 'reply') this.emit(answer.bytes);
            else this.startUpload(answer.upload);
          });
          break;
        case 'upload-start':
          this.startUpload(event.upload);
          break;
        case 'upload-data':
          this.parts.push(Uint8Array.from(event.bytes));
          break;
        case 'upload-end':
          this.attempt('upload-end', event.upload.name, () => this.commit(event.upload));
          break;
      }
    }
  }

  private startUpload(upload: Upload): void {
    this.attempt('upload-start', upload.name, () => {
      this.parts = [];
      this.emit(this.session.acceptUpload(upload));
    });
  }

  private commit(upload: Upload): void {
    const { storage } = this;
    const received = concat(this.parts);
    this.parts = [];
    const digest = sha256(received);
    const current = storage.files.get(upload.name);
    if (upload.mode === 'new' && current !== undefined) throw new StorageError(ErrorCodes.EXISTS, `${upload.name} exists`);
    if (upload.sha256 !== null && upload.sha256 !== digest) throw new StorageError(ErrorCodes.CHECKSUM_MISMATCH, 'sha256 mismatch');
    const data = upload.mode === 'append' && current !== undefined ? concat([current.data, received]) : received;
    if (storage.used() - (current?.data.length ?? 0) + data.length > storage.quota) {
      throw new StorageError(ErrorCodes.NO_SPACE, 'over quota');
    }
    storage.files.set(upload.name, { data, mtime: new Date(Date.UTC(2024, 5, 6, 7, 8, 9)) });
    this.emit(this.session.finishUpload(upload, data.length, digest));
  }
}

/** Feeds `chunks` one by one to a fresh driver and returns it. */
export function runSession(
  chunks: readonly Uint8Array[],
  initial: Record<string, string | Uint8Array> = {},
  options: Partial<ServerSessionOptions> = {},
): SessionDriver {
  const driver = new SessionDriver(new MemoryStorage(initial), options);
  for (const chunk of chunks) driver.feed(chunk);
  return driver;
}

/**
 * The server's output as a list of reply lines, with a GET's data block (the
 * bytes after a `150 <size>`) shown as `DATA <utf8>`.
 */
export function transcript(output: Uint8Array): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < output.length) {
    const lf = output.indexOf(0x0a, at);
    if (lf < 0) {
      out.push(`PARTIAL ${utf8(output.subarray(at))}`);
      break;
    }
    const line = utf8(output.subarray(at, lf));
    out.push(line);
    at = lf + 1;
    const get = /^150 ([0-9]+)$/.exec(line);
    if (get !== null) {
      const size = Number(get[1]);
      out.push(`DATA ${utf8(output.subarray(at, at + size))}`);
      at += size;
    }
  }
  return out;
}

/**
 * Expected transcripts may give a bare three-digit code where PROTOCOL.md does
 * not fix the reply's text: such lines are compared on their code only.
 */
export function normalizeTranscript(actual: readonly string[], expected: readonly string[]): string[] {
  return actual.map((line, i) => {
    const want = expected[i];
    if (want !== undefined && /^[0-9]{3}$/.test(want) && line.startsWith(want) && (line.length === 3 || line[3] === ' ')) {
      return want;
    }
    return line;
  });
}

/** The cycle of odd read sizes the fake channels hand out. */
export const ODD_SIZES: readonly number[] = [3, 1, 7, 2, 13, 5, 1, 11];

export function splitOdd(data: Uint8Array, sizes: readonly number[] = ODD_SIZES): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const size = sizes[i++ % sizes.length] ?? 1;
    // Copy, so that nothing the client keeps aliases the script.
    chunks.push(Uint8Array.from(data.subarray(at, at + size)));
    at += size;
  }
  return chunks;
}

export interface RecordedWrite {
  readonly bytes: Uint8Array;
  /** How many server bytes the client had read when it wrote this. */
  readonly deliveredBefore: number;
}

/**
 * A ByteChannel over a fixed server script: read() returns the script in odd
 * chunk sizes, then null (the server closed). Writes are recorded together
 * with how much of the script the client had read at that moment.
 */
export class FakeChannel implements ByteChannel {
  private readonly chunks: Uint8Array[];
  delivered = 0;
  reads = 0;
  closed = false;
  readonly writes: RecordedWrite[] = [];

  constructor(script: string | Uint8Array, sizes: readonly number[] = ODD_SIZES) {
    this.chunks = splitOdd(typeof script === 'string' ? bytes(script) : script, sizes);
  }

  async read(): Promise<Uint8Array | null> {
    this.reads++;
    const chunk = this.chunks.shift();
    if (chunk === undefined) return null;
    this.delivered += chunk.length;
    return chunk;
  }

  async write(b: Uint8Array): Promise<void> {
    if (this.closed) throw new Error('write after close');
    this.writes.push({ bytes: Uint8Array.from(b), deliveredBefore: this.delivered });
  }

  close(): void {
    this.closed = true;
  }

  /** Everything written, as one latin1 string. */
  get written(): string {
    return latin1(concat(this.writes.map((w) => w.bytes)));
  }

  /** Bytes of the script not read by the client. */
  get unread(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
}

/**
 * A ByteChannel connected to a ServerSession in memory. The session answers
 * synchronously on each write; a read that finds nothing to return while the
 * session is still open would wait forever on a real socket, so it throws.
 */
export class LoopbackChannel implements ByteChannel {
  readonly driver: SessionDriver;
  private pending: Uint8Array[] = [];
  private sentGreeting = false;
  closed = false;

  constructor(storage: MemoryStorage, options: Partial<ServerSessionOptions> = {}) {
    this.driver = new SessionDriver(storage, options);
  }

  private collect(): void {
    if (!this.sentGreeting) {
      this.sentGreeting = true;
      this.pending.push(this.driver.session.greeting());
    }
    this.pending.push(...splitOdd(concat(this.driver.output.splice(0))));
  }

  async read(): Promise<Uint8Array | null> {
    this.collect();
    const chunk = this.pending.shift();
    if (chunk !== undefined) return chunk;
    if (this.driver.closed) return null;
    throw new Error('deadlock: the client reads but the server has nothing to say');
  }

  async write(b: Uint8Array): Promise<void> {
    if (this.closed) throw new Error('write after close');
    for (const chunk of splitOdd(b)) this.driver.feed(chunk);
  }

  close(): void {
    this.closed = true;
  }
}

/** Runs fn and returns what it threw (or fails loudly if it did not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return new Error('expected a throw, but nothing was thrown');
}

export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return new Error('expected a rejection, but the promise resolved');
}
