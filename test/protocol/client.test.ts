import t from 'tap';
import { ConnectionError, ErrorCodes, parseReply, ProtocolError, ReplyError, SocklabClient, SocklabError, type ExistsDecision } from '../../protocol/index.js';
import {
  bytes,
  concat,
  EMPTY_SHA256,
  FakeChannel,
  latin1,
  LoopbackChannel,
  MemoryStorage,
  rejection,
  sha256,
  thrown,
  type Asserts,
} from './fixtures.js';

const GREETING = '220 socklab/1 async ready\r\n';

function client(script: string | Uint8Array, sizes?: readonly number[]): { c: SocklabClient; ch: FakeChannel } {
  const ch = new FakeChannel(script, sizes);
  return { c: new SocklabClient(ch), ch };
}

function isCode(t: Asserts, error: unknown, code: string, what: string): void {
  t.ok(error instanceof SocklabError, `${what}: a SocklabError (${String(error)})`);
  t.equal((error as { code?: unknown }).code, code, `${what}: code ${code}`);
}

function isReplyError(t: Asserts, error: unknown, replyCode: number, what: string): void {
  t.ok(error instanceof ReplyError, `${what}: a ReplyError (${String(error)})`);
  if (!(error instanceof ReplyError)) return;
  t.equal(error.code, ErrorCodes.REPLY_ERROR, `${what}: code`);
  t.equal(error.reply.code, replyCode, `${what}: carries the ${replyCode} reply`);
}

/** An iterable that counts how many chunks were pulled from it. */
function counted(chunks: readonly string[]): { source: Iterable<Uint8Array>; pulls: () => number } {
  let pulls = 0;
  return {
    source: {
      *[Symbol.iterator]() {
        for (const c of chunks) {
          pulls++;
          yield bytes(c);
        }
      },
    },
    pulls: () => pulls,
  };
}

// ---------------------------------------------------------------------------
// Reply lines

t.test('parseReply', async (t) => {
  t.same(parseReply('200'), { code: 200, text: '' });
  t.same(parseReply('200 PONG'), { code: 200, text: 'PONG' });
  t.same(parseReply('200 '), { code: 200, text: '' });
  t.same(parseReply('200  two'), { code: 200, text: ' two' }, 'text after the first space, as is');
  t.same(parseReply('226 a 5 ' + EMPTY_SHA256), { code: 226, text: `a 5 ${EMPTY_SHA256}` });
  t.same(parseReply('000'), { code: 0, text: '' });
  t.same(parseReply('999 x'), { code: 999, text: 'x' });
  t.same(parseReply('200 заметки ✓'), { code: 200, text: 'заметки ✓' });
  for (const bad of ['', '20', '2000', '20a', 'abc', '200x', ' 200', '200\tPONG', 'PONG', '-200', '２００']) {
    const error = thrown(() => parseReply(bad));
    t.ok(error instanceof ProtocolError, `${JSON.stringify(bad)} is not a reply line`);
    if (error instanceof ProtocolError) t.equal(error.code, ErrorCodes.BAD_SYNTAX);
  }
});

// ---------------------------------------------------------------------------
// Greeting

t.test('greeting: the model from 220 socklab/1 <model> ready', async (t) => {
  for (const model of ['sequential', 'workers', 'async']) {
    const { c, ch } = client(`220 socklab/1 ${model} ready\r\n`);
    const g = await c.greeting();
    t.equal(g.model, model);
    t.same(g.reply, { code: 220, text: `socklab/1 ${model} ready` });
    t.equal(ch.written, '', 'the client sends nothing before the greeting');
  }
  const { c } = client('220 hello there\n');
  t.equal((await c.greeting()).model, 'unknown', 'a 220 of another form still greets');
  const quoting = client('220 welcome, this is not socklab/1 fake\n');
  t.equal((await quoting.c.greeting()).model, 'unknown', 'a model is read only from a greeting that starts with socklab/1');
});

