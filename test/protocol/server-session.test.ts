import t from 'tap';
import {
  ErrorCodes,
  InvalidStateError,
  Replies,
  ServerSession,
  StorageError,
  type ServerEvent,
  type ServerSessionOptions,
  type Upload,
} from '../../protocol/index.js';
import {
  bytes,
  concat,
  EMPTY_SHA256,
  latin1,
  MemoryStorage,
  normalizeTranscript,
  raw,
  SessionDriver,
  sha256,
  splitOdd,
  thrown,
  transcript,
  utf8,
  type Asserts,
} from './fixtures.js';

const OPTIONS: ServerSessionOptions = { model: 'async', maxFileSize: 64 * 1024 * 1024 };

function session(options: Partial<ServerSessionOptions> = {}): ServerSession {
  return new ServerSession({ ...OPTIONS, ...options });
}

function next(s: ServerSession, input?: string | Uint8Array): ServerEvent {
  if (input !== undefined) s.receive(typeof input === 'string' ? bytes(input) : input);
  return s.nextEvent();
}

/** The reply line of a 'reply' event, without its LF ('' when not a reply). */
function replyLine(event: ServerEvent): string {
  return event.kind === 'reply' ? utf8(event.bytes).replace(/\n$/, '') : `(${event.kind})`;
}

function codeOf(b: Uint8Array): number {
  return Number(utf8(b).slice(0, 3));
}

function expectInvalidState(t: Asserts, fn: () => unknown, what: string): void {
  const error = thrown(fn);
  t.ok(error instanceof InvalidStateError, `${what}: InvalidStateError`);
  t.equal((error as { code?: unknown }).code, ErrorCodes.INVALID_STATE, `${what}: code ${ErrorCodes.INVALID_STATE}`);
}

/** Checks the session still answers PING: a refused call must not break it. */
function stillServes(t: Asserts, s: ServerSession, what: string): void {
  t.equal(replyLine(next(s, 'PING\n')), '200 PONG', `${what}: the session still serves`);
}

// ---------------------------------------------------------------------------
// Simple requests

t.test('greeting', async (t) => {
  const s = session({ model: 'workers' });
  t.equal(latin1(s.greeting()), '220 socklab/1 workers ready\n');
  t.equal(s.lastReplyCode, 220);
  t.equal(s.isIdle, true);
  t.equal(s.isClosed, false);
  t.equal(s.isReceivingUpload, false);
});

t.test('requests the core answers on its own', async (t) => {
  const s = session();
  t.same(next(s), { kind: 'need-bytes' }, 'nothing buffered');
  s.receive(bytes('PING\necho  spaced  \r\nHELP\nECHO\nECHO \nNOPE\nSTAT ../x\nGET\nPUT a 1 mode=zz\nPUT a 999999999999\nOVERWRITE\nAPPEND\ncancel\n'));
  const lines: string[] = [];
  for (;;) {
    const e = s.nextEvent();
    if (e.kind !== 'reply') {
      t.equal(e.kind, 'need-bytes');
      break;
    }
    t.equal(e.close, false, `${replyLine(e)}: connection stays open`);
    t.same(e.bytes, new TextEncoder().encode(`${e.reply.code}${e.reply.text === '' ? '' : ` ${e.reply.text}`}\n`), 'bytes = reply');
    lines.push(replyLine(e));
  }
  const expected = ['200 PONG', '200  spaced  ', '214', '200', '200', '500 unknown command', '553', '501', '501', '552', '503', '503', '503'];
  t.same(normalizeTranscript(lines, expected), expected);
  t.equal(s.lastReplyCode, 503);
  t.equal(s.isIdle, true);
});

t.test('ECHO is byte for byte through the session (CR inside, spaces, UTF-8)', async (t) => {
  const s = session();
  t.equal(latin1((next(s, raw('ECHO a\rb  \r\n')) as { bytes: Uint8Array }).bytes), '200 a\rb  \n');
  t.equal(utf8((next(s, bytes('ECHO  заметки ✓ 𝐀 \n')) as { bytes: Uint8Array }).bytes), '200  заметки ✓ 𝐀 \n');
  t.equal(latin1((next(s, raw('ECHO a\r\r\n')) as { bytes: Uint8Array }).bytes), '200 a\r\n', 'a CR not right before the LF is text');
});

t.test('empty lines get no reply', async (t) => {
  const s = session();
  s.receive(bytes('\n\r\n   \r\n \n\nPING\n'));
  t.equal(replyLine(s.nextEvent()), '200 PONG');
  t.same(s.nextEvent(), { kind: 'need-bytes' });
  t.equal(s.isIdle, true);
});

t.test('a partial line needs more bytes; isIdle and bufferedBytes follow the buffer', async (t) => {
  const s = session();
  t.equal(s.isIdle, true);
  s.receive(bytes('PI'));
  t.equal(s.bufferedBytes, 2);
  t.equal(s.isIdle, false, 'part of a request is buffered');
  t.same(s.nextEvent(), { kind: 'need-bytes' });
  s.receive(bytes('NG\r'));
  t.same(s.nextEvent(), { kind: 'need-bytes' });
  s.receive(bytes('\nPING\n'));
  t.equal(replyLine(s.nextEvent()), '200 PONG');
  t.equal(s.bufferedBytes, 5);
  t.equal(s.isIdle, false, 'a pipelined request is waiting');
  t.equal(replyLine(s.nextEvent()), '200 PONG');
  t.equal(s.bufferedBytes, 0);
  t.equal(s.isIdle, true);
});

// ---------------------------------------------------------------------------
// Storage requests

