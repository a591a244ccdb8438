/**
 * A model-based test of ServerSession (fast-check `commands`): a small,
 * independent model of PROTOCOL.md (the phase, the files, the pending PUT,
 * the upload in progress) and the real session driven over an in-memory
 * storage (fixtures.ts) receive the same random sequence of requests, data
 * blocks and injected storage failures, each request cut into random chunks.
 * After every step they must agree on the replies (code, and the text where
 * PROTOCOL.md fixes it), on LIST entries and GET data, on whether the session
 * is closed or receiving, and on every file's content.
 */
import fc from 'fast-check';
import type tap from 'tap';
import { ErrorCodes, MAX_LINE_BYTES, StorageError, type ErrorCode } from '../../protocol/index.js';
import { cutAt } from '../reliability/hostile-bytes.js';
import { ServerOutputReader } from '../reliability/server-output.js';
import { latin1, MemoryStorage, SessionDriver, sha256, type StoragePhase } from './fixtures.js';

const MAX_FILE_SIZE = 200;
const QUOTA = 700;
const INITIAL: Record<string, string> = { a: 'hello', 'b.txt': '' };
const GOOD = ['a', 'b.txt', 'new-1', 'заметки'];
const BAD = ['../a', '.hidden', 'e\u0301', 'a\\b', 'x\u202ey'];
const encoder = new TextEncoder();

type Mode = 'ask' | 'new' | 'overwrite' | 'append';
type Phase = 'command' | 'decision' | 'receiving' | 'closed';

interface Model {
  phase: Phase;
  files: Map<string, Buffer>;
  /** After a 350: the PUT waiting for OVERWRITE, APPEND or CANCEL, with the data the client will send. */
  decision: { readonly name: string; readonly planned: Buffer; readonly sha: string | null } | null;
  /** After a 150: what the client is sending (`planned`) and what the server has received so far. */
  upload: { readonly name: string; readonly planned: Buffer; readonly mode: 'new' | 'overwrite' | 'append'; readonly sha: string | null; got: Buffer } | null;
  /** Failures injected into the storage, consumed by the next operation of that phase. */
  failures: Map<StoragePhase, ErrorCode>;
}

interface Real {
  readonly driver: SessionDriver;
  readonly reader: ServerOutputReader;
}

/** One expected output item: a reply (text checked when given), a LIST entry (name and size), GET data. */
type Expect = { readonly code: number; readonly text?: string } | { readonly entry: string } | { readonly data: Buffer };

type Line =
  | { readonly kind: 'ping' }
  | { readonly kind: 'help' }
  | { readonly kind: 'echo'; readonly text: string }
  | { readonly kind: 'list' }
  | { readonly kind: 'stat' | 'get'; readonly name: string }
  | { readonly kind: 'put'; readonly name: string; readonly size: number; readonly mode: Mode | null; readonly sha: 'none' | 'right' | 'wrong'; readonly seed: number }
  | { readonly kind: 'decide'; readonly word: 'OVERWRITE' | 'APPEND' | 'CANCEL' }
  | { readonly kind: 'quit' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'bad-args'; readonly line: string }
  | { readonly kind: 'invalid-utf8' }
  | { readonly kind: 'empty'; readonly spaces: number }
  | { readonly kind: 'too-long'; readonly length: number };

type Step =
  | { readonly kind: 'line'; readonly line: Line; readonly crlf: boolean }
  /** The next part of the upload's data (a fraction of what is left), or all of it followed by a request. */
  | { readonly kind: 'data'; readonly fraction: number; readonly surplus: boolean }
  | { readonly kind: 'fail'; readonly phase: StoragePhase; readonly code: ErrorCode };