t.test('greeting: a refusal is a ReplyError carrying the reply', async (t) => {
  const { c } = client('421 too many connections\n');
  const error = await rejection(c.greeting());
  isReplyError(t, error, 421, 'greeting');
  if (error instanceof ReplyError) t.equal(error.reply.text, 'too many connections');
  t.equal((error as Error).message, 'the server did not greet: the server answered 421 too many connections', 'the message says what happened, for people');
});

t.test('greeting: the server closes before greeting', async (t) => {
  isCode(t, await rejection(client('').c.greeting()), ErrorCodes.CONNECTION_CLOSED, 'no bytes at all');
  isCode(t, await rejection(client('220 socklab/1 as').c.greeting()), ErrorCodes.CONNECTION_CLOSED, 'half a greeting');
  t.ok((await rejection(client('').c.greeting())) instanceof ConnectionError);
});

// ---------------------------------------------------------------------------
// Simple requests

t.test('ping, echo, help, request', async (t) => {
  const { c, ch } = client(`${GREETING}200 PONG\r\n200  two  spaces \n200\n214 commands: PING\n500 unknown command\n`);
  await c.greeting();
  t.same(await c.ping(), { code: 200, text: 'PONG' });
  t.equal(await c.echo(' two  spaces '), ' two  spaces ', 'echo text comes back byte for byte');
  t.equal(await c.echo(''), '', 'empty echo');
  t.equal(await c.help(), 'commands: PING');
  t.same(await c.request({ command: 'LIST' }), { code: 500, text: 'unknown command' }, 'request returns any code');
  t.equal(ch.written, 'PING\nECHO  two  spaces \nECHO \nHELP\nLIST\n');
});

t.test('an error code is a ReplyError carrying the reply', async (t) => {
  const { c } = client(`${GREETING}500 unknown command\n421 shutting down\n`);
  await c.greeting();
  const e1 = await rejection(c.ping());
  isReplyError(t, e1, 500, 'ping');
  if (e1 instanceof ReplyError) t.same(e1.reply, { code: 500, text: 'unknown command' });
  isReplyError(t, await rejection(c.echo('x')), 421, 'echo');
  const bare = client(`${GREETING}502\n`);
  await bare.c.greeting();
  const e3 = await rejection(bare.c.ping());
  isReplyError(t, e3, 502, 'a reply with a code alone');
  t.equal((e3 as Error).message, 'PING: the server answered 502', 'no trailing text when the reply has none');
});

t.test('malformed replies: MALFORMED_REPLY', async (t) => {
  for (const bad of ['hello\n', '20 x\n', '2000\n', 'PONG 200\n']) {
    const { c } = client(`${GREETING}${bad}`);
    await c.greeting();
    isCode(t, await rejection(c.ping()), ErrorCodes.MALFORMED_REPLY, JSON.stringify(bad));
  }
  const { c } = client(`${GREETING}200 ${'x'.repeat(10_000)}\n`);
  await c.greeting();
  const tooLong = await rejection(c.ping());
  isCode(t, tooLong, ErrorCodes.MALFORMED_REPLY, 'a reply line over 8192 bytes');
  // The CLI prints these messages as they are: they say what came, within one line.
  t.equal((tooLong as Error).message, 'the server sent something that is not socklab protocol (a reply line is longer than 8192 bytes)');
  const web = client(`HTTP/1.1 400 Bad Request\r\n`);
  t.equal(((await rejection(web.c.greeting())) as Error).message, 'the server sent something that is not socklab protocol (not a reply line: "HTTP/1.1 400 Bad Request")');
  const noise = client(`${'z'.repeat(200)}\n`);
  t.equal(((await rejection(noise.c.greeting())) as Error).message, `the server sent something that is not socklab protocol (not a reply line: "${'z'.repeat(80)}")`, 'a long line is quoted up to 80 characters');
});

t.test('the server closes mid-reply: CONNECTION_CLOSED, and it stays closed', async (t) => {
  const { c, ch } = client(`${GREETING}200 PO`);
  await c.greeting();
  const error = await rejection(c.ping());
  isCode(t, error, ErrorCodes.CONNECTION_CLOSED, 'ping');
  t.ok(error instanceof ConnectionError);
  const reads = ch.reads;
  isCode(t, await rejection(c.ping()), ErrorCodes.CONNECTION_CLOSED, 'the next request');
  t.equal(ch.reads, reads, 'no read after the end was seen');
});