t.test('LIST', async (t) => {
  const s = session();
  t.same(next(s, 'list\n'), { kind: 'list' });
  t.equal(s.isIdle, false, 'a reply is owed');
  expectInvalidState(t, () => s.nextEvent(), 'nextEvent while a LIST reply is owed');
  const out = s.listReply([
    { name: 'a.txt', size: 3, mtime: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)) },
    { name: 'заметки-1.txt', size: 0, mtime: new Date(Date.UTC(2020, 11, 31, 23, 59, 59)) },
  ]);
  t.equal(utf8(out), '211 2\na.txt 3 2024-01-02T03:04:05.006Z\nзаметки-1.txt 0 2020-12-31T23:59:59.000Z\n');
  t.equal(s.lastReplyCode, 211);
  t.equal(s.isIdle, true);
  t.equal(replyLine(next(s, 'LIST\n')), '(list)');
  t.equal(latin1(s.listReply([])), '211 0\n');
  stillServes(t, s, 'after LIST');
});

t.test('STAT', async (t) => {
  const s = session();
  t.same(next(s, 'STAT notes.txt\n'), { kind: 'stat', name: 'notes.txt' });
  const sha = sha256('hello\n');
  t.equal(latin1(s.statReply(6, sha)), `213 6 ${sha}\n`);
  t.same(next(s, 'STAT nope\n'), { kind: 'stat', name: 'nope' });
  const out = s.storageErrorReply(new StorageError(ErrorCodes.NOT_FOUND, 'gone'), 'nope');
  t.equal(codeOf(out), 550);
  t.equal(s.lastReplyCode, 550);
  stillServes(t, s, 'after STAT');
});

t.test('GET', async (t) => {
  const s = session();
  t.same(next(s, 'GET notes.txt\r\n'), { kind: 'get', name: 'notes.txt' });
  t.equal(latin1(s.getStartReply(6)), '150 6\n');
  t.equal(s.lastReplyCode, 150);
  expectInvalidState(t, () => s.nextEvent(), 'nextEvent in the middle of a GET');
  const sha = sha256('hello\n');
  t.equal(latin1(s.getEndReply(sha)), `226 ${sha}\n`);
  t.equal(s.lastReplyCode, 226);
  expectInvalidState(t, () => s.getEndReply(sha), 'a second 226');
  stillServes(t, s, 'after GET');
});

// ---------------------------------------------------------------------------
// PUT: the file × mode table

function toPut(s: ServerSession, line: string): void {
  const e = next(s, `${line}\n`);
  if (e.kind !== 'put') throw new Error(`expected a put event for ${line}, got ${e.kind}`);
}

t.test('PUT of an absent file: upload-start, whatever the mode', async (t) => {
  const expectedMode = { ask: 'overwrite', new: 'new', overwrite: 'overwrite', append: 'append' } as const;
  for (const mode of ['ask', 'new', 'overwrite', 'append'] as const) {
    const s = session();
    const e = next(s, `PUT f.txt 3 mode=${mode}\n`);
    t.same(e, { kind: 'put', request: { command: 'PUT', name: 'f.txt', size: 3, mode, sha256: null } }, `${mode}: put event`);
    t.equal(s.isIdle, false);
    const answer = s.answerPut(null);
    t.same(answer, { kind: 'upload-start', upload: { name: 'f.txt', size: 3, mode: expectedMode[mode], sha256: null, maxFileSize: OPTIONS.maxFileSize } }, `${mode}: upload-start`);
    if (answer.kind !== 'upload-start') continue;
    t.equal(answer.upload.mode, expectedMode[mode], `${mode}: commits as ${expectedMode[mode]}`);
    expectInvalidState(t, () => s.nextEvent(), `${mode}: nextEvent before acceptUpload`);
    t.equal(latin1(s.acceptUpload(answer.upload)), '150 send 3 bytes\n');
    t.equal(s.isReceivingUpload, true);
    t.equal(s.isIdle, false);
  }
});

t.test('PUT of a present file, mode=new: 554 and nothing else', async (t) => {
  const s = session();
  toPut(s, 'PUT f.txt 3 mode=new');
  const answer = s.answerPut(10);
  t.equal(answer.kind, 'reply');
  if (answer.kind === 'reply') {
    t.equal(latin1(answer.bytes), '554 f.txt exists\n');
    t.same(answer.reply, { code: 554, text: 'f.txt exists' });
  }
  t.equal(s.lastReplyCode, 554);
  t.equal(s.isIdle, true);
  t.equal(replyLine(next(s, 'OVERWRITE\n')), replyLine(next(session(), 'OVERWRITE\n')), 'no decision is pending');
  stillServes(t, s, 'after 554');
});

t.test('PUT of a present file, mode=overwrite or append: upload-start', async (t) => {
  for (const mode of ['overwrite', 'append'] as const) {
    const s = session();
    const sha = sha256('abc');
    toPut(s, `PUT f.txt 3 sha256=${sha} mode=${mode}`);
    const answer = s.answerPut(10);
    t.same(answer, { kind: 'upload-start', upload: { name: 'f.txt', size: 3, mode, sha256: sha, maxFileSize: OPTIONS.maxFileSize } }, mode);
  }
});