function bytesFrom(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The data a PUT step will send: derived from its seed, so the line can carry its sha256. */
function putData(line: Extract<Line, { kind: 'put' }>): Buffer {
  return bytesFrom(line.seed, line.size);
}

function lineBytes(line: Line): Uint8Array {
  switch (line.kind) {
    case 'ping':
      return encoder.encode('PING');
    case 'help':
      return encoder.encode('help');
    case 'echo':
      return encoder.encode(`ECHO ${line.text}`);
    case 'list':
      return encoder.encode('LIST');
    case 'stat':
      return encoder.encode(`STAT ${line.name}`);
    case 'get':
      return encoder.encode(`get ${line.name}`);
    case 'put': {
      const sha = line.sha === 'none' ? '' : ` sha256=${line.sha === 'right' ? sha256(putData(line)) : sha256('something else')}`;
      return encoder.encode(`PUT ${line.name} ${line.size}${line.mode === null ? '' : ` mode=${line.mode}`}${sha}`);
    }
    case 'decide':
      return encoder.encode(line.word);
    case 'quit':
      return encoder.encode('QUIT');
    case 'unknown':
      return encoder.encode('FROB x');
    case 'bad-args':
      return encoder.encode(line.line);
    case 'invalid-utf8':
      return Uint8Array.of(0x45, 0x43, 0x48, 0x4f, 0x20, 0xff, 0xfe);
    case 'empty':
      return encoder.encode(' '.repeat(line.spaces));
    case 'too-long':
      return encoder.encode(`ECHO ${'z'.repeat(line.length - 5)}`);
  }
}

// ---------------------------------------------------------------------------
// The model: what PROTOCOL.md says each step produces

/** The reply a storage failure gets, by phase (PROTOCOL.md: 452 for space during an upload; 550 for a lookup that finds nothing; else 451). */
function failureReply(phase: StoragePhase, code: ErrorCode): Expect {
  const upload = phase === 'upload-start' || phase === 'upload-end';
  if (code === ErrorCodes.NO_SPACE) return { code: upload ? 452 : 451 };
  if (code === ErrorCodes.NOT_FOUND && !upload) return { code: 550 };
  return { code: 451 };
}

function takeFailure(m: Model, phase: StoragePhase): Expect | null {
  const code = m.failures.get(phase);
  if (code === undefined) return null;
  m.failures.delete(phase);
  return failureReply(phase, code);
}

function isGood(name: string): boolean {
  return GOOD.includes(name);
}

function startUpload(m: Model, name: string, planned: Buffer, mode: 'new' | 'overwrite' | 'append', sha: string | null): Expect[] {
  const failed = takeFailure(m, 'upload-start');
  if (failed !== null) {
    m.phase = 'command';
    return [failed];
  }
  m.phase = 'receiving';
  m.upload = { name, planned, mode, sha, got: Buffer.alloc(0) };
  return [{ code: 150, text: `send ${planned.length} bytes` }, ...(planned.length === 0 ? commit(m) : [])];
}

function commit(m: Model): Expect[] {
  const upload = m.upload;
  if (upload === null) throw new Error('model: commit without an upload');
  m.upload = null;
  m.phase = 'command';
  const failed = takeFailure(m, 'upload-end');
  if (failed !== null) return [failed];
  const digest = sha256(upload.got);
  if (upload.sha !== null && upload.sha !== digest) return [{ code: 451 }];
  const current = m.files.get(upload.name);
  const next = upload.mode === 'append' && current !== undefined ? Buffer.concat([current, upload.got]) : upload.got;
  const used = [...m.files.values()].reduce((n, f) => n + f.length, 0);
  if (used - (current?.length ?? 0) + next.length > QUOTA) return [{ code: 452 }];
  m.files.set(upload.name, next);
  return [{ code: 226, text: `${upload.name} ${next.length} ${digest}` }];
}

function modelLine(m: Model, line: Line): Expect[] {
  if (line.kind === 'too-long') {
    m.phase = 'closed';
    return [{ code: 500, text: 'line too long' }];
  }
  if (line.kind === 'empty') return [];
  if (line.kind === 'invalid-utf8') {
    m.phase = 'command';
    m.decision = null;
    return [{ code: 500 }];
  }
  if (m.phase === 'decision') {
    const pending = m.decision;
    m.decision = null;
    m.phase = 'command';
    if (pending === null || line.kind !== 'decide') return [{ code: 503 }];
    if (line.word === 'CANCEL') return [{ code: 200, text: 'cancelled' }];
    return startUpload(m, pending.name, pending.planned, line.word === 'OVERWRITE' ? 'overwrite' : 'append', pending.sha);
  }
  switch (line.kind) {
    case 'ping':
      return [{ code: 200, text: 'PONG' }];
    case 'help':
      return [{ code: 214 }];
    case 'echo':
      return [{ code: 200, text: line.text }];
    case 'list': {
      const failed = takeFailure(m, 'list');
      if (failed !== null) return [failed];
      const names = [...m.files.keys()].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      return [{ code: 211, text: String(names.length) }, ...names.map((n) => ({ entry: `${n} ${m.files.get(n)?.length}` }))];
    }
    case 'stat':
    case 'get': {
      if (!isGood(line.name)) return [{ code: 553 }];
      const failed = takeFailure(m, line.kind);
      if (failed !== null) return [failed];
      const file = m.files.get(line.name);
      if (file === undefined) return [{ code: 550 }];
      if (line.kind === 'stat') return [{ code: 213, text: `${file.length} ${sha256(file)}` }];
      return [{ code: 150, text: String(file.length) }, ...(file.length > 0 ? [{ data: file }] : []), { code: 226, text: sha256(file) }];
    }
    case 'put': {
      if (!isGood(line.name)) return [{ code: 553 }];
      if (line.size > MAX_FILE_SIZE) return [{ code: 552 }];
      const failed = takeFailure(m, 'put');
      if (failed !== null) return [failed];
      const sha = line.sha === 'none' ? null : line.sha === 'right' ? sha256(putData(line)) : sha256('something else');
      const file = m.files.get(line.name);
      const mode = line.mode ?? 'ask';
      const planned = putData(line);
      if (file === undefined) return startUpload(m, line.name, planned, mode === 'new' ? 'new' : mode === 'append' ? 'append' : 'overwrite', sha);
      if (mode === 'new') return [{ code: 554 }];
      if (mode === 'ask') {
        m.phase = 'decision';
        m.decision = { name: line.name, planned, sha };
        return [{ code: 350, text: `${line.name} exists ${file.length}` }];
      }
      return startUpload(m, line.name, planned, mode, sha);
    }
    case 'decide':
      return [{ code: 503 }];
    case 'quit':
      m.phase = 'closed';
      return [{ code: 221, text: 'bye' }];
    case 'unknown':
      return [{ code: 500 }];
    case 'bad-args':
      return [{ code: 501 }];
  }
}

/** The bytes a data step sends and what the model expects of them. */
function modelData(m: Model, step: Extract<Step, { kind: 'data' }>): { bytes: Buffer; expect: Expect[] } {
  const upload = m.upload;
  if (upload === null) throw new Error('model: data without an upload');
  const remaining = upload.planned.length - upload.got.length;
  const length = step.surplus ? remaining : Math.max(1, Math.ceil(step.fraction * remaining));
  const data = upload.planned.subarray(upload.got.length, upload.got.length + length);
  upload.got = Buffer.concat([upload.got, data]);
  if (upload.got.length < upload.planned.length) return { bytes: data, expect: [] };
  const expect = commit(m);
  // The surplus after the data block is parsed as a request.
  if (!step.surplus) return { bytes: data, expect };
  return { bytes: Buffer.concat([data, Buffer.from('PING\n')]), expect: [...expect, { code: 200, text: 'PONG' }] };
}

// ---------------------------------------------------------------------------
// The commands

function compare(items: ReturnType<ServerOutputReader['push']>, expected: readonly Expect[], what: string): void {
  const show = () => `${what}: expected ${JSON.stringify(expected.map((e) => ('data' in e ? `DATA(${e.data.length})` : e)))}, got ${JSON.stringify(items.map((i) => (i.kind === 'data' ? `DATA(${i.bytes.length})` : i.line)))}`;
  // Data may arrive in several items; join consecutive ones.
  const merged: typeof items = [];
  for (const item of items) {
    const last = merged[merged.length - 1];
    if (item.kind === 'data' && last?.kind === 'data') merged[merged.length - 1] = { kind: 'data', bytes: Buffer.concat([last.bytes, item.bytes]) };
    else merged.push(item);
  }
  if (merged.length !== expected.length) throw new Error(show());
  merged.forEach((item, i) => {
    const want = expected[i];
    if (want === undefined) throw new Error(show());
    if ('code' in want) {
      if (item.kind !== 'reply' || item.code !== want.code || (want.text !== undefined && item.text !== want.text)) throw new Error(show());
    } else if ('entry' in want) {
      if (item.kind !== 'list-entry' || !item.line.startsWith(`${want.entry} `)) throw new Error(show());
    } else if (item.kind !== 'data' || !Buffer.from(item.bytes).equals(want.data)) throw new Error(show());
  });
}

class Send implements fc.Command<Model, Real> {
  constructor(
    readonly step: Step,
    readonly cuts: readonly number[],
  ) {}

  check(m: Readonly<Model>): boolean {
    switch (this.step.kind) {
      case 'line':
        return m.phase === 'command' || m.phase === 'decision';
      case 'data':
        return m.phase === 'receiving';
      case 'fail':
        return m.phase !== 'closed';
    }
  }

  run(m: Model, r: Real): void {
    const step = this.step;
    if (step.kind === 'fail') {
      m.failures.set(step.phase, step.code);
      r.driver.storage.failOnce(step.phase, new StorageError(step.code as ConstructorParameters<typeof StorageError>[0], 'injected'));
      return;
    }
    let bytes: Uint8Array;
    let expected: Expect[];
    if (step.kind === 'line') {
      bytes = Buffer.concat([lineBytes(step.line), Buffer.from(step.crlf ? '\r\n' : '\n')]);
      expected = modelLine(m, step.line);
    } else {
      const data = modelData(m, step);
      bytes = data.bytes;
      expected = data.expect;
    }
    const before = r.driver.output.length;
    for (const chunk of cutAt(bytes, this.cuts)) r.driver.feed(chunk);
    const items = r.driver.output.slice(before).flatMap((out) => r.reader.push(out));
    compare(items, expected, this.toString());
    const session = r.driver.session;
    if (session.isClosed !== (m.phase === 'closed')) throw new Error(`${this}: closed is ${session.isClosed}, the model is ${m.phase}`);
    if (session.isReceivingUpload !== (m.phase === 'receiving')) throw new Error(`${this}: receiving is ${session.isReceivingUpload}, the model is ${m.phase}`);
    const files = r.driver.storage.snapshot();
    const modelFiles = Object.fromEntries([...m.files].map(([n, f]) => [n, latin1(f)]));
    if (JSON.stringify(Object.entries(files).sort()) !== JSON.stringify(Object.entries(modelFiles).sort())) {
      throw new Error(`${this}: files differ: ${JSON.stringify(Object.keys(files))} vs ${JSON.stringify(Object.keys(modelFiles))}`);
    }
  }

  toString(): string {
    const step = this.step;
    if (step.kind === 'line') return `line ${JSON.stringify(Buffer.from(lineBytes(step.line)).toString('latin1').slice(0, 60))}`;
    if (step.kind === 'data') return `data ${step.surplus ? 'rest + PING' : `${(step.fraction * 100).toFixed(0)} % of the rest`}`;
    return `fail next ${step.phase} with ${step.code}`;
  }
}

const nameArb = fc.constantFrom(...GOOD, ...BAD);
const lineArb: fc.Arbitrary<Line> = fc.oneof(
  fc.constant({ kind: 'ping' as const }),
  fc.constant({ kind: 'help' as const }),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map((text) => ({ kind: 'echo' as const, text: text.replace(/[\r\n]/g, '') })),
  fc.constant({ kind: 'echo' as const, text: 'w'.repeat(MAX_LINE_BYTES - 5) }),
  fc.constant({ kind: 'list' as const }),
  fc.record({ kind: fc.constantFrom('stat' as const, 'get' as const), name: nameArb }),
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      name: nameArb,
      size: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: MAX_FILE_SIZE + 20 })),
      mode: fc.constantFrom(null, 'ask' as const, 'new' as const, 'overwrite' as const, 'append' as const),
      sha: fc.constantFrom('none' as const, 'right' as const, 'wrong' as const),
      seed: fc.nat(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('decide' as const), word: fc.constantFrom('OVERWRITE' as const, 'APPEND' as const, 'CANCEL' as const) }) },
  fc.constant({ kind: 'quit' as const }),
  fc.constant({ kind: 'unknown' as const }),
  fc.constantFrom('PING x', 'STAT', 'GET a b', 'PUT a', 'PUT a 1x', 'PUT a 1 mode=later', 'LIST all').map((line) => ({ kind: 'bad-args' as const, line })),
  fc.constant({ kind: 'invalid-utf8' as const }),
  fc.integer({ min: 0, max: 3 }).map((spaces) => ({ kind: 'empty' as const, spaces })),
  fc.integer({ min: MAX_LINE_BYTES + 1, max: MAX_LINE_BYTES + 300 }).map((length) => ({ kind: 'too-long' as const, length })),
);