t.test('quit: 221, then the channel is closed', async (t) => {
  const { c, ch } = client(`${GREETING}221 bye\n`);
  await c.greeting();
  await c.quit();
  t.equal(ch.written, 'QUIT\n');
  t.equal(ch.closed, true);
  const other = client(GREETING);
  await other.c.greeting();
  isCode(t, await rejection(other.c.quit()), ErrorCodes.CONNECTION_CLOSED, 'quit without a reply');
  t.equal(other.ch.closed, true, 'closed anyway');
});

// ---------------------------------------------------------------------------
// LIST, STAT

t.test('list parses "<name> <size> <mtime>" lines and ignores further fields', async (t) => {
  const { c, ch } = client(
    `${GREETING}211 3\r\na.txt 5 2024-01-02T03:04:05.000Z\nb 0 2020-12-31T23:59:59.999Z extra fields\r\nзаметки-1.txt 12 2024-06-06T07:08:09.000Z\n211 0\n`,
  );
  await c.greeting();
  const files = await c.list();
  t.same(
    files.map((f) => [f.name, f.size, f.mtime.toISOString()]),
    [
      ['a.txt', 5, '2024-01-02T03:04:05.000Z'],
      ['b', 0, '2020-12-31T23:59:59.999Z'],
      ['заметки-1.txt', 12, '2024-06-06T07:08:09.000Z'],
    ],
  );
  t.same(await c.list(), [], 'an empty list');
  t.equal(ch.written, 'LIST\nLIST\n');
});

t.test('list: a count of several digits', async (t) => {
  const names = Array.from({ length: 12 }, (_, i) => `file-${i}.txt`);
  const { c } = client(`${GREETING}211 12\n${names.map((name, i) => `${name} ${i} 2024-01-02T03:04:05.000Z\n`).join('')}200 PONG\n`);
  await c.greeting();
  t.same((await c.list()).map((f) => f.name), names, 'all twelve files');
  t.same(await c.ping(), { code: 200, text: 'PONG' }, 'and the next reply is read as the next reply');
});

t.test('list: malformed header or line', async (t) => {
  for (const [script, what] of [
    ['211 x\n', 'count not a number'],
    ['211 -1\n', 'negative count'],
    ['211 1\na.txt five 2024-01-02T03:04:05.000Z\n', 'size not a number'],
    ['211 1\na.txt 5\n', 'mtime missing'],
    ['211 1\na.txt 5x 2024-01-02T03:04:05.000Z\n', 'size with a suffix'],
    ['211 1\na.txt x5 2024-01-02T03:04:05.000Z\n', 'size with a prefix'],
    ['211 1\na.txt\n', 'a name alone'],
  ]) {
    const { c } = client(`${GREETING}${script}`);
    await c.greeting();
    const error = await rejection(c.list());
    isCode(t, error, ErrorCodes.MALFORMED_REPLY, what ?? '');
    t.match((error as Error).message, /^the server sent something that is not socklab protocol \(.+\)$/, `${what}: the message says what was wrong`);
  }
  const badCount = client(`${GREETING}211 lots\n`);
  await badCount.c.greeting();
  t.match((await rejection(badCount.c.list())) as Error, { message: /LIST count "lots"/ }, 'the bad count is quoted');
  const { c } = client(`${GREETING}211 2\na 1 2024-01-02T03:04:05.000Z\n`);
  await c.greeting();
  isCode(t, await rejection(c.list()), ErrorCodes.CONNECTION_CLOSED, 'fewer lines than announced, then EOF');
  const refused = client(`${GREETING}500 unknown command\n`);
  await refused.c.greeting();
  isReplyError(t, await rejection(refused.c.list()), 500, 'list refused');
});