t.test('a whole upload: data events, upload-end, 226', async (t) => {
  const s = session();
  toPut(s, 'PUT f.txt 10 mode=overwrite');
  const answer = s.answerPut(null);
  if (answer.kind !== 'upload-start') { t.fail('expected upload-start'); return; }
  t.equal(latin1(s.acceptUpload(answer.upload)), '150 send 10 bytes\n');
  t.same(s.nextEvent(), { kind: 'need-bytes' });
  const first = bytes('QUIT\nPI');
  s.receive(first);
  const d1 = s.nextEvent();
  t.equal(d1.kind, 'upload-data');
  if (d1.kind === 'upload-data') {
    t.equal(latin1(d1.bytes), 'QUIT\nPI', 'command-looking bytes are data');
    t.equal(d1.bytes.buffer, first.buffer, 'not copied');
  }
  t.same(s.nextEvent(), { kind: 'need-bytes' });
  t.equal(s.isReceivingUpload, true);
  t.equal(s.isIdle, false);
  expectInvalidState(t, () => s.finishUpload(answer.upload, 10, EMPTY_SHA256), 'finishUpload before all data');
  expectInvalidState(t, () => s.storageErrorReply(new StorageError(ErrorCodes.NO_SPACE, 'full')), 'storageErrorReply while receiving');
  s.receive(bytes('NG\nPING\n'));
  const d2 = s.nextEvent();
  t.equal(d2.kind === 'upload-data' && latin1(d2.bytes), 'NG\n', 'exactly the remaining bytes');
  const end = s.nextEvent();
  t.same(end, { kind: 'upload-end', upload: answer.upload });
  t.equal(s.isReceivingUpload, false);
  expectInvalidState(t, () => s.nextEvent(), 'nextEvent while the 226 is owed');
  const sha = sha256('QUIT\nPING\n');
  t.equal(latin1(s.finishUpload(answer.upload, 10, sha)), `226 f.txt 10 ${sha}\n`);
  t.equal(s.lastReplyCode, 226);
  t.equal(replyLine(s.nextEvent()), '200 PONG', 'the bytes after the data are commands again');
});

t.test('an upload of 0 bytes ends at once', async (t) => {
  const s = session();
  toPut(s, 'PUT empty 0');
  const answer = s.answerPut(null);
  if (answer.kind !== 'upload-start') { t.fail('expected upload-start'); return; }
  t.equal(latin1(s.acceptUpload(answer.upload)), '150 send 0 bytes\n');
  t.same(s.nextEvent(), { kind: 'upload-end', upload: answer.upload }, 'no data, no need-bytes');
  t.equal(latin1(s.finishUpload(answer.upload, 0, EMPTY_SHA256)), `226 empty 0 ${EMPTY_SHA256}\n`);
  t.same(s.nextEvent(), { kind: 'need-bytes' });
});

// ---------------------------------------------------------------------------
// PUT mode=ask on a present file: 350 and the decision

function toDecision(line = 'PUT f.txt 4'): ServerSession {
  const s = session();
  toPut(s, line);
  const answer = s.answerPut(7);
  if (answer.kind !== 'reply' || answer.reply.code !== 350) throw new Error('expected 350');
  return s;
}

t.test('350 <name> exists <current size>', async (t) => {
  const s = session();
  toPut(s, 'PUT f.txt 4');
  const answer = s.answerPut(7);
  t.equal(answer.kind, 'reply');
  if (answer.kind === 'reply') t.equal(latin1(answer.bytes), '350 f.txt exists 7\n');
  t.equal(s.lastReplyCode, 350);
  t.equal(s.isIdle, true, 'waiting for the client: no reply owed, no upload under way');
  t.equal(s.isReceivingUpload, false);
  expectInvalidState(t, () => s.answerPut(7), 'answerPut twice');
  expectInvalidState(t, () => s.acceptUpload({ name: 'f.txt', size: 4, mode: 'overwrite', sha256: null, maxFileSize: 100 }), 'acceptUpload before a decision');
  t.same(s.nextEvent(), { kind: 'need-bytes' });
});

t.test('350 → OVERWRITE / APPEND (any case) → upload-start with the PUT\'s size and sha256', async (t) => {
  const sha = sha256('abcd');
  for (const [word, mode] of [
    ['OVERWRITE', 'overwrite'],
    ['overwrite', 'overwrite'],
    ['APPEND', 'append'],
    ['Append', 'append'],
    ['  APPEND  ', 'append'],
  ] as const) {
    const s = toDecision(`PUT f.txt 4 sha256=${sha}`);
    const e = next(s, `${word}\r\n`);
    t.same(e, { kind: 'upload-start', upload: { name: 'f.txt', size: 4, mode, sha256: sha, maxFileSize: OPTIONS.maxFileSize } }, JSON.stringify(word));
    if (e.kind !== 'upload-start') continue;
    t.equal(s.isIdle, false);
    t.equal(latin1(s.acceptUpload(e.upload)), '150 send 4 bytes\n');
    const data = next(s, 'abcd');
    t.equal(data.kind === 'upload-data' && latin1(data.bytes), 'abcd');
    t.same(s.nextEvent(), { kind: 'upload-end', upload: e.upload });
    t.equal(codeOf(s.finishUpload(e.upload, 11, sha)), 226);
  }
});

t.test('350 → CANCEL → 200 cancelled', async (t) => {
  for (const word of ['CANCEL', 'cancel']) {
    const s = toDecision();
    t.equal(replyLine(next(s, `${word}\n`)), '200 cancelled');
    t.equal(s.isIdle, true);
    t.equal(codeOf((next(s, 'OVERWRITE\n') as { bytes: Uint8Array }).bytes), 503, 'the PUT is gone');
    stillServes(t, s, 'after CANCEL');
  }
});