const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 });
const commandArbs = [
  { weight: 10, arbitrary: fc.tuple(lineArb, fc.boolean(), cuts).map(([line, crlf, c]) => new Send({ kind: 'line', line, crlf }, c)) },
  { weight: 6, arbitrary: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), cuts).map(([fraction, surplus, c]) => new Send({ kind: 'data', fraction, surplus }, c)) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom<[StoragePhase, ErrorCode]>(
        ['list', ErrorCodes.STORAGE_FAILED],
        ['stat', ErrorCodes.NOT_FOUND],
        ['get', ErrorCodes.STORAGE_FAILED],
        ['put', ErrorCodes.STORAGE_FAILED],
        ['upload-start', ErrorCodes.NO_SPACE],
        ['upload-start', ErrorCodes.STORAGE_FAILED],
        ['upload-end', ErrorCodes.NO_SPACE],
        ['upload-end', ErrorCodes.STORAGE_FAILED],
      )
      .map(([phase, code]) => new Send({ kind: 'fail', phase, code }, [])),
  },
];

export function registerModelTest(t: typeof tap, runs: number): void {
  t.test('model-based: the session agrees with a model of PROTOCOL.md on every reply and every file', async (t) => {
    fc.assert(
      fc.property(fc.commands([fc.oneof(...commandArbs)], { maxCommands: 40 }), (commands) => {
        const storage = new MemoryStorage(INITIAL);
        storage.quota = QUOTA;
        const model: Model = {
          phase: 'command',
          files: new Map(Object.entries(INITIAL).map(([n, c]) => [n, Buffer.from(c)])),
          decision: null,
          upload: null,
          failures: new Map(),
        };
        fc.modelRun(() => ({ model, real: { driver: new SessionDriver(storage, { maxFileSize: MAX_FILE_SIZE }), reader: new ServerOutputReader() } }), commands);
      }),
      { numRuns: runs },
    );
    t.pass(`${runs} command sequences`);
  });
}