t.test('stat: digest, null on 550, ReplyError otherwise', async (t) => {
  const sha = sha256('hello\n');
  const { c, ch } = client(`${GREETING}213 6 ${sha}\n550 nope.txt: no such file\n553 bad name\n213 6 NOTHEX\n`);
  await c.greeting();
  t.same(await c.stat('notes.txt'), { size: 6, sha256: sha });
  t.equal(await c.stat('nope.txt'), null);
  const refused = await rejection(c.stat('.x'));
  isReplyError(t, refused, 553, 'bad name');
  t.equal((refused as Error).message, 'STAT .x: the server answered 553 bad name', 'the message names the request and the reply');
  isCode(t, await rejection(c.stat('notes.txt')), ErrorCodes.MALFORMED_REPLY, 'bad sha256 in 213');
  t.equal(ch.written, 'STAT notes.txt\nSTAT nope.txt\nSTAT .x\nSTAT notes.txt\n');
});

t.test('stat: a size of several digits; a 213 that is not "<size> <sha256>" is MALFORMED_REPLY', async (t) => {
  const sha = sha256('hello\n');
  const big = client(`${GREETING}213 1234567 ${sha}\n`);
  await big.c.greeting();
  t.same(await big.c.stat('big.bin'), { size: 1234567, sha256: sha });
  for (const bad of [`213 6x ${sha}`, `213 x6 ${sha}`, `213 -6 ${sha}`, '213 6', '213', `213 ${sha}`]) {
    const { c } = client(`${GREETING}${bad}\n`);
    await c.greeting();
    const error = await rejection(c.stat('a'));
    isCode(t, error, ErrorCodes.MALFORMED_REPLY, JSON.stringify(bad));
    t.equal((error as Error).message, `the server sent something that is not socklab protocol (STAT reply ${JSON.stringify(bad.slice(4))})`);
  }
});

// ---------------------------------------------------------------------------
// GET

t.test('get: exactly size bytes to the sink, sha256 verified', async (t) => {
  const data = 'hello\n226 not a reply\nworld';
  const sha = sha256(data);
  for (const sizes of [[1], [3, 1, 7, 2, 13, 5, 1, 11], [1000]]) {
    const { c, ch } = client(`${GREETING}150 ${bytes(data).length}\r\n${data}226 ${sha}\r\n200 PONG\n`, sizes);
    await c.greeting();
    const got: Uint8Array[] = [];
    const progress: Array<[number, number]> = [];
    const digest = await c.get('notes.txt', (chunk) => void got.push(Uint8Array.from(chunk)), (r, s) => progress.push([r, s]));
    t.same(digest, { size: bytes(data).length, sha256: sha }, `sizes ${sizes.join(',')}`);
    t.equal(latin1(concat(got)), latin1(bytes(data)), 'the sink got the data, nothing more');
    t.ok(progress.length > 0);
    t.same(progress.at(-1), [bytes(data).length, bytes(data).length]);
    t.ok(progress.every(([r], i) => i === 0 || r > (progress[i - 1]?.[0] ?? 0)), 'progress only grows');
    t.same(await c.ping(), { code: 200, text: 'PONG' }, 'the stream is still in step');
    t.equal(ch.written, 'GET notes.txt\nPING\n');
  }
});

t.test('get: an async sink is awaited', async (t) => {
  const { c } = client(`${GREETING}150 4\nabcd226 ${sha256('abcd')}\n`, [1]);
  await c.greeting();
  let inSink = 0;
  let overlap = false;
  await c.get('a', async () => {
    if (inSink > 0) overlap = true;
    inSink++;
    await new Promise((resolve) => setImmediate(resolve));
    inSink--;
  });
  t.equal(overlap, false, 'one chunk at a time');
});

t.test('get: an empty file', async (t) => {
  const { c } = client(`${GREETING}150 0\n226 ${EMPTY_SHA256}\n`);
  await c.greeting();
  let calls = 0;
  t.same(await c.get('empty', () => void calls++), { size: 0, sha256: EMPTY_SHA256 });
  t.equal(calls, 0, 'no data, no sink call');
});