t.test('350 → any other line → 503 and the PUT is cancelled', async (t) => {
  for (const line of ['PING', 'LIST', 'QUIT', 'NOPE', 'OVERWRITE now', 'CANCEL please', 'PUT f.txt 4', 'ECHO x', 'STAT ../x', 'yes']) {
    const s = toDecision();
    const e = next(s, `${line}\n`);
    t.equal(e.kind, 'reply', line);
    if (e.kind !== 'reply') continue;
    t.equal(e.reply.code, 503, `${JSON.stringify(line)} → 503`);
    t.equal(e.reply.text, 'expected OVERWRITE, APPEND or CANCEL', `${JSON.stringify(line)}: the 503 says what was expected`);
    t.equal(e.close, false);
    t.equal(s.isClosed, false, `${JSON.stringify(line)}: not acted on (no QUIT)`);
    t.equal(codeOf((next(s, 'APPEND\n') as { bytes: Uint8Array }).bytes), 503, `${JSON.stringify(line)}: then no PUT is pending`);
    stillServes(t, s, line);
  }
});

t.test('350 → empty lines are ignored while the decision is pending', async (t) => {
  const s = toDecision();
  t.same(next(s, '\r\n   \n'), { kind: 'need-bytes' });
  t.equal(next(s, 'APPEND\n').kind, 'upload-start');
});

t.test('350 → invalid UTF-8 gets a 5xx and cancels the PUT', async (t) => {
  const s = toDecision();
  const e = next(s, raw('OVER\xffWRITE\n'));
  t.equal(e.kind, 'reply');
  if (e.kind === 'reply') {
    t.ok(e.reply.code === 500 || e.reply.code === 503, `reply ${e.reply.code}`);
    t.equal(e.close, false);
  }
  t.equal(codeOf((next(s, 'OVERWRITE\n') as { bytes: Uint8Array }).bytes), 503, 'no PUT is pending any more');
});

t.test('350 → a line too long closes', async (t) => {
  const s = toDecision();
  const e = next(s, 'A'.repeat(2000));
  t.equal(replyLine(e), '500 line too long');
  t.equal(e.kind === 'reply' && e.close, true);
  t.equal(s.isClosed, true);
});

t.test('OVERWRITE, APPEND, CANCEL with no PUT pending: 503', async (t) => {
  const s = session();
  for (const word of ['OVERWRITE', 'APPEND', 'CANCEL', 'cancel']) {
    const e = next(s, `${word}\n`);
    t.equal(e.kind === 'reply' && e.reply.code, 503, word);
    t.equal(e.kind === 'reply' && e.reply.text, `${word.toUpperCase()} without a pending PUT`, `${word}: the 503 says why`);
    t.equal(e.kind === 'reply' && e.close, false);
  }
  // Also right after a finished upload and after a 554.
  toPut(s, 'PUT a 0');
  const a = s.answerPut(null);
  if (a.kind !== 'upload-start') { t.fail('expected upload-start'); return; }
  s.acceptUpload(a.upload);
  t.equal(s.nextEvent().kind, 'upload-end');
  s.finishUpload(a.upload, 0, EMPTY_SHA256);
  t.equal(codeOf((next(s, 'OVERWRITE\n') as { bytes: Uint8Array }).bytes), 503, 'after 226');
  stillServes(t, s, 'after 503s');
});

// ---------------------------------------------------------------------------
// Closing, errors on the wire

t.test('QUIT: 221 bye, close, then the session is closed', async (t) => {
  const s = session();
  const e = next(s, 'quit\nPING\n');
  t.same(replyLine(e), '221 bye');
  t.equal(e.kind === 'reply' && e.close, true);
  t.equal(s.isClosed, true);
  t.equal(s.isIdle, false);
  t.equal(s.lastReplyCode, 221);
  expectInvalidState(t, () => s.nextEvent(), 'nextEvent after QUIT');
  expectInvalidState(t, () => s.listReply([]), 'listReply after QUIT');
});

t.test('a line too long: 500 line too long, then close', async (t) => {
  const s = session();
  const e = next(s, `PING\n${'x'.repeat(1025)}\nPING\n`);
  t.equal(replyLine(e), '200 PONG');
  const e2 = s.nextEvent();
  t.equal(replyLine(e2), '500 line too long');
  t.equal(e2.kind === 'reply' && e2.close, true);
  t.equal(s.isClosed, true);
  expectInvalidState(t, () => s.nextEvent(), 'nextEvent after close');

  const fits = session();
  t.equal(replyLine(next(fits, `ECHO ${'x'.repeat(1019)}\r\n`)), `200 ${'x'.repeat(1019)}`, '1024 bytes + CR LF is fine');

  const noLf = session();
  const e3 = next(noLf, 'y'.repeat(1026));
  t.equal(replyLine(e3), '500 line too long', 'detected without waiting for a LF');
  t.equal(noLf.isClosed, true);
});

t.test('maxLineBytes is an option', async (t) => {
  const s = session({ maxLineBytes: 10 });
  t.equal(replyLine(next(s, 'ECHO 12345\n')), '200 12345', '10 bytes');
  t.equal(replyLine(next(s, 'ECHO 123456\n')), '500 line too long', '11 bytes');
  t.equal(s.isClosed, true);
  // Upload data is not lines: no cap applies to it.
  const u = session({ maxLineBytes: 10 });
  toPut(u, 'PUT a 100');
  const a = u.answerPut(null);
  if (a.kind !== 'upload-start') { t.fail('expected upload-start'); return; }
  u.acceptUpload(a.upload);
  const d = next(u, 'z'.repeat(100));
  t.equal(d.kind === 'upload-data' && d.bytes.length, 100);
});