t.test('get: a sha256 that does not match the bytes is MALFORMED_REPLY', async (t) => {
  const { c } = client(`${GREETING}150 5\nhello226 ${sha256('hellO')}\n`);
  await c.greeting();
  const error = await rejection(c.get('a', () => undefined));
  isCode(t, error, ErrorCodes.MALFORMED_REPLY, 'mismatch');
  t.ok(error instanceof ConnectionError);
  // The CLI prints a MALFORMED_REPLY's message as it is.
  t.equal((error as Error).message, "GET a: the bytes received do not match the server's sha256");
});

t.test('get: refusals and broken streams', async (t) => {
  const refused = client(`${GREETING}550 a: no such file\n`);
  await refused.c.greeting();
  isReplyError(t, await rejection(refused.c.get('a', () => undefined)), 550, 'no such file');

  const cut = client(`${GREETING}150 10\nhello`);
  await cut.c.greeting();
  isCode(t, await rejection(cut.c.get('a', () => undefined)), ErrorCodes.CONNECTION_CLOSED, 'EOF mid-data');

  const noEnd = client(`${GREETING}150 5\nhello`);
  await noEnd.c.greeting();
  isCode(t, await rejection(noEnd.c.get('a', () => undefined)), ErrorCodes.CONNECTION_CLOSED, 'EOF before the 226');

  const badEnd = client(`${GREETING}150 5\nhello451 read failed\n`);
  await badEnd.c.greeting();
  isReplyError(t, await rejection(badEnd.c.get('a', () => undefined)), 451, 'a failure after the data');

  const badSize = client(`${GREETING}150 lots\n`);
  await badSize.c.greeting();
  isCode(t, await rejection(badSize.c.get('a', () => undefined)), ErrorCodes.MALFORMED_REPLY, '150 without a size');

  const negative = client(`${GREETING}150 -5\n226 ${EMPTY_SHA256}\n`);
  await negative.c.greeting();
  const error = await rejection(negative.c.get('a', () => undefined));
  isCode(t, error, ErrorCodes.MALFORMED_REPLY, 'a negative size is not an empty file');
  t.equal((error as Error).message, 'the server sent something that is not socklab protocol (GET size "-5")');
});

// ---------------------------------------------------------------------------
// PUT

t.test('put: 150, data, 226', async (t) => {
  const sha = sha256('hello');
  const reply150 = '150 send 5 bytes\r\n';
  const { c, ch } = client(`${GREETING}${reply150}226 a.txt 5 ${sha}\n`);
  await c.greeting();
  const progress: number[] = [];
  const { source } = counted(['he', 'llo']);
  const result = await c.put('a.txt', 5, source, { onProgress: (n) => progress.push(n) });
  t.same(result, { outcome: 'committed', name: 'a.txt', size: 5, sha256: sha });
  t.equal(ch.written, 'PUT a.txt 5 mode=ask\nhello');
  t.same(progress, [2, 5]);
  const firstData = ch.writes[1];
  t.ok(firstData !== undefined && firstData.deliveredBefore >= bytes(GREETING + reply150).length, 'data only after reading the 150');
});

t.test('put: mode and sha256 options go on the PUT line; async sources work', async (t) => {
  const sha = sha256('abc');
  const { c, ch } = client(`${GREETING}150 send 3 bytes\n226 a 3 ${sha}\n`);
  await c.greeting();
  async function* source(): AsyncGenerator<Uint8Array> {
    yield bytes('a');
    yield bytes('');
    yield bytes('bc');
  }
  const result = await c.put('a', 3, source(), { mode: 'new', sha256: sha });
  t.same(result, { outcome: 'committed', name: 'a', size: 3, sha256: sha });
  t.equal(ch.written, `PUT a 3 mode=new sha256=${sha}\nabc`);
  t.notOk(ch.writes.some((w) => w.bytes.length === 0), 'no empty writes');
});