t.test('invalid UTF-8: 500, and the session goes on', async (t) => {
  const s = session();
  for (const bad of [
    '\xff',
    'ECHO \xfe\xff',
    'ECHO \xc0\xaf', // overlong "/"
    'ECHO \xed\xa0\x80', // UTF-16 surrogate
    'ECHO \xe2\x82', // truncated at the end of the line
    'STAT \xe2\x82\xac\x80', // stray continuation byte
    'ECHO \xf4\x90\x80\x80', // above U+10FFFF
  ]) {
    const e = next(s, raw(`${bad}\n`));
    t.equal(e.kind === 'reply' && e.reply.code, 500, JSON.stringify(bad));
    t.equal(e.kind === 'reply' && e.close, false);
    t.equal(s.isClosed, false);
  }
  stillServes(t, s, 'after invalid UTF-8');
});

t.test('a UTF-8 byte order mark is not silently dropped from a request line', async (t) => {
  // The line is U+FEFF "PING": not the PING command.
  const s = session();
  const e = next(s, raw('\xef\xbb\xbfPING\n'));
  t.equal(e.kind === 'reply' && e.reply.code, 500, 'BOM + PING is not PING');
  const e2 = next(s, raw('\xef\xbb\xbfECHO x\n'));
  t.not(replyLine(e2), '200 x', 'BOM + ECHO is not ECHO');
});

t.test('closeReply ends the session from the server side', async (t) => {
  for (const [r, line] of [
    [Replies.idleTimeout(), '421 idle timeout'],
    [Replies.shuttingDown(), '421 shutting down'],
    [Replies.tooManyConnections(), '421 too many connections'],
  ] as const) {
    const s = session();
    t.equal(latin1(s.closeReply(r)), `${line}\n`);
    t.equal(s.isClosed, true);
    t.equal(s.lastReplyCode, 421);
    expectInvalidState(t, () => s.nextEvent(), `nextEvent after ${line}`);
  }
  // Even in the middle of an upload (idle timeout mid-data).
  const u = session();
  toPut(u, 'PUT a 5');
  const a = u.answerPut(null);
  if (a.kind === 'upload-start') u.acceptUpload(a.upload);
  next(u, 'ab');
  t.equal(latin1(u.closeReply(Replies.idleTimeout())), '421 idle timeout\n');
  t.equal(u.isClosed, true);
  t.equal(u.isReceivingUpload, false);
});

// ---------------------------------------------------------------------------
// Reply methods called out of turn

t.test('InvalidStateError when a server calls a reply method out of turn', async (t) => {
  const upload: Upload = { name: 'a', size: 1, mode: 'overwrite', sha256: null, maxFileSize: 100 };
  const err = new StorageError(ErrorCodes.STORAGE_FAILED, 'x');
  const all: Array<[string, (s: ServerSession) => unknown]> = [
    ['listReply', (s) => s.listReply([])],
    ['statReply', (s) => s.statReply(1, EMPTY_SHA256)],
    ['getStartReply', (s) => s.getStartReply(1)],
    ['getEndReply', (s) => s.getEndReply(EMPTY_SHA256)],
    ['answerPut', (s) => s.answerPut(null)],
    ['acceptUpload', (s) => s.acceptUpload(upload)],
    ['finishUpload', (s) => s.finishUpload(upload, 1, EMPTY_SHA256)],
    ['storageErrorReply', (s) => s.storageErrorReply(err, 'a')],
  ];
  const states: Array<[string, () => ServerSession, readonly string[]]> = [
    ['command', () => session(), []],
    ['owes list', () => { const s = session(); next(s, 'LIST\n'); return s; }, ['listReply', 'storageErrorReply']],
    ['owes stat', () => { const s = session(); next(s, 'STAT a\n'); return s; }, ['statReply', 'storageErrorReply']],
    ['owes get', () => { const s = session(); next(s, 'GET a\n'); return s; }, ['getStartReply', 'storageErrorReply']],
    // After `150 <size>` only the data and the `226` may follow: a failure mid-GET can only drop the connection.
    ['get started', () => { const s = session(); next(s, 'GET a\n'); s.getStartReply(1); return s; }, ['getEndReply']],
    ['owes put', () => { const s = session(); toPut(s, 'PUT a 1'); return s; }, ['answerPut', 'storageErrorReply']],
    ['owes upload-start', () => { const s = session(); toPut(s, 'PUT a 1'); s.answerPut(null); return s; }, ['acceptUpload', 'storageErrorReply']],
    ['receiving', () => { const s = session(); toPut(s, 'PUT a 1'); s.answerPut(null); s.acceptUpload(upload); return s; }, []],
    ['owes upload-end', () => { const s = session(); toPut(s, 'PUT a 1'); s.answerPut(null); s.acceptUpload(upload); next(s, 'x'); s.nextEvent(); return s; }, ['finishUpload', 'storageErrorReply']],
    ['decision', () => toDecision(), []],
    ['closed', () => { const s = session(); next(s, 'QUIT\n'); return s; }, []],
  ];
  for (const [stateName, make, allowed] of states) {
    for (const [method, call] of all) {
      if (allowed.includes(method)) {
        const s = make();
        const error = thrown(() => call(s));
        t.notOk(error instanceof InvalidStateError, `${stateName}: ${method} is allowed`);
        continue;
      }
      const s = make();
      expectInvalidState(t, () => call(s), `${stateName}: ${method}`);
      // A refused call changes nothing.
      const fresh = make();
      t.equal(s.isClosed, fresh.isClosed, `${stateName}: ${method} left the session as it was (closed)`);
      t.equal(s.isReceivingUpload, fresh.isReceivingUpload, `${stateName}: ${method} left the session as it was (receiving)`);
      t.equal(s.isIdle, fresh.isIdle, `${stateName}: ${method} left the session as it was (idle)`);
    }
  }
});

t.test('nextEvent while a reply is owed, or after close, is InvalidStateError', async (t) => {
  for (const line of ['LIST', 'STAT a', 'GET a', 'PUT a 1']) {
    const s = session();
    next(s, `${line}\nPING\n`);
    expectInvalidState(t, () => s.nextEvent(), `after ${line}`);
  }
});

// ---------------------------------------------------------------------------
// storageErrorReply: each StorageError code, in each phase

type Phase = 'list' | 'stat' | 'get' | 'put' | 'upload-start' | 'upload-end';
function inPhase(phase: Phase): ServerSession {
  const s = session();
  switch (phase) {
    case 'list':
      next(s, 'LIST\n');
      break;
    case 'stat':
      next(s, 'STAT a\n');
      break;
    case 'get':
      next(s, 'GET a\n');
      break;
    case 'put':
      toPut(s, 'PUT a 1 mode=new');
      break;
    case 'upload-start':
      toPut(s, 'PUT a 1 mode=new');
      s.answerPut(null);
      break;
    case 'upload-end': {
      toPut(s, 'PUT a 1 mode=new');
      const a = s.answerPut(null);
      if (a.kind === 'upload-start') s.acceptUpload(a.upload);
      next(s, 'x');
      if (s.nextEvent().kind !== 'upload-end') throw new Error('expected upload-end');
      break;
    }
  }
  return s;
}

t.test('storageErrorReply maps each code by phase', async (t) => {
  const codes = [
    ErrorCodes.NOT_FOUND,
    ErrorCodes.EXISTS,
    ErrorCodes.CHECKSUM_MISMATCH,
    ErrorCodes.NO_SPACE,
    ErrorCodes.STORAGE_FAILED,
    ErrorCodes.BAD_NAME,
    ErrorCodes.TOO_LARGE,
  ] as const;
  // Before the 150 a lookup failure is a lookup reply; after the 150 only
  // 226/451/452 may follow the data (PROTOCOL.md, Upload).
  const expected: Record<Phase, Record<(typeof codes)[number], number>> = {
    list: { SOCKLAB_NOT_FOUND: 550, SOCKLAB_EXISTS: 554, SOCKLAB_CHECKSUM_MISMATCH: 451, SOCKLAB_NO_SPACE: 451, SOCKLAB_STORAGE_FAILED: 451, SOCKLAB_BAD_NAME: 553, SOCKLAB_TOO_LARGE: 552 },
    stat: { SOCKLAB_NOT_FOUND: 550, SOCKLAB_EXISTS: 554, SOCKLAB_CHECKSUM_MISMATCH: 451, SOCKLAB_NO_SPACE: 451, SOCKLAB_STORAGE_FAILED: 451, SOCKLAB_BAD_NAME: 553, SOCKLAB_TOO_LARGE: 552 },
    get: { SOCKLAB_NOT_FOUND: 550, SOCKLAB_EXISTS: 554, SOCKLAB_CHECKSUM_MISMATCH: 451, SOCKLAB_NO_SPACE: 451, SOCKLAB_STORAGE_FAILED: 451, SOCKLAB_BAD_NAME: 553, SOCKLAB_TOO_LARGE: 552 },
    put: { SOCKLAB_NOT_FOUND: 550, SOCKLAB_EXISTS: 554, SOCKLAB_CHECKSUM_MISMATCH: 451, SOCKLAB_NO_SPACE: 451, SOCKLAB_STORAGE_FAILED: 451, SOCKLAB_BAD_NAME: 553, SOCKLAB_TOO_LARGE: 552 },
    // Still before the 150: a mode=new upload that finds the file present is the table's 554.
    'upload-start': { SOCKLAB_NOT_FOUND: 451, SOCKLAB_EXISTS: 554, SOCKLAB_CHECKSUM_MISMATCH: 451, SOCKLAB_NO_SPACE: 452, SOCKLAB_STORAGE_FAILED: 451, SOCKLAB_BAD_NAME: 553, SOCKLAB_TOO_LARGE: 552 },
    // After the 150 and the data: 451 or 452, nothing else.
    'upload-end': { SOCKLAB_NOT_FOUND: 451, SOCKLAB_EXISTS: 451, SOCKLAB_CHECKSUM_MISMATCH: 451, SOCKLAB_NO_SPACE: 452, SOCKLAB_STORAGE_FAILED: 451, SOCKLAB_BAD_NAME: 451, SOCKLAB_TOO_LARGE: 452 },
  };
  for (const phase of Object.keys(expected) as Phase[]) {
    for (const code of codes) {
      const s = inPhase(phase);
      const out = s.storageErrorReply(new StorageError(code, 'the reason'), 'a');
      t.equal(codeOf(out), expected[phase][code], `${phase} × ${code}`);
      t.equal(s.lastReplyCode, codeOf(out), `${phase} × ${code}: lastReplyCode`);
      t.match(utf8(out), /^[0-9]{3}( [^\n]*)?\n$/, `${phase} × ${code}: one reply line`);
      t.equal(s.isIdle, true, `${phase} × ${code}: back to commands`);
      stillServes(t, s, `${phase} × ${code}`);
    }
  }
});

t.test('storageErrorReply names the file in 550; 554 and 552 carry the storage\'s reason', async (t) => {
  const s = inPhase('stat');
  t.match(utf8(s.storageErrorReply(new StorageError(ErrorCodes.NOT_FOUND, 'x'), 'notes.txt')), /^550 .*notes\.txt/);
  const p = inPhase('put');
  t.equal(utf8(p.storageErrorReply(new StorageError(ErrorCodes.EXISTS, 'a exists and is not a regular file'), 'a')), '554 a exists and is not a regular file\n');
  const u = inPhase('upload-start');
  t.equal(utf8(u.storageErrorReply(new StorageError(ErrorCodes.TOO_LARGE, 'too large: a would pass the size limit (9 bytes)'))), '552 too large: a would pass the size limit (9 bytes)\n');
});