t.test('put: 350 → onExists decides', async (t) => {
  const cases: Array<[ExistsDecision, string]> = [
    ['overwrite', 'OVERWRITE'],
    ['append', 'APPEND'],
  ];
  const sha = sha256('xyz');
  for (const [decision, word] of cases) {
    const exists = '350 a.txt exists 12\r\n';
    const { c, ch } = client(`${GREETING}${exists}150 send 3 bytes\n226 a.txt ${decision === 'append' ? 15 : 3} ${sha}\n`);
    await c.greeting();
    const asked: number[] = [];
    const result = await c.put('a.txt', 3, [bytes('xyz')], {
      onExists: async (size) => {
        asked.push(size);
        return decision;
      },
    });
    t.same(asked, [12], `${decision}: onExists gets the current size`);
    t.same(result, { outcome: 'committed', name: 'a.txt', size: decision === 'append' ? 15 : 3, sha256: sha }, decision);
    t.equal(ch.written, `PUT a.txt 3 mode=ask\n${word}\nxyz`, `${decision}: the decision word, then the data`);
    const decisionWrite = ch.writes[1];
    t.ok(decisionWrite !== undefined && decisionWrite.deliveredBefore >= bytes(GREETING + exists).length, `${decision}: sent after reading the 350`);
  }
});

t.test('put: 350 → cancel (chosen, or no onExists) → cancelled, no data', async (t) => {
  for (const onExists of [() => 'cancel' as const, undefined]) {
    const { c, ch } = client(`${GREETING}350 a.txt exists 12\n200 cancelled\n200 PONG\n`);
    await c.greeting();
    const { source, pulls } = counted(['xyz']);
    const result = await c.put('a.txt', 3, source, onExists === undefined ? {} : { onExists });
    t.same(result, { outcome: 'cancelled' });
    t.equal(pulls(), 0, 'the source is never read');
    t.equal(ch.written, 'PUT a.txt 3 mode=ask\nCANCEL\n');
    t.same(await c.ping(), { code: 200, text: 'PONG' }, 'in step afterwards');
  }
});

t.test('put: refusals are ReplyErrors carrying the reply, and nothing more is sent', async (t) => {
  for (const [script, code] of [
    ['554 a exists\n', 554],
    ['552 too large\n', 552],
    ['553 bad name: x\n', 553],
    ['501 usage\n', 501],
    ['350 a exists 1\n503 expected OVERWRITE, APPEND or CANCEL\n', 503],
  ] as const) {
    const { c, ch } = client(`${GREETING}${script}`);
    await c.greeting();
    const { source, pulls } = counted(['x']);
    const error = await rejection(c.put('a', 1, source, { onExists: () => 'overwrite' }));
    isReplyError(t, error, code, String(code));
    t.equal(pulls(), 0, `${code}: no data read`);
    t.notOk(ch.written.endsWith('x'), `${code}: no data sent`);
  }
  const cancelRefused = client(`${GREETING}350 a exists 1\n503 no\n`);
  await cancelRefused.c.greeting();
  isReplyError(t, await rejection(cancelRefused.c.put('a', 1, [bytes('x')])), 503, 'CANCEL answered with 503');
});

t.test('put: a failure after the data is a ReplyError (451, 452)', async (t) => {
  for (const code of [451, 452]) {
    const { c } = client(`${GREETING}150 send 2 bytes\n${code} nope\n`);
    await c.greeting();
    isReplyError(t, await rejection(c.put('a', 2, [bytes('ab')])), code, String(code));
  }
});

t.test('put: a 226 that is not "<name> <size> <sha256>" is MALFORMED_REPLY, not a commit', async (t) => {
  const sha = sha256('ab');
  for (const bad of ['226', '226 a', '226 a 2', `226 a 2 ${sha.toUpperCase()}`, '226 a 2 nothex']) {
    const { c } = client(`${GREETING}150 send 2 bytes\n${bad}\n`);
    await c.greeting();
    const error = await rejection(c.put('a', 2, [bytes('ab')]));
    isCode(t, error, ErrorCodes.MALFORMED_REPLY, JSON.stringify(bad));
    t.match((error as Error).message, `PUT reply ${JSON.stringify(bad.slice(4))}`, `${JSON.stringify(bad)}: quoted in the message`);
  }
});