// ---------------------------------------------------------------------------
// Whole conversations, and the same bytes split at every position

interface Conversation {
  readonly name: string;
  readonly input: Uint8Array;
  readonly initial: Record<string, string>;
  readonly options?: Partial<ServerSessionOptions>;
  readonly quota?: number;
  /** The whole-feed transcript (see fixtures.transcript). */
  readonly expected: readonly string[];
  readonly files?: Record<string, string>;
  readonly closed?: boolean;
  readonly receiving?: boolean;
}

const INITIAL = { 'notes.txt': 'hello\n', 'b.bin': 'BB' };
const NOTES = sha256('hello\n');
const T0 = '2024-01-02T03:04:00.000Z';
const T1 = '2024-01-02T03:04:01.000Z';
const TW = '2024-06-06T07:08:09.000Z';

const pipelined = [
  'PING',
  'ECHO hello  world ',
  'HELP',
  'LIST',
  'STAT notes.txt',
  'GET notes.txt',
  'STAT nope.txt',
  'GET nope.txt',
  'NOPE',
  'STAT ../x',
  'PUT a 1 mode=bogus',
  'OVERWRITE',
  '',
  'PING',
];
const pipelinedReplies = [
  '200 PONG',
  '200 hello  world ',
  '214',
  '211 2',
  `b.bin 2 ${T1}`,
  `notes.txt 6 ${T0}`,
  `213 6 ${NOTES}`,
  '150 6',
  'DATA hello\n',
  `226 ${NOTES}`,
  '550',
  '550',
  '500 unknown command',
  '553',
  '501',
  '503',
  '200 PONG',
];

const conversations: Conversation[] = [
  {
    name: 'pipelined requests, LF',
    input: bytes(pipelined.map((l) => `${l}\n`).join('')),
    initial: INITIAL,
    expected: pipelinedReplies,
  },
  {
    name: 'pipelined requests, CRLF, blank lines, a lone CR',
    input: bytes(`\r\n   \r\n${pipelined.map((l) => `${l}\r\n`).join('')}ECHO a\rb\r\n`),
    initial: INITIAL,
    expected: [...pipelinedReplies, '200 a\rb'],
  },
  {
    name: 'PUT, its data block (with LF and CR inside), more commands',
    input: bytes(
      'PUT new.txt 5\r\na\nb\r\nPING\nSTAT new.txt\nPUT notes.txt 3 mode=append\nxyzGET notes.txt\n' +
        'PUT notes.txt 2 mode=new\nPUT empty 0\nLIST\nQUIT\nPING\n',
    ),
    initial: INITIAL,
    expected: [
      '150 send 5 bytes',
      `226 new.txt 5 ${sha256('a\nb\r\n')}`,
      '200 PONG',
      `213 5 ${sha256('a\nb\r\n')}`,
      '150 send 3 bytes',
      `226 notes.txt 9 ${sha256('xyz')}`,
      '150 9',
      'DATA hello\nxyz',
      `226 ${sha256('hello\nxyz')}`,
      '554 notes.txt exists',
      '150 send 0 bytes',
      `226 empty 0 ${EMPTY_SHA256}`,
      '211 4',
      `b.bin 2 ${T1}`,
      `empty 0 ${TW}`,
      `new.txt 5 ${TW}`,
      `notes.txt 9 ${TW}`,
      '221 bye',
    ],
    files: { 'notes.txt': 'hello\nxyz', 'b.bin': 'BB', 'new.txt': 'a\nb\r\n', empty: '' },
    closed: true,
  },
  {
    name: '350 decisions: APPEND, other line, cancel, stray OVERWRITE, overwrite, checksums',
    input: bytes(
      'PUT notes.txt 4\nAPPEND\nwxyzPUT notes.txt 2\nfoo\nPUT notes.txt 2\ncancel\nOVERWRITE\n' +
        'PUT notes.txt 2 mode=ask\noverwrite\nokSTAT notes.txt\nPUT notes.txt 1\n\n  \nCANCEL extra\nAPPEND\n' +
        `PUT notes.txt 3 sha256=${sha256('abc')}\nappend\nabdPUT b.bin 3 mode=overwrite sha256=${sha256('abc')}\nabc`,
    ),
    initial: INITIAL,
    expected: [
      '350 notes.txt exists 6',
      '150 send 4 bytes',
      `226 notes.txt 10 ${sha256('wxyz')}`,
      '350 notes.txt exists 10',
      '503',
      '350 notes.txt exists 10',
      '200 cancelled',
      '503',
      '350 notes.txt exists 10',
      '150 send 2 bytes',
      `226 notes.txt 2 ${sha256('ok')}`,
      `213 2 ${sha256('ok')}`,
      '350 notes.txt exists 2',
      '503',
      '503',
      '350 notes.txt exists 2',
      '150 send 3 bytes',
      '451',
      '150 send 3 bytes',
      `226 b.bin 3 ${sha256('abc')}`,
    ],
    files: { 'notes.txt': 'ok', 'b.bin': 'abc' },
  },
  {
    name: 'multi-byte UTF-8 (2-, 3- and 4-byte characters) and invalid UTF-8',
    input: concat([
      bytes('ECHO заметки ✓ 𝐀\nPUT заметки-1.txt 8\n𝐀𝐀STAT заметки-1.txt\nGET заметки-1.txt\nSTAT a/b\n'),
      raw('ECHO \xff\xfe\nECHO \xe2\x82\nECHO \xed\xa0\x80\nSTAT \xc0\xaf\n'),
      bytes('ECHO ✓\n'),
    ]),
    initial: INITIAL,
    expected: [
      '200 заметки ✓ 𝐀',
      '150 send 8 bytes',
      `226 заметки-1.txt 8 ${sha256('𝐀𝐀')}`,
      `213 8 ${sha256('𝐀𝐀')}`,
      '150 8',
      'DATA 𝐀𝐀',
      `226 ${sha256('𝐀𝐀')}`,
      '553',
      '500',
      '500',
      '500',
      '500',
      '200 ✓',
    ],
    files: { ...INITIAL, 'заметки-1.txt': latin1(bytes('𝐀𝐀')) },
  },
  {
    name: 'an over-long line after lines of exactly the limit',
    input: bytes(`PING\r\nECHO ${'x'.repeat(1019)}\r\nECHO ${'я'.repeat(509)}\n${'y'.repeat(1030)}\nPING\n`),
    initial: INITIAL,
    expected: ['200 PONG', `200 ${'x'.repeat(1019)}`, `200 ${'я'.repeat(509)}`, '500 line too long'],
    closed: true,
  },
  {
    name: 'an over-long line of multi-byte characters and no LF at all',
    input: bytes(`ECHO ok\n${'я'.repeat(600)}`),
    initial: INITIAL,
    expected: ['200 ok', '500 line too long'],
    closed: true,
  },
  {
    name: '552 before any data, an upload at the limit, an upload still under way',
    input: bytes(`PUT big 101\nPUT big 100 mode=new\n${'z'.repeat(100)}PUT q 5\nab`),
    initial: {},
    options: { maxFileSize: 100 },
    expected: ['552', '150 send 100 bytes', `226 big 100 ${sha256('z'.repeat(100))}`, '150 send 5 bytes'],
    files: { big: 'z'.repeat(100) },
    receiving: true,
  },
  {
    name: 'out of space: 452 after the data, then the session goes on',
    input: bytes('PUT c 3\nabcPUT notes.txt 2 mode=overwrite\nokPING\n'),
    initial: INITIAL,
    quota: 10,
    expected: ['150 send 3 bytes', '452', '150 send 2 bytes', `226 notes.txt 2 ${sha256('ok')}`, '200 PONG'],
    files: { 'notes.txt': 'ok', 'b.bin': 'BB' },
  },
];