t.test('put: a source shorter than size drops the connection', async (t) => {
  const { c, ch } = client(`${GREETING}150 send 5 bytes\n`);
  await c.greeting();
  isCode(t, await rejection(c.put('a', 5, [bytes('abc')])), ErrorCodes.SOURCE_ENDED, 'short source: the sender\'s side, not the connection');
  t.equal(ch.closed, true, 'the server must not wait for bytes that will not come');
});

t.test('put: a source that fails drops the connection, and its error comes out as it was', async (t) => {
  const { c, ch } = client(`${GREETING}150 send 5 bytes\n`);
  await c.greeting();
  const unreadable = new Error('the disk went away');
  async function* source(): AsyncGenerator<Uint8Array> {
    yield bytes('ab');
    throw unreadable;
  }
  t.equal(await rejection(c.put('a', 5, source())), unreadable, 'the source\'s own error');
  t.equal(ch.closed, true, 'the server must not wait for the rest');
});

t.test('put: a source longer than size: exactly size bytes are sent', async (t) => {
  const sha = sha256('abcde');
  const { c, ch } = client(`${GREETING}150 send 5 bytes\n226 a 5 ${sha}\n`);
  await c.greeting();
  const result = await c.put('a', 5, [bytes('abc'), bytes('defg'), bytes('hij')]);
  t.same(result, { outcome: 'committed', name: 'a', size: 5, sha256: sha });
  t.equal(ch.written, 'PUT a 5 mode=ask\nabcde');
});

t.test('put: stops pulling from the source once size bytes are sent', async (t) => {
  const sha = sha256('abcab');
  const { c, ch } = client(`${GREETING}150 send 5 bytes\n226 a 5 ${sha}\n`);
  await c.greeting();
  let pulls = 0;
  function* endless(): Generator<Uint8Array> {
    for (;;) {
      pulls++;
      // Bounded, so that a client that keeps pulling fails instead of hanging.
      if (pulls > 100) throw new Error('the client kept reading an endless source');
      yield bytes('abc');
    }
  }
  const result = await c.put('a', 5, endless()).catch((error: unknown) => error);
  t.same(result, { outcome: 'committed', name: 'a', size: 5, sha256: sha });
  t.ok(pulls <= 3, `pulled ${pulls} chunks for 5 bytes in 3-byte chunks`);
  t.equal(ch.written, 'PUT a 5 mode=ask\nabcab');
});

t.test('the channel ends mid-reply during put', async (t) => {
  const { c } = client(`${GREETING}150 send 2 bytes\n226 a 2 ${sha256('ab').slice(0, 10)}`);
  await c.greeting();
  isCode(t, await rejection(c.put('a', 2, [bytes('ab')])), ErrorCodes.CONNECTION_CLOSED, 'EOF inside the 226');
});

// ---------------------------------------------------------------------------
// Arguments that would break the line framing

t.test('an argument with a LF is refused before anything is written', async (t) => {
  // "ECHO a\nQUIT" would be two requests on the wire: the client would read
  // the QUIT's 221 as the answer to its next request.
  const attempts: Array<[string, (c: SocklabClient) => Promise<unknown>]> = [
    ['echo', (c) => c.echo('a\nQUIT')],
    ['stat', (c) => c.stat('a\nQUIT')],
    ['get', (c) => c.get('a\nQUIT', () => undefined)],
    ['put', (c) => c.put('a\nQUIT', 1, [bytes('x')])],
  ];
  for (const [what, attempt] of attempts) {
    const { c, ch } = client(`${GREETING}200 a\n221 bye\n`);
    await c.greeting();
    const error = await rejection(attempt(c));
    isCode(t, error, ErrorCodes.INVALID_ARGUMENT, what);
    t.equal((error as Error).message, 'a request cannot contain a line break', `${what}: the message says why`);
    t.equal(ch.written, '', `${what}: nothing written`);
  }
});