function run(c: Conversation, chunks: readonly Uint8Array[]): SessionDriver {
  const storage = new MemoryStorage(c.initial);
  if (c.quota !== undefined) storage.quota = c.quota;
  const driver = new SessionDriver(storage, c.options);
  for (const chunk of chunks) driver.feed(chunk);
  return driver;
}

interface Outcome {
  readonly written: string;
  readonly files: Record<string, string>;
  readonly closed: boolean;
  readonly receiving: boolean;
  readonly idle: boolean;
}

function outcome(d: SessionDriver): Outcome {
  return {
    written: latin1(d.written),
    files: d.storage.snapshot(),
    closed: d.session.isClosed,
    receiving: d.session.isReceivingUpload,
    idle: d.session.isIdle,
  };
}

t.test('whole conversations give the replies PROTOCOL.md prescribes', async (t) => {
  for (const c of conversations) {
    const d = run(c, [c.input]);
    const lines = transcript(d.written);
    t.same(normalizeTranscript(lines, c.expected), c.expected, c.name);
    t.same(d.storage.snapshot(), c.files ?? c.initial, `${c.name}: files`);
    t.equal(d.session.isClosed, c.closed ?? false, `${c.name}: closed`);
    t.equal(d.session.isReceivingUpload, c.receiving ?? false, `${c.name}: receiving`);
  }
});

t.test('the same bytes split at every position give the same reply bytes', async (t) => {
  for (const c of conversations) {
    const whole = outcome(run(c, [c.input]));
    const mismatches: number[] = [];
    for (let at = 0; at <= c.input.length; at++) {
      // Copies: nothing may depend on the split halves sharing one buffer.
      const got = outcome(run(c, [c.input.slice(0, at), c.input.slice(at)]));
      if (JSON.stringify(got) !== JSON.stringify(whole)) mismatches.push(at);
    }
    t.same(mismatches, [], `${c.name}: ${c.input.length + 1} two-chunk splits`);
  }
});

t.test('the same bytes one byte at a time, and in odd chunk sizes', async (t) => {
  for (const c of conversations) {
    const whole = outcome(run(c, [c.input]));
    const single = Array.from(c.input, (b) => Uint8Array.of(b));
    t.same(outcome(run(c, single)), whole, `${c.name}: one byte at a time`);
    t.same(outcome(run(c, splitOdd(c.input))), whole, `${c.name}: odd chunk sizes`);
    t.same(outcome(run(c, splitOdd(c.input, [2, 9, 4]))), whole, `${c.name}: other odd chunk sizes`);
  }
});

t.test('split every position: three chunks around every pair of positions (small input)', async (t) => {
  const c = conversations[3];
  if (c === undefined) { t.fail('missing conversation'); return; }
  const input = c.input.subarray(0, 60);
  const small: Conversation = { ...c, input };
  const whole = outcome(run(small, [input]));
  const mismatches: string[] = [];
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) {
      const got = outcome(run(small, [input.slice(0, i), input.slice(i, j), input.slice(j)]));
      if (JSON.stringify(got) !== JSON.stringify(whole)) mismatches.push(`${i},${j}`);
    }
  }
  t.same(mismatches, []);
});