t.test('each failure names the request it happened to', async (t) => {
  // A program using the client (the load generator, a student's script) logs these messages.
  const cases: Array<[string, (c: SocklabClient) => Promise<unknown>, string]> = [
    ['150 5\nhello451 read failed\n', (c) => c.get('a.txt', () => undefined), 'GET a.txt: the server answered 451 read failed'],
    ['550 a.txt: no such file\n', (c) => c.put('a.txt', 1, [bytes('x')]), 'PUT a.txt: the server answered 550 a.txt: no such file'],
    ['150 send 1 bytes\n452 quota\n', (c) => c.put('a.txt', 1, [bytes('x')]), 'PUT a.txt: the server answered 452 quota'],
    ['350 a.txt exists 3\n500 unknown command\n', (c) => c.put('a.txt', 1, [bytes('x')]), 'CANCEL a.txt: the server answered 500 unknown command'],
    ['150 send 2 bytes\n', (c) => c.put('a.txt', 2, [bytes('x')]), 'PUT a.txt: the source ended after 1 of 2 bytes'],
    ['', (c) => c.ping(), 'the server closed the connection'],
  ];
  for (const [script, attempt, message] of cases) {
    const { c } = client(`${GREETING}${script}`);
    await c.greeting();
    t.equal(((await rejection(attempt(c))) as Error).message, message, message);
  }
});

// ---------------------------------------------------------------------------
// The client against the real ServerSession

t.test('client ↔ ServerSession in memory', async (t) => {
  const storage = new MemoryStorage({ 'notes.txt': 'hello\n' });
  const ch = new LoopbackChannel(storage);
  const c = new SocklabClient(ch);
  t.equal((await c.greeting()).model, 'async');
  t.same(await c.ping(), { code: 200, text: 'PONG' });
  t.equal(await c.echo('  заметки ✓  '), '  заметки ✓  ');
  t.match(await c.help(), /PUT/);

  const put = await c.put('заметки-1.txt', 4, [bytes('ab'), bytes('cd')], { mode: 'new', sha256: sha256('abcd') });
  t.same(put, { outcome: 'committed', name: 'заметки-1.txt', size: 4, sha256: sha256('abcd') });
  t.same((await c.list()).map((f) => [f.name, f.size]), [
    ['notes.txt', 6],
    ['заметки-1.txt', 4],
  ]);
  t.same(await c.stat('notes.txt'), { size: 6, sha256: sha256('hello\n') });
  t.equal(await c.stat('nope'), null);

  const got: Uint8Array[] = [];
  t.same(await c.get('notes.txt', (b) => void got.push(Uint8Array.from(b))), { size: 6, sha256: sha256('hello\n') });
  t.equal(latin1(concat(got)), 'hello\n');
  isReplyError(t, await rejection(c.get('nope', () => undefined)), 550, 'GET of an absent file');

  const appended = await c.put('notes.txt', 3, [bytes('xyz')], { onExists: (size) => (size === 6 ? 'append' : 'cancel') });
  t.same(appended, { outcome: 'committed', name: 'notes.txt', size: 9, sha256: sha256('xyz') });
  t.same(await c.put('notes.txt', 1, [bytes('!')]), { outcome: 'cancelled' });
  const overwritten = await c.put('notes.txt', 2, [bytes('ok')], { onExists: () => 'overwrite' });
  t.same(overwritten, { outcome: 'committed', name: 'notes.txt', size: 2, sha256: sha256('ok') });
  isReplyError(t, await rejection(c.put('notes.txt', 1, [bytes('!')], { mode: 'new' })), 554, 'mode=new on a present file');
  isReplyError(t, await rejection(c.put('x', 1, [bytes('!')], { sha256: sha256('?') })), 451, 'checksum mismatch');
  isReplyError(t, await rejection(c.stat('../x')), 553, 'a bad name');
  t.same(storage.snapshot(), { 'notes.txt': 'ok', 'заметки-1.txt': latin1(bytes('abcd')) });

  await c.quit();
  t.equal(ch.closed, true);
  t.equal(ch.driver.session.isClosed, true);
});
