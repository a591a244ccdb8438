/**
 * PROTOCOL.md end to end, over real sockets, for every server model: one suite,
 * registered once per model in SERVER_MODELS (the models run in parallel).
 * Tests talk raw bytes through test/helpers/wire.ts, never through our client
 * library, so they check the wire itself.
 *
 * Servers: a subtest that needs a known root or its own options starts its own
 * server. Subtests that need neither share one per group ("session basics",
 * "uploads", "idle timeout"), each with its own connection and its own file
 * names: a workers server costs seconds to start under tap's loaders, and ~45
 * of them per run did not fit the time budget.
 *
 * With `sequential`, a second connection is greeted only once the first has
 * ended: subtests use one connection at a time (each closed with QUIT, or
 * dropped, before the next opens) unless the rule is about several, and every
 * subtest's connections are dropped at its teardown (WireFixture.in), so one
 * failing half-way never keeps the next one waiting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { SERVER_MODELS, type ServerModelName, type ServerOptions } from '../../servers/index.js';
import { RING_BYTES } from '../../transport/thread-relay.js';
import { WireClient } from '../helpers/wire.js';
import { delay, EMPTY_SHA256, eventually, sha256, WireFixture } from '../helpers/wire-fixture.js';
import type { Tap } from '../helpers/tap.js';

// ---------------------------------------------------------------------------
// Small assertion helpers

function show(text: string): string {
  return JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Reads one line and checks it is exactly `expected`. */
async function expectLine(t: Tap, c: WireClient, expected: string, what?: string): Promise<string> {
  const line = await c.readLine();
  t.equal(line, expected, `${what ?? 'reply'}: ${show(expected)}`);
  return line;
}

/** Reads one line and checks its code (`CODE` or `CODE SP text`). */
async function expectCode(t: Tap, c: WireClient, code: number, what: string): Promise<string> {
  const line = await c.readLine();
  t.match(line, new RegExp(`^${code}(?: |$)`), `${what} → ${code} (got ${show(line)})`);
  return line;
}

/** Sends a request line and checks the code of its one reply line. */
async function requestCode(t: Tap, c: WireClient, request: string, code: number): Promise<string> {
  await c.sendLine(request);
  return expectCode(t, c, code, show(request));
}

/** PING → 200 PONG as the very next line: the stream is in sync and nothing extra is queued. */
async function expectInSync(t: Tap, c: WireClient, what = 'still usable, nothing extra queued'): Promise<void> {
  await c.sendLine('PING');
  t.equal(await c.readLine(), '200 PONG', `PING → 200 PONG: ${what}`);
}

/**
 * Sends a PUT line; if it gets 150, sends `data` and reads the reply after it.
 * Returns [first reply, reply after the data (if any)].
 */
async function put(c: WireClient, line: string, data: string | Uint8Array): Promise<[string, string | null]> {
  const first = await c.request(line);
  if (!first.startsWith('150')) return [first, null];
  await c.send(data);
  return [first, await c.readLine()];
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A tiny barrier: `wait()` resolves for everyone once `count` have arrived. */
function barrier(count: number): { wait(): Promise<void> } {
  let arrived = 0;
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    wait() {
      if (++arrived >= count) open();
      return opened;
    },
  };
}

// ---------------------------------------------------------------------------
// The suite, once per model

/** SOCKLAB_TEST_MODELS=async,workers narrows the run (for debugging); all models by default. */
const only = process.env.SOCKLAB_TEST_MODELS?.split(',');
const models = SERVER_MODELS.filter((model) => only === undefined || only.includes(model));

t.jobs = models.length;
// Each workers server starts its threads under tap's module loaders, which costs
// seconds on a busy machine: give this file more than the default budget. Every wait
// in it is still bounded (10 s per read, 10 s per server close).
t.setTimeout(240_000);

for (const model of models) {
  t.test(model, { buffered: models.length > 1 }, async (t) => {
    registerProtocolSuite(t, model);
    registerOrderTests(t, model);
  });
}

function registerProtocolSuite(t: Tap, model: ServerModelName): void {
  // threads: 2 (workers only): enough for every subtest that does not ask for more, and
  // each worker thread costs seconds to start under tap's module loaders.
  const start = (t: Tap, overrides: Partial<ServerOptions> = {}) => WireFixture.start(t, model, { threads: 2, ...overrides });

  // -- Greeting, framing, commands, STAT, GET: one server, one connection at a time --

  t.test('session basics (one server; each subtest on its own connection)', async (t) => {
    const basics = await start(t);
    t.test('greeting: the server speaks first, 220 socklab/1 <model> ready', async (t) => {
      const f = basics.in(t);
      const c = await f.connect();
      t.equal(await c.readLine(), `220 socklab/1 ${model} ready`);
      t.equal(c.buffered, 0, 'nothing after the greeting');
      await f.quit(c);
    });

    t.test('framing: LF and CRLF; a CR is dropped only right before the LF', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      await c.send('PING\n');
      await expectLine(t, c, '200 PONG', 'PING LF');
      await c.send('PING\r\n');
      await expectLine(t, c, '200 PONG', 'PING CRLF');
      await c.send('ECHO crlf \r\n');
      await expectLine(t, c, '200 crlf ', 'ECHO with CRLF: the CR is dropped, the trailing space kept');
      await c.send('ECHO a\rb\n');
      t.same(await c.readLineBytes(), Buffer.from('200 a\rb'), 'a CR inside a line is kept (ECHO text)');
      await c.send('ECHO x\r\r\n');
      t.same(await c.readLineBytes(), Buffer.from('200 x\r'), 'only the one CR right before the LF is dropped');
      await c.send('PING\r');
      await c.send('\n');
      await expectLine(t, c, '200 PONG', 'CR and LF in separate writes');
      await c.send('PING\r \n');
      await expectCode(t, c, 500, 'PING CR SP LF: the CR is not before the LF, so the word is "PING\\r"');
      await expectInSync(t, c);
      await f.quit(c);
    });

    t.test('framing: requests and data split into 1-byte writes', async (t) => {
      const f = basics.in(t);
      f.writeFile('bytewise.txt', 'abc');
      const c = await f.open();
      await c.sendInPieces('PING\r\nECHO héllo 日本 🎉\nSTAT bytewise.txt\n');
      await expectLine(t, c, '200 PONG');
      await expectLine(t, c, '200 héllo 日本 🎉', 'multi-byte characters split across writes');
      await expectLine(t, c, `213 3 ${sha256('abc')}`);
      await c.sendInPieces('PUT bytewise.bin 10 mode=new\n');
      await expectLine(t, c, '150 send 10 bytes');
      const data = Buffer.from('0123\n5678\r');
      await c.sendInPieces(data);
      await expectLine(t, c, `226 bytewise.bin 10 ${sha256(data)}`);
      await f.quit(c);
      t.same(f.readFile('bytewise.bin'), data, 'file content exact');
      t.same(f.tempFiles(), [], 'no temporary file left');
    });

    t.test('framing: an empty line gets no reply', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      await c.send('\n');
      await c.send('\r\n');
      await c.send('PING\n');
      await expectLine(t, c, '200 PONG', 'the first reply is the PING\'s');
      await c.send('\n\r\n\nECHO z\n\n');
      await expectLine(t, c, '200 z', 'empty lines around a request: only its reply');
      await c.send('    \n  \r\nPING\n');
      await expectLine(t, c, '200 PONG', 'a line of spaces only is an empty line too (leading/trailing spaces are ignored)');
      await expectInSync(t, c, 'exactly one reply per request');
      await f.quit(c);
    });

    t.test('framing: invalid UTF-8 gets 500 and the connection stays usable', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      const bad: Array<[string, number[]]> = [
        ['a lone 0xff', [0xff]],
        ['ECHO then 0xfe 0xff', [...Buffer.from('ECHO '), 0xfe, 0xff]],
        ['an overlong NUL (C0 80)', [...Buffer.from('ECHO '), 0xc0, 0x80]],
        ['a UTF-16 surrogate (ED A0 80)', [...Buffer.from('ECHO '), 0xed, 0xa0, 0x80]],
        ['a truncated sequence (E6 97)', [...Buffer.from('ECHO '), 0xe6, 0x97]],
        ['a continuation byte alone', [...Buffer.from('PING'), 0x80]],
        ['a code point above U+10FFFF (F4 90 80 80)', [...Buffer.from('STAT '), 0xf4, 0x90, 0x80, 0x80]],
      ];
      for (const [what, bytes] of bad) {
        await c.send(Buffer.from([...bytes, 0x0a]));
        await expectCode(t, c, 500, what);
      }
      await expectInSync(t, c);
      await f.quit(c);
    });

    t.test('framing: a 1024-byte line is accepted', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      const text = 'x'.repeat(1019);
      t.equal(Buffer.byteLength(`ECHO ${text}`), 1024);
      await c.send(`ECHO ${text}\n`);
      await expectLine(t, c, `200 ${text}`, 'ECHO with 1019 characters (1024-byte line)');
      await c.send(`ECHO ${text}\r\n`);
      await expectLine(t, c, `200 ${text}`, 'the same with CRLF (the CR is not part of the line)');
      const wide = `${'é'.repeat(509)}x`;
      t.equal(Buffer.byteLength(`ECHO ${wide}`), 1024);
      await c.send(`ECHO ${wide}\n`);
      await expectLine(t, c, `200 ${wide}`, '1024 bytes of mostly 2-byte characters');
      await expectInSync(t, c);
      await f.quit(c);
    });

    t.test('framing: a 1025-byte line gets 500 line too long, then the server closes', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      const text = 'x'.repeat(1020);
      t.equal(Buffer.byteLength(`ECHO ${text}`), 1025);
      await c.send(`ECHO ${text}\nPING\n`);
      await expectLine(t, c, '500 line too long');
      await c.expectClose();
      t.pass('closed after 500, the PING after it not answered');
    });

    t.test('framing: a line over 1024 bytes is refused without waiting for its LF', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      await c.send(`ECHO ${'y'.repeat(3000)}`);
      await expectLine(t, c, '500 line too long');
      await c.expectClose();
    });

    t.test('framing: command words are case-insensitive', async (t) => {
      const f = basics.in(t);
      f.writeFile('case.txt', 'abc');
      const c = await f.open();
      await c.send('ping\nPiNg\necho Hi There\nEcHo x\n');
      await expectLine(t, c, '200 PONG', 'ping');
      await expectLine(t, c, '200 PONG', 'PiNg');
      await expectLine(t, c, '200 Hi There', 'echo: the text keeps its case');
      await expectLine(t, c, '200 x', 'EcHo');
      await c.sendLine('stat case.txt');
      await expectLine(t, c, `213 3 ${sha256('abc')}`, 'stat');
      await c.sendLine('list');
      const listed = await expectCode(t, c, 211, 'list');
      await c.readLines(Number(listed.slice(4)));
      await c.sendLine('get case.txt');
      await expectLine(t, c, '150 3', 'get');
      t.same(await c.readBytes(3), Buffer.from('abc'));
      await expectLine(t, c, `226 ${sha256('abc')}`);
      await requestCode(t, c, 'help', 214);
      await requestCode(t, c, 'cancel', 503);
      const [first, second] = await put(c, 'put case-new.txt 1 mode=new', 'z');
      t.equal(first, '150 send 1 bytes', 'put');
      t.equal(second, `226 case-new.txt 1 ${sha256('z')}`);
      await requestCode(t, c, 'Put case.txt 1', 350);
      await c.sendLine('cancel');
      await expectLine(t, c, '200 cancelled', 'cancel after 350');
      await c.sendLine('qUiT');
      await expectLine(t, c, '221 bye', 'qUiT');
      await c.expectClose();
    });

    t.test('framing: leading and trailing spaces are ignored (except in ECHO text)', async (t) => {
      const f = basics.in(t);
      f.writeFile('spaces.txt', 'abc');
      const c = await f.open();
      await c.send('   PING\nPING   \n  PING  \r\n');
      await expectLine(t, c, '200 PONG', 'leading spaces');
      await expectLine(t, c, '200 PONG', 'trailing spaces');
      await expectLine(t, c, '200 PONG', 'both, with CRLF');
      await c.sendLine('  STAT   spaces.txt   ');
      await expectLine(t, c, `213 3 ${sha256('abc')}`, 'STAT with extra spaces between and around');
      await c.sendLine('   LIST   ');
      const listed = await expectCode(t, c, 211, 'LIST with spaces around');
      await c.readLines(Number(listed.slice(4)));
      const [first, second] = await put(c, '  PUT   spaces-up.txt   2    mode=new   ', 'ab');
      t.equal(first, '150 send 2 bytes', 'PUT with spaces everywhere');
      t.equal(second, `226 spaces-up.txt 2 ${sha256('ab')}`);
      await c.sendLine('  ECHO  two  ');
      t.same(await c.readLineBytes(), Buffer.from('200  two  '), 'ECHO: leading spaces before the word ignored, the text after the first space kept byte for byte');
      await c.sendLine('STAT\tspaces.txt');
      await expectCode(t, c, 500, 'a tab is not a separator: the word is "STAT\\ta.txt"');
      await c.sendLine('   QUIT   ');
      await expectLine(t, c, '221 bye');
      await c.expectClose();
    });

    t.test('ECHO: the text after the first space, byte for byte', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      const cases: Array<[string, string]> = [
        ['ECHO hello', '200 hello'],
        ['ECHO  two  spaces  ', '200  two  spaces  '],
        ['ECHO    ', '200    '],
        ['ECHO ', '200'],
        ['ECHO', '200'],
        ['ECHO héllo wörld — 日本語 🎉 \u0301', '200 héllo wörld — 日本語 🎉 \u0301'],
        ['ECHO tab\there\u0001ctl\u0000nul\u007f', '200 tab\there\u0001ctl\u0000nul\u007f'],
        ['ECHO PING', '200 PING'],
        ['ECHO 500 not an error', '200 500 not an error'],
        ['ECHO e\u0301 is not normalized', '200 e\u0301 is not normalized'],
      ];
      for (const [request, reply] of cases) {
        await c.sendLine(request);
        t.same(await c.readLineBytes(), Buffer.from(reply, 'utf8'), `${show(request)} → ${show(reply)}`);
      }
      await expectInSync(t, c);
      await f.quit(c);
    });

    t.test('PING → 200 PONG; HELP → 214 with the commands on one line', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      await c.sendLine('PING');
      await expectLine(t, c, '200 PONG');
      await c.sendLine('HELP');
      const help = await expectCode(t, c, 214, 'HELP');
      for (const word of ['PING', 'ECHO', 'LIST', 'STAT', 'GET', 'PUT', 'HELP', 'QUIT']) {
        t.match(help, new RegExp(`\\b${word}\\b`), `HELP mentions ${word}`);
      }
      await expectInSync(t, c, 'HELP is one line');
      await f.quit(c);
    });

    t.test('QUIT → 221 bye, then the server closes (nothing after it is answered)', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      await c.send('QUIT\nPING\nECHO never\n');
      await expectLine(t, c, '221 bye');
      await c.expectClose();
    });

    t.test('unknown commands get 500 and the connection stays usable', async (t) => {
      const f = basics.in(t);
      const c = await f.open();
      for (const request of ['FOO', 'PINGPONG', 'GETX a.txt', '221', 'ÉCHO x', 'LISTS', 'PUTS a 1', 'PING-', '-', 'x'.repeat(1000)]) {
        await requestCode(t, c, request, 500);
      }
      await expectInSync(t, c);
      await f.quit(c);
    });

    t.test('wrong argument counts get 501 and the connection stays usable', async (t) => {
      const f = basics.in(t);
      f.writeFile('args.txt', 'abc');
      const c = await f.open();
      for (const request of ['PING x', 'LIST all', 'HELP me', 'QUIT now', 'STAT', 'STAT args.txt b.txt', 'GET', 'GET args.txt b.txt', 'PUT', 'PUT args.txt']) {
        await requestCode(t, c, request, 501);
      }
      await expectInSync(t, c, 'still open after "QUIT now" got 501');
      t.same(f.readFile('args.txt'), Buffer.from('abc'));
      await f.quit(c);
    });

    t.test('STAT: 213 size sha256, 550 no such file, 553 bad name', async (t) => {
      const f = basics.in(t);
      const content = Buffer.concat([Buffer.from('stat me\n'), randomBytes(1000)]);
      f.writeFile('stat.bin', content);
      f.writeFile('stat-empty', '');
      const c = await f.open();
      await c.sendLine('STAT stat.bin');
      await expectLine(t, c, `213 ${content.length} ${sha256(content)}`);
      await c.sendLine('STAT stat-empty');
      await expectLine(t, c, `213 0 ${EMPTY_SHA256}`, 'a zero-byte file');
      await requestCode(t, c, 'STAT missing.txt', 550);
      await requestCode(t, c, 'STAT Stat.bin', 550); // names are case-sensitive
      await requestCode(t, c, 'STAT ../stat.bin', 553);
      await requestCode(t, c, 'STAT .hidden', 553);
      await expectInSync(t, c);
      await f.quit(c);
    });

    t.test('GET: 150 size, exactly size bytes, 226 sha256; 550; 553; zero bytes', async (t) => {
      const f = basics.in(t);
      const small = Buffer.concat([Buffer.from('line\n226 not a reply\n\r\n'), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
      const large = randomBytes(700 * 1024 + 17);
      f.writeFile('get-small.bin', small);
      f.writeFile('get-large.bin', large);
      f.writeFile('get-zero', '');
      const c = await f.open();
      for (const [name, content] of [['get-small.bin', small], ['get-large.bin', large]] as const) {
        await c.sendLine(`GET ${name}`);
        await expectLine(t, c, `150 ${content.length}`, `GET ${name}`);
        const got = await c.readBytes(content.length);
        t.ok(got.equals(content), `${name}: the exact bytes`);
        await expectLine(t, c, `226 ${sha256(content)}`, `${name}: sha256 of the bytes`);
      }
      await c.sendLine('GET get-zero');
      await expectLine(t, c, '150 0', 'a zero-byte file');
      await expectLine(t, c, `226 ${EMPTY_SHA256}`, 'then 226 at once');
      await requestCode(t, c, 'GET missing', 550);
      await requestCode(t, c, 'GET ../etc/passwd', 553);
      await requestCode(t, c, 'GET /etc/passwd', 553);
      await expectInSync(t, c);
      await f.quit(c);
    });
  });

  t.test('GET of a file that shrinks after its 150: the connection is dropped, and every byte that came is the file\'s (no reply line among them)', async (t) => {
    const f = await start(t);
    const size = 16 * 1024 * 1024;
    f.writeFile('shrinks.bin', Buffer.alloc(size, 'x'));
    const c = await f.open();
    // Not read meanwhile: the server fills the socket's buffers and waits, far from the end of the file.
    c.socket.pause();
    await c.sendLine('GET shrinks.bin');
    // The server runs in this process: once one of its descriptors is the file, the GET has it open.
    const file = path.join(f.root, 'shrinks.bin');
    await eventually(() => openHere(file), 'the server has the file open', 10_000);
    fs.truncateSync(file, 0);
    c.socket.resume();
    await expectLine(t, c, `150 ${size}`, 'the GET had started');
    await eventually(() => c.isEnded, 'the server drops the connection', 10_000);
    const rest = await c.readBytes(c.buffered);
    t.ok(rest.length < size, `fewer bytes than promised came (${rest.length} of ${size})`);
    t.equal(rest.indexOf(Buffer.from('4')), -1, 'no reply line (421...) inside the data: every byte is the file\'s x');
    t.equal(rest.toString('latin1').replace(/x/g, ''), '', 'only the file\'s bytes');
  });

  // -- Framing that needs a known root ------------------------------------

  t.test('framing: 50 mixed requests in one write are answered strictly in order', async (t) => {
    const f = await start(t);
    const aTxt = 'alpha\n';
    const bBin = Buffer.concat([Buffer.from('bin\n226 fake\n\r\n'), randomBytes(300), Buffer.from([0, 10, 13, 255])]);
    const mtime = new Date('2001-02-03T04:05:06.000Z');
    f.writeFile('a.txt', aTxt, mtime);
    f.writeFile('b.bin', bBin, mtime);
    type Expect = { line: string } | { code: number } | { bytes: Buffer } | { listed: string };
    const requests: string[] = [];
    const expected: Expect[] = [];
    for (let i = 0; i < 50; i++) {
      const eol = i % 2 === 0 ? '\n' : '\r\n';
      switch (i % 10) {
        case 0:
          requests.push(`PING${eol}`);
          expected.push({ line: '200 PONG' });
          break;
        case 1:
          requests.push(`ECHO message ${i} ×${eol}`);
          expected.push({ line: `200 message ${i} ×` });
          break;
        case 2:
          requests.push(`STAT a.txt${eol}`);
          expected.push({ line: `213 ${aTxt.length} ${sha256(aTxt)}` });
          break;
        case 3:
          requests.push(`GET b.bin${eol}`);
          expected.push({ line: `150 ${bBin.length}` }, { bytes: bBin }, { line: `226 ${sha256(bBin)}` });
          break;
        case 4:
          requests.push(`LIST${eol}`);
          expected.push({ line: '211 2' }, { listed: 'a.txt' }, { listed: 'b.bin' });
          break;
        case 5:
          requests.push(`FOO ${i}${eol}`);
          expected.push({ code: 500 });
          break;
        case 6:
          requests.push(`STAT missing-${i}${eol}`);
          expected.push({ code: 550 });
          break;
        case 7:
          requests.push(`PUT a.txt 3 mode=new${eol}`);
          expected.push({ code: 554 });
          break;
        case 8:
          requests.push(`GET ../b.bin${eol}`);
          expected.push({ code: 553 });
          break;
        case 9:
          requests.push(`ECHO ${i}${eol}`);
          expected.push({ line: `200 ${i}` });
          break;
      }
    }
    const c = await f.open();
    await c.send(requests.join(''));
    let mismatches = 0;
    for (const [index, e] of expected.entries()) {
      if ('bytes' in e) {
        const got = await c.readBytes(e.bytes.length);
        if (!got.equals(e.bytes)) mismatches++;
        continue;
      }
      const line = await c.readLine();
      const ok =
        'line' in e ? line === e.line : 'code' in e ? new RegExp(`^${e.code}(?: |$)`).test(line) : line.split(' ')[0] === e.listed;
      if (!ok) {
        mismatches++;
        t.fail(`reply #${index}: expected ${JSON.stringify(e)}, got ${show(line)}`);
      }
    }
    t.equal(mismatches, 0, 'every reply in order');
    await expectInSync(t, c, 'no reply beyond the 50');
    t.same(f.entries(), ['a.txt', 'b.bin'], 'the PUT mode=new of an existing file changed nothing');
    t.same(f.readFile('a.txt'), Buffer.from(aTxt));
    await f.quit(c);
  });

  // -- LIST and names ----------------------------------------------------

  t.test('LIST: 211 n, then name size mtime, sorted bytewise, ISO 8601 UTC', async (t) => {
    const f = await start(t);
    const c = await f.open();
    await c.sendLine('LIST');
    await expectLine(t, c, '211 0', 'an empty root');
    await expectInSync(t, c, 'no line after 211 0');
    await f.quit(c);

    const files: Record<string, string> = {
      'b.txt': 'bee',
      'a.txt': '',
      'B.txt': 'capital',
      Z: 'zz',
      '10': 'ten',
      '9': 'nine',
      'é.txt': 'accent',
      'заметки-1.txt': 'notes',
      'a..b': 'dots',
      ab: 'ab',
      '日本語': 'nihongo',
    };
    const mtime = new Date('2001-02-03T04:05:06.000Z');
    for (const [name, content] of Object.entries(files)) f.writeFile(name, content, mtime);
    f.writeFile('b.txt', 'bee', new Date('2023-11-30T23:59:58.000Z'));
    const c2 = await f.open();
    await c2.sendLine('LIST');
    const names = Object.keys(files).sort(byteOrder);
    await expectLine(t, c2, `211 ${names.length}`);
    const lines = await c2.readLines(names.length);
    t.same(
      lines.map((l) => l.split(' ')[0]),
      names,
      'sorted bytewise (uppercase before lowercase, digits as text, non-ASCII last)',
    );
    for (const line of lines) {
      const [name = '', size = '', stamp = ''] = line.split(' ');
      t.equal(size, String(Buffer.byteLength(files[name] ?? '?')), `${show(name)}: size`);
      t.match(stamp, ISO_UTC, `${show(name)}: mtime is ISO 8601 UTC (${stamp})`);
      const expected = name === 'b.txt' ? '2023-11-30T23:59:58' : '2001-02-03T04:05:06';
      t.equal(stamp.slice(0, 19), expected, `${show(name)}: mtime is the file's`);
    }
    await expectInSync(t, c2, 'exactly n lines after 211');
    await f.quit(c2);
  });

  t.test('LIST, STAT, GET: what is not a name, not a regular file, or a link is never listed or served', async (t) => {
    const f = await start(t);
    fs.writeFileSync(path.join(f.outer, 'secret.txt'), 'outside the root');
    f.writeFile('shown.txt', 'visible');
    f.writeFile('.hidden', 'hidden');
    f.writeFile('.socklab-tmp-0123456789abcdef', 'a temporary file');
    f.writeFile('a b', 'space');
    f.writeFile('ctl\u0001x', 'control');
    f.writeFile('e\u0301.txt', 'not NFC');
    f.writeFile('-dash', 'starts with a dash');
    fs.mkdirSync(f.file('subdir'));
    fs.writeFileSync(path.join(f.file('subdir'), 'inner.txt'), 'inside a subdirectory');
    fs.symlinkSync('shown.txt', f.file('link'));
    fs.symlinkSync('../secret.txt', f.file('outside'));
    fs.symlinkSync('nowhere', f.file('dangling'));
    const c = await f.open();
    await c.sendLine('LIST');
    await expectLine(t, c, '211 1', 'only the one regular file with a valid name');
    t.match(await c.readLine(), /^shown\.txt 7 /);
    await expectInSync(t, c);
    for (const name of ['subdir', 'link', 'outside', 'dangling']) {
      await requestCode(t, c, `STAT ${name}`, 550);
      await requestCode(t, c, `GET ${name}`, 550);
    }
    for (const name of ['.hidden', '.socklab-tmp-0123456789abcdef', 'ctl\u0001x', 'e\u0301.txt', '-dash', 'subdir/inner.txt', '../secret.txt']) {
      await requestCode(t, c, `STAT ${name}`, 553);
      await requestCode(t, c, `GET ${name}`, 553);
    }
    await expectInSync(t, c);
    await f.quit(c);
  });

  t.test('names: the valid examples work; names are case-sensitive and stored as given', async (t) => {
    const f = await start(t);
    const valid = [
      'notes.txt',
      'заметки-1.txt',
      'a..b',
      'Readme',
      'readme',
      '日本語.txt',
      '9lives',
      '\u00c5ngstr\u00f6m', // NFC
      'a'.repeat(128), // 128 code points
      `${'я'.repeat(127)}a`, // 128 code points, 255 bytes
      `${'𝐀'.repeat(63)}abc`, // 66 code points, 255 bytes
    ];
    const c = await f.open();
    for (const name of valid) {
      const data = `content of ${name}`;
      const [first, second] = await put(c, `PUT ${name} ${Buffer.byteLength(data)} mode=new`, data);
      t.equal(first, `150 send ${Buffer.byteLength(data)} bytes`, `PUT ${show(name)}`);
      t.equal(second, `226 ${name} ${Buffer.byteLength(data)} ${sha256(data)}`, `${show(name)} committed`);
      await c.sendLine(`STAT ${name}`);
      await expectLine(t, c, `213 ${Buffer.byteLength(data)} ${sha256(data)}`, `STAT ${show(name)}`);
    }
    await c.sendLine('LIST');
    await expectLine(t, c, `211 ${valid.length}`);
    t.same((await c.readLines(valid.length)).map((l) => l.split(' ')[0]), [...valid].sort(byteOrder), 'all listed');
    await f.quit(c);
    t.same(f.entries(), [...valid].sort(), 'stored under exactly these names');
    for (const name of valid) t.same(f.readFile(name), Buffer.from(`content of ${name}`), `${show(name)} on disk`);
  });

  t.test('names: invalid names get 553 and touch nothing', async (t) => {
    const f = await start(t);
    f.writeFile('x', 'keep');
    const invalid = [
      '../x',
      'a/b',
      '.hidden',
      'a\u0001b',
      'a\tb',
      'a\u007f',
      '..',
      '.',
      '/etc/passwd',
      '-lead',
      '_lead',
      'a\\b',
      'a:b',
      'a*b',
      'e\u0301', // not NFC (e + combining acute)
      'A\u030angstr\u00f6m', // not NFC
      'a'.repeat(129), // 129 code points
      'я'.repeat(128), // 128 code points but 256 bytes
      '𝐀'.repeat(64), // 64 code points, 256 bytes
    ];
    const c = await f.open();
    for (const name of invalid) {
      await requestCode(t, c, `STAT ${name}`, 553);
      await requestCode(t, c, `GET ${name}`, 553);
      for (const mode of ['new', 'overwrite', 'append', 'ask']) await requestCode(t, c, `PUT ${name} 3 mode=${mode}`, 553);
    }
    // `a b` and the empty name cannot reach the name check on the wire: arguments are
    // split on spaces, so these are wrong argument counts (501), checked first.
    await requestCode(t, c, 'STAT a b', 501);
    await requestCode(t, c, 'STAT ', 501);
    await requestCode(t, c, 'PUT a b 3', 501);
    await expectInSync(t, c, 'no 553 was followed by a data block');
    await f.quit(c);
    t.same(f.entries(), ['x'], 'nothing created in the root');
    t.same(fs.readdirSync(f.outer).sort(), ['root'], 'nothing created next to the root');
    t.same(f.readFile('x'), Buffer.from('keep'));
  });

  // -- Upload ------------------------------------------------------------

  t.test('PUT: checks in order 501 syntax, 553 name, 552 too large, then the file state', async (t) => {
    const f = await start(t, { maxFileSize: 1000 });
    f.writeFile('exists.txt', 'old');
    const hex = 'a'.repeat(64);
    const c = await f.open();
    const syntax = [
      'PUT x.txt abc',
      'PUT x.txt -1',
      'PUT x.txt 1.5',
      'PUT x.txt 0x10',
      'PUT x.txt 1e3',
      'PUT x.txt +5',
      'PUT x.txt 5 mode=bogus',
      'PUT x.txt 5 mode=',
      'PUT x.txt 5 foo=bar',
      'PUT x.txt 5 bogus',
      'PUT x.txt 5 sha256=xyz',
      `PUT x.txt 5 sha256=${hex.slice(1)}`,
      `PUT x.txt 5 sha256=${hex}a`,
      `PUT x.txt 5 sha256=${'g'.repeat(64)}`,
      'PUT x.txt 5 sha256=',
      // 501 before 553, and before 552:
      'PUT ../x abc',
      'PUT .hidden 5 foo=1',
      'PUT a/b 5 sha256=zz',
      'PUT ../x 99999 mode=bogus',
      'PUT exists.txt 99999 mode=nope',
    ];
    for (const request of syntax) await requestCode(t, c, request, 501);
    // 553 before 552:
    await requestCode(t, c, 'PUT ../x 5000', 553);
    await requestCode(t, c, 'PUT .hidden 1001 mode=new', 553);
    // 552 before the file's state:
    await requestCode(t, c, 'PUT big.txt 1001', 552);
    await requestCode(t, c, 'PUT big.txt 99999999999999999999999', 552);
    await requestCode(t, c, 'PUT exists.txt 1001 mode=new', 552);
    await requestCode(t, c, 'PUT exists.txt 1001', 552);
    await expectInSync(t, c, 'no refused PUT was waiting for data');
    // The limit itself is allowed.
    const data = randomBytes(1000);
    const [first, second] = await put(c, 'PUT limit.bin 1000 mode=new', data);
    t.equal(first, '150 send 1000 bytes', 'exactly the limit is allowed');
    t.equal(second, `226 limit.bin 1000 ${sha256(data)}`);
    await f.quit(c);
    t.same(f.entries(), ['exists.txt', 'limit.bin'], 'no refused PUT created anything');
    t.same(f.readFile('exists.txt'), Buffer.from('old'));
  });

  t.test('uploads (one server; each subtest on its own connection and its own file names)', async (t) => {
    const uploads = await start(t);
    t.test('PUT: sha256= must be lowercase hex (PROTOCOL.md: <sha256> is 64 lowercase hex digits; bad form is 501)', async (t) => {
      const f = uploads.in(t);
      const c = await f.open();
      const reply = await requestCode(t, c, `PUT upper.txt 3 mode=new sha256=${sha256('abc').toUpperCase()}`, 501);
      if (reply.startsWith('150')) {
        // The server took the upper-case form: send the data so the stream stays in sync.
        await c.send('abc');
        t.comment(`after the data: ${await c.readLine()}`);
      }
      await f.quit(c);
    });

    t.test('PUT: an absent file gets 150 in every mode', async (t) => {
      const f = uploads.in(t);
      const c = await f.open();
      for (const mode of [null, 'ask', 'new', 'overwrite', 'append']) {
        const name = `absent-${mode ?? 'default'}.txt`;
        const data = `data for ${name}`;
        const [first, second] = await put(c, `PUT ${name} ${data.length}${mode === null ? '' : ` mode=${mode}`}`, data);
        t.equal(first, `150 send ${data.length} bytes`, `absent + ${mode ?? 'no mode'} → 150`);
        t.equal(second, `226 ${name} ${data.length} ${sha256(data)}`, 'committed');
      }
      await f.quit(c);
      for (const mode of ['default', 'ask', 'new', 'overwrite', 'append']) {
        t.same(f.readFile(`absent-${mode}.txt`), Buffer.from(`data for absent-${mode}.txt`), `absent-${mode}.txt on disk`);
      }
      t.same(f.tempFiles(), [], 'no temporary file left');
    });

    t.test('PUT: a present file: new → 554, overwrite → 150, append → 150', async (t) => {
      const f = uploads.in(t);
      f.writeFile('present-new.txt', 'original');
      f.writeFile('present-over.txt', 'original');
      f.writeFile('present-app.txt', 'original');
      const c = await f.open();
      await requestCode(t, c, 'PUT present-new.txt 5 mode=new', 554);
      await expectInSync(t, c, 'after 554 no data is expected');
      let [first, second] = await put(c, 'PUT present-over.txt 3 mode=overwrite', 'new');
      t.equal(first, '150 send 3 bytes', 'overwrite → 150');
      t.equal(second, `226 present-over.txt 3 ${sha256('new')}`, 'overwrite: new size, sha256 of the bytes received');
      [first, second] = await put(c, 'PUT present-app.txt 4 mode=append', '+add');
      t.equal(first, '150 send 4 bytes', 'append → 150');
      t.equal(second, `226 present-app.txt 12 ${sha256('+add')}`, 'append: new size is old + received; sha256 of the bytes received');
      await f.quit(c);
      t.same(f.readFile('present-new.txt'), Buffer.from('original'), 'new: unchanged');
      t.same(f.readFile('present-over.txt'), Buffer.from('new'), 'overwrite: replaced');
      t.same(f.readFile('present-app.txt'), Buffer.from('original+add'), 'append: appended');
      t.same(f.tempFiles(), []);
    });

    t.test('PUT: a present file in ask mode gets 350, then OVERWRITE / APPEND / CANCEL', async (t) => {
      const f = uploads.in(t);
      for (const name of ['ask-o.txt', 'ask-a.txt', 'ask-c.txt', 'ask-d.txt', 'ask-l.txt']) f.writeFile(name, 'original');
      const c = await f.open();
      await c.sendLine('PUT ask-o.txt 3');
      await expectLine(t, c, '350 ask-o.txt exists 8', 'no mode means ask');
      await c.sendLine('OVERWRITE');
      await expectLine(t, c, '150 send 3 bytes', 'OVERWRITE → 150');
      await c.send('new');
      await expectLine(t, c, `226 ask-o.txt 3 ${sha256('new')}`);

      await c.sendLine('PUT ask-a.txt 4 mode=ask');
      await expectLine(t, c, '350 ask-a.txt exists 8', 'mode=ask');
      await c.sendLine('APPEND');
      await expectLine(t, c, '150 send 4 bytes', 'APPEND → 150');
      await c.send('+add');
      await expectLine(t, c, `226 ask-a.txt 12 ${sha256('+add')}`);

      await c.sendLine('PUT ask-c.txt 3');
      await expectLine(t, c, '350 ask-c.txt exists 8');
      await c.send('\n\r\n');
      await c.sendLine('CANCEL');
      await expectLine(t, c, '200 cancelled', 'CANCEL → 200 cancelled (empty lines before it ignored)');
      await expectInSync(t, c);

      await c.sendLine('PUT ask-l.txt 3');
      await expectLine(t, c, '350 ask-l.txt exists 8');
      await c.sendLine('overwrite');
      await expectLine(t, c, '150 send 3 bytes', 'lowercase overwrite → 150');
      await c.send('low');
      await expectLine(t, c, `226 ask-l.txt 3 ${sha256('low')}`);

      await c.sendLine('PUT ask-d.txt 3');
      await expectLine(t, c, '350 ask-d.txt exists 8');
      await c.sendLine('  Cancel  ');
      await expectLine(t, c, '200 cancelled', 'mixed case, with spaces');
      await f.quit(c);
      t.same(f.readFile('ask-o.txt'), Buffer.from('new'));
      t.same(f.readFile('ask-a.txt'), Buffer.from('original+add'));
      t.same(f.readFile('ask-c.txt'), Buffer.from('original'));
      t.same(f.readFile('ask-l.txt'), Buffer.from('low'));
      t.same(f.readFile('ask-d.txt'), Buffer.from('original'));
      t.same(f.tempFiles(), []);
    });

    t.test('PUT: after 350 any other line gets 503 and the PUT is cancelled', async (t) => {
      const f = uploads.in(t);
      f.writeFile('decide.txt', 'original');
      const c = await f.open();
      for (const other of ['PING', 'STAT decide.txt', 'OVERWRITE now', 'YES', 'new', 'PUT decide.txt 3 mode=overwrite']) {
        await c.sendLine('PUT decide.txt 3');
        await expectLine(t, c, '350 decide.txt exists 8');
        await requestCode(t, c, other, 503);
        await expectInSync(t, c, `after ${show(other)} the session is back to commands`);
        await requestCode(t, c, 'OVERWRITE', 503); // the PUT is no longer pending
      }
      await f.quit(c);
      t.same(f.readFile('decide.txt'), Buffer.from('original'), 'unchanged');
      t.same(f.tempFiles(), []);
    });

    t.test('PUT: OVERWRITE, APPEND, CANCEL with no PUT pending get 503', async (t) => {
      const f = uploads.in(t);
      f.writeFile('pending.txt', 'original');
      const c = await f.open();
      for (const word of ['OVERWRITE', 'APPEND', 'CANCEL', 'cancel']) await requestCode(t, c, word, 503);
      await c.sendLine('PUT pending.txt 3');
      await expectLine(t, c, '350 pending.txt exists 8');
      await c.sendLine('CANCEL');
      await expectLine(t, c, '200 cancelled');
      await requestCode(t, c, 'CANCEL', 503);
      await requestCode(t, c, 'PUT pending.txt 3 mode=new', 554);
      await requestCode(t, c, 'OVERWRITE', 503);
      const [, done] = await put(c, 'PUT pending.txt 3 mode=overwrite', 'abc');
      t.equal(done, `226 pending.txt 3 ${sha256('abc')}`);
      await requestCode(t, c, 'APPEND', 503);
      await expectInSync(t, c);
      await f.quit(c);
      t.same(f.readFile('pending.txt'), Buffer.from('abc'));
    });

    t.test('PUT sha256=: a match commits, a mismatch gets 451 and leaves the file as it was', async (t) => {
      const f = uploads.in(t);
      f.writeFile('sum-o.txt', 'original');
      f.writeFile('sum-a.txt', 'original');
      const c = await f.open();
      let [first, second] = await put(c, `PUT sum-h.txt 5 mode=new sha256=${sha256('hello')}`, 'hello');
      t.equal(first, '150 send 5 bytes');
      t.equal(second, `226 sum-h.txt 5 ${sha256('hello')}`, 'matching sha256 → 226');
      [first, second] = await put(c, `PUT sum-h2.txt 5 sha256=${sha256('hello')} mode=new`, 'hello');
      t.equal(second, `226 sum-h2.txt 5 ${sha256('hello')}`, 'options in any order');

      const wrong = sha256('something else');
      [first, second] = await put(c, `PUT sum-m.txt 5 mode=new sha256=${wrong}`, 'hello');
      t.equal(first, '150 send 5 bytes');
      t.match(second, /^451(?: |$)/, 'absent + mismatch → 451');
      await requestCode(t, c, 'STAT sum-m.txt', 550);
      [, second] = await put(c, `PUT sum-o.txt 5 mode=overwrite sha256=${wrong}`, 'hello');
      t.match(second, /^451(?: |$)/, 'overwrite + mismatch → 451');
      await c.sendLine('STAT sum-o.txt');
      await expectLine(t, c, `213 8 ${sha256('original')}`, 'the file is as it was');
      [, second] = await put(c, `PUT sum-a.txt 5 mode=append sha256=${wrong}`, 'hello');
      t.match(second, /^451(?: |$)/, 'append + mismatch → 451');
      await c.sendLine('PUT sum-o.txt 5');
      await expectLine(t, c, '350 sum-o.txt exists 8');
      await c.sendLine('OVERWRITE');
      await expectLine(t, c, '150 send 5 bytes');
      await c.send('hello');
      await expectCode(t, c, 226, 'ask + OVERWRITE, no sha256');
      await expectInSync(t, c, '451 does not close the connection');
      await f.quit(c);
      t.equal(f.readFile('sum-m.txt'), null, 'absent file still absent');
      t.same(f.readFile('sum-o.txt'), Buffer.from('hello'));
      t.same(f.readFile('sum-a.txt'), Buffer.from('original'), 'append with a mismatch: unchanged');
      t.same(f.readFile('sum-h.txt'), Buffer.from('hello'));
      t.same(f.tempFiles(), [], 'no temporary file left');
    });

    t.test('PUT: zero-byte uploads', async (t) => {
      const f = uploads.in(t);
      f.writeFile('zero-a.txt', 'abc');
      f.writeFile('zero-o.txt', 'abc');
      const c = await f.open();
      await c.send('PUT zero-z.txt 0 mode=new\nPING\n');
      await expectLine(t, c, '150 send 0 bytes', 'size 0 allowed');
      await expectLine(t, c, `226 zero-z.txt 0 ${EMPTY_SHA256}`, 'committed with no data at all');
      await expectLine(t, c, '200 PONG', 'the next line is a command');
      await c.sendLine('PUT zero-a.txt 0 mode=append');
      await expectLine(t, c, '150 send 0 bytes');
      await expectLine(t, c, `226 zero-a.txt 3 ${EMPTY_SHA256}`, 'append 0 bytes: size unchanged');
      await c.sendLine('PUT zero-o.txt 0 mode=overwrite');
      await expectLine(t, c, '150 send 0 bytes');
      await expectLine(t, c, `226 zero-o.txt 0 ${EMPTY_SHA256}`, 'overwrite with 0 bytes');
      await c.sendLine(`PUT zero-e.txt 0 mode=new sha256=${EMPTY_SHA256}`);
      await expectLine(t, c, '150 send 0 bytes');
      await expectLine(t, c, `226 zero-e.txt 0 ${EMPTY_SHA256}`, 'with the empty sha256');
      await f.quit(c);
      t.same(f.readFile('zero-z.txt'), Buffer.alloc(0));
      t.same(f.readFile('zero-a.txt'), Buffer.from('abc'));
      t.same(f.readFile('zero-o.txt'), Buffer.alloc(0));
      t.same(f.tempFiles(), []);
    });

    t.test('PUT: the data block is not parsed; bytes beyond it are commands', async (t) => {
      const f = uploads.in(t);
      const c = await f.open();
      const [, second] = await put(c, 'PUT surplus-p.txt 5 mode=new', 'PING\n');
      t.equal(second, `226 surplus-p.txt 5 ${sha256('PING\n')}`, 'a data block that looks like a command is data');
      await c.sendLine('PUT surplus-s.txt 4 mode=new');
      await expectLine(t, c, '150 send 4 bytes');
      await c.send('abcdPING\nECHO after\n');
      await expectLine(t, c, `226 surplus-s.txt 4 ${sha256('abcd')}`, 'the upload takes exactly 4 bytes');
      await expectLine(t, c, '200 PONG', 'the surplus is parsed as commands');
      await expectLine(t, c, '200 after');
      await f.quit(c);
      t.same(f.readFile('surplus-p.txt'), Buffer.from('PING\n'));
      t.same(f.readFile('surplus-s.txt'), Buffer.from('abcd'));
      t.same(f.tempFiles(), []);
    });

    t.test('PUT then GET: 3 MiB round trip, content exact', async (t) => {
      const f = uploads.in(t);
      const data = randomBytes(3 * 1024 * 1024 + 5);
      const c = await f.open();
      const [first, second] = await put(c, `PUT big.bin ${data.length} mode=new sha256=${sha256(data)}`, data);
      t.equal(first, `150 send ${data.length} bytes`);
      t.equal(second, `226 big.bin ${data.length} ${sha256(data)}`);
      await c.sendLine('GET big.bin');
      await expectLine(t, c, `150 ${data.length}`);
      t.ok((await c.readBytes(data.length)).equals(data), 'same bytes back');
      await expectLine(t, c, `226 ${sha256(data)}`);
      await f.quit(c);
      t.ok(f.readFile('big.bin')?.equals(data), 'on disk');
      t.same(f.tempFiles(), []);
    });

    t.test("PUT of two relay rings' worth with requests right behind its data, the first across the ring's end: stored exact, answered in order", async (t) => {
      // The workers relay's input ring (transport/thread-relay.ts) wraps twice under this upload, and the
      // first PING straddles its end, so the session reads it in two pieces; to the other models it is a large PUT.
      const f = uploads.in(t);
      const lineFor = (size: number, digest: string) => `PUT wrap.bin ${size} mode=new sha256=${digest}`;
      const size = 2 * RING_BYTES.input - 3 - Buffer.byteLength(`${lineFor(2 * RING_BYTES.input, EMPTY_SHA256)}\r\n`);
      const data = randomBytes(size);
      const c = await f.open();
      t.equal(await c.request(lineFor(size, sha256(data))), `150 send ${size} bytes`);
      await c.send(Buffer.concat([data, Buffer.from('PING\r\nPING\r\n')]));
      await expectLine(t, c, `226 wrap.bin ${size} ${sha256(data)}`);
      await expectLine(t, c, '200 PONG', 'the request across the ring\'s end');
      await expectLine(t, c, '200 PONG');
      await f.quit(c);
      t.ok(f.readFile('wrap.bin')?.equals(data), 'on disk, exact');
      t.same(f.tempFiles(), []);
    });
  });

  t.test('PUT: nothing outside the root is read or written through a symbolic link', async (t) => {
    const f = await start(t);
    const secretPath = path.join(f.outer, 'secret.txt');
    fs.writeFileSync(secretPath, 'secret');
    fs.symlinkSync('../secret.txt', f.file('app.txt'));
    fs.symlinkSync('../secret.txt', f.file('over.txt'));
    const c = await f.open();
    // A link is not a regular file: refused before any data (PROTOCOL.md, "Names that are not regular files").
    t.same(await put(c, 'PUT app.txt 3 mode=append', 'xyz'), ['554 app.txt exists and is not a regular file', null], 'append to a link');
    t.same(await put(c, 'PUT over.txt 3 mode=overwrite', 'xyz'), ['554 over.txt exists and is not a regular file', null], 'overwrite a link');
    t.match(await c.request('GET app.txt'), /^550 /, 'never served the outside file');
    await f.quit(c);
    t.ok(fs.lstatSync(f.file('app.txt')).isSymbolicLink() && fs.lstatSync(f.file('over.txt')).isSymbolicLink(), 'the links are left as they were');
    t.equal(fs.readFileSync(secretPath, 'utf8'), 'secret', 'the file outside the root is unchanged');
    t.same(fs.readdirSync(f.outer).sort(), ['root', 'secret.txt']);
    t.same(f.tempFiles(), []);
  });

  t.test('PUT: client EOF mid-upload discards the upload, no reply, no temporary file', async (t) => {
    const f = await start(t);
    f.writeFile('keep.txt', 'original');
    f.writeFile('log.txt', 'line1\n');
    let c = await f.open('half-closer');
    await c.sendLine('PUT keep.txt 100 mode=overwrite');
    await expectLine(t, c, '150 send 100 bytes');
    await c.send('x'.repeat(40));
    await c.end();
    await c.expectClose();
    t.pass('the server closed without a reply (none is owed)');
    t.same(f.readFile('keep.txt'), Buffer.from('original'), 'overwrite interrupted: target unchanged');
    t.same(f.tempFiles(), [], 'no temporary file once the session ended');

    c = await f.open('half-closer 2');
    await c.sendLine('PUT log.txt 50 mode=append');
    await expectLine(t, c, '150 send 50 bytes');
    await c.send('y'.repeat(20));
    await c.end();
    await c.expectClose();
    t.same(f.readFile('log.txt'), Buffer.from('line1\n'), 'append interrupted: target unchanged');
    t.same(f.tempFiles(), []);

    c = await f.open('dropper');
    await c.sendLine('PUT fresh.txt 100 mode=new');
    await expectLine(t, c, '150 send 100 bytes');
    await c.send('z'.repeat(40));
    c.destroy();
    // The next session (with sequential: only once the dropped one ended) sees no trace.
    const next = await f.open('checker');
    await eventually(() => f.tempFiles().length === 0, 'the dropped upload\'s temporary file is removed');
    await requestCode(t, next, 'STAT fresh.txt', 550);
    await next.sendLine('STAT keep.txt');
    await expectLine(t, next, `213 8 ${sha256('original')}`);
    await next.sendLine('LIST');
    await expectLine(t, next, '211 2', 'only keep.txt and log.txt');
    await next.readLines(2);
    await f.quit(next);
    t.equal(f.readFile('fresh.txt'), null, 'the dropped upload created nothing');
  });

  t.test('PUT: concurrent appends to one name all land whole', async (t) => {
    const f = await start(t, { threads: 5 });
    const count = 5;
    const size = 256 * 1024;
    const blocks = Array.from({ length: count }, (_, i) => Buffer.alloc(size, 0x41 + i));
    // All five hold their 150 before any sends data, so the uploads overlap. Not with
    // `sequential`: it serves the five one after another (the isolation rule must hold
    // there too, serially), and a barrier would deadlock on the clients still waiting.
    const ready = model === 'sequential' ? null : barrier(count);
    const one = async (i: number): Promise<string> => {
      const c = await f.open(`appender ${i}`);
      await c.sendLine(`PUT shared.log ${size} mode=append`);
      const first = await c.readLine();
      if (first !== `150 send ${size} bytes`) throw new Error(`appender ${i}: PUT got ${first}`);
      await ready?.wait();
      const block = blocks[i] ?? Buffer.alloc(0);
      await c.send(block.subarray(0, size / 2));
      await delay(2);
      await c.send(block.subarray(size / 2));
      const line = await c.readLine();
      await f.quit(c);
      return line;
    };
    const replies = await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
    const content = f.readFile('shared.log') ?? Buffer.alloc(0);
    t.equal(content.length, count * size, 'every append landed');
    const seen = new Set<number>();
    for (let k = 0; k < count; k++) {
      const piece = content.subarray(k * size, (k + 1) * size);
      const letter = piece[0] ?? -1;
      t.ok(piece.every((b) => b === letter), `block at position ${k} is whole (one writer)`);
      seen.add(letter);
    }
    t.equal(seen.size, count, 'five distinct blocks');
    for (const [i, reply] of replies.entries()) {
      const match = /^226 shared\.log (\d+) ([0-9a-f]{64})$/.exec(reply);
      t.ok(match, `appender ${i}: ${reply}`);
      if (match === null) continue;
      t.equal(match[2], sha256(blocks[i] ?? ''), `appender ${i}: sha256 of its own block`);
      const position = Number(match[1]) / size - 1;
      t.equal(content[position * size], 0x41 + i, `appender ${i}: its new size says where its block is (${position})`);
    }
    t.same(f.tempFiles(), []);
  });

  t.test('PUT: of two concurrent overwrites, one wins whole', async (t) => {
    const f = await start(t);
    const a = Buffer.alloc(300 * 1024, 'X');
    const b = Buffer.alloc(200 * 1024, 'Y');
    f.writeFile('target', 'original');
    const ready = model === 'sequential' ? null : barrier(2); // see the appends test
    const one = async (data: Buffer, label: string): Promise<string> => {
      const c = await f.open(label);
      await c.sendLine(`PUT target ${data.length} mode=overwrite`);
      const first = await c.readLine();
      if (first !== `150 send ${data.length} bytes`) throw new Error(`${label}: PUT got ${first}`);
      await ready?.wait();
      await c.send(data.subarray(0, 1000));
      await delay(2);
      await c.send(data.subarray(1000));
      const line = await c.readLine();
      await f.quit(c);
      return line;
    };
    const [ra, rb] = await Promise.all([one(a, 'writer X'), one(b, 'writer Y')]);
    t.equal(ra, `226 target ${a.length} ${sha256(a)}`);
    t.equal(rb, `226 target ${b.length} ${sha256(b)}`);
    const content = f.readFile('target') ?? Buffer.alloc(0);
    t.ok(content.equals(a) || content.equals(b), `one overwrite won whole (${content.length} bytes)`);
    t.same(f.tempFiles(), []);
  });

  // -- Limits and closing --------------------------------------------------

  t.test('activity keeps a session alive; a partial line does not, for ever', async (t) => {
    // A 3 s timeout and a PING every 400 ms for 4 s: a busy machine may stall this process for a while
    // without the session timing out, and it still outlives its idle timeout only by being active.
    const f = await start(t, { idleTimeoutSeconds: 3 });
    const c = await f.open('active');
    for (let i = 0; i < 10; i++) {
      await delay(400);
      await c.sendLine('PING');
      await expectLine(t, c, '200 PONG', `still alive after ${(i + 1) * 400} ms of activity`);
    }
    await c.send('PIN');
    await expectLine(t, c, '421 idle timeout', 'idle in the middle of a line');
    await c.expectClose();
  });

  t.test('idle timeout of 1 s', async (t) => {
    const idle = await start(t, { idleTimeoutSeconds: 1 });
    t.test('idle timeout: 421 idle timeout, then close', async (t) => {
      const f = idle.in(t);
      const c = await f.open('idler');
      await expectLine(t, c, '421 idle timeout');
      await c.expectClose();
    });

    t.test('idle timeout mid-upload: 421 and the upload is discarded', async (t) => {
      const f = idle.in(t);
      f.writeFile('keep.txt', 'original');
      const c = await f.open();
      await c.sendLine('PUT keep.txt 100 mode=overwrite');
      await expectLine(t, c, '150 send 100 bytes');
      await c.send('x'.repeat(10));
      await expectLine(t, c, '421 idle timeout');
      await c.expectClose();
      t.same(f.readFile('keep.txt'), Buffer.from('original'), 'unchanged');
      t.same(f.tempFiles(), [], 'no temporary file left');
    });
  });

  t.test('max connections: beyond the limit, 421 too many connections, then close', async (t) => {
    const f = await start(t, { maxConnections: 2 });
    const first = await f.open('held 1');
    // With sequential the second waits ungreeted: waiting counts toward the limit too.
    const second = await f.connect('held 2');
    if (model !== 'sequential') await expectLine(t, second, f.greeting, 'the second is served');
    await eventually(() => f.acceptedConnections() === 2, 'the server took in both held connections');
    const third = await f.connect('third');
    await expectLine(t, third, '421 too many connections');
    await third.expectClose();
    await expectInSync(t, first, 'the held connection is unaffected');

    // A freed place can be taken again.
    await f.quit(first);
    if (model === 'sequential') await expectLine(t, second, f.greeting, 'the waiting one is served once the first is gone');
    const fourth = await f.connect('fourth');
    await f.quit(second);
    await expectLine(t, fourth, f.greeting, 'a new connection is served once a place is free');
    await f.quit(fourth);
  });

  t.test('graceful shutdown: idle sessions get 421, an upload in progress finishes, new connections are refused', async (t) => {
    const f = await start(t, { graceSeconds: 5 });
    const data = randomBytes(10_000);
    const uploader = await f.open('uploader');
    await uploader.sendLine(`PUT up.bin ${data.length} mode=new`);
    await expectLine(t, uploader, `150 send ${data.length} bytes`);
    await uploader.send(data.subarray(0, 4000));
    // With sequential this one waits behind the upload, ungreeted; else it is an idle session.
    const idle = await f.connect('idle');
    if (model !== 'sequential') await expectLine(t, idle, f.greeting);
    await eventually(() => f.acceptedConnections() === 2, 'the server took in the second connection');

    const closing = f.server.server.close();
    await expectLine(t, idle, '421 shutting down', 'the idle (or waiting) connection');
    await idle.expectClose();

    let refused: string;
    try {
      const late = await WireClient.connect(f.port, { label: 'late' });
      try {
        refused = await late.readLine();
        await late.expectClose();
      } finally {
        late.destroy();
      }
    } catch (error) {
      refused = (error as NodeJS.ErrnoException).code ?? String(error);
    }
    t.match(refused, /^(?:421 shutting down|ECONNREFUSED|ECONNRESET)$/, `a new connection is refused (${refused})`);

    await uploader.send(data.subarray(4000));
    await expectLine(t, uploader, `226 up.bin ${data.length} ${sha256(data)}`, 'the upload in progress finishes');
    // Now idle, the session is owed the same 421 as the others (not a silent close when the grace time runs out).
    const after = await uploader.readLine().catch((error: unknown) => `(no line: ${error instanceof Error ? error.message : String(error)})`);
    t.equal(after, '421 shutting down', 'then, idle, the session is told');
    await uploader.expectClose();
    await closing;
    t.ok(f.readFile('up.bin')?.equals(data), 'the upload is on disk');
    t.same(f.tempFiles(), []);
  });
}

// ---------------------------------------------------------------------------
// Model-specific order of events (no timing assertions)

function registerOrderTests(t: Tap, model: ServerModelName): void {
  if (model === 'sequential') {
    t.test('order (sequential): a second client is greeted only after the first quits', async (t) => {
      const f = await WireFixture.start(t, model);
      const first = await f.open('first');
      const second = await f.connect('second');
      await eventually(() => f.acceptedConnections() === 2, 'the server took in the second connection');
      for (let i = 0; i < 3; i++) await expectInSync(t, first, `first: round trip ${i + 1}`);
      t.equal(second.received, 0, 'the second has received nothing while the first is open');
      await f.quit(first);
      await expectLine(t, second, f.greeting, 'the second is greeted after the first quit');
      await f.quit(second);
    });
  }

  if (model === 'workers') {
    t.test('order (workers, 2 threads): the third client is greeted only when one of the first two quits', async (t) => {
      const f = await WireFixture.start(t, model, { threads: 2 });
      const first = await f.open('first');
      const second = await f.open('second');
      const third = await f.connect('third');
      await eventually(() => f.acceptedConnections() === 3, 'the server took in the third connection');
      await expectInSync(t, first, 'first: round trip');
      await expectInSync(t, second, 'second: round trip');
      await expectInSync(t, first, 'first: another round trip');
      t.equal(third.received, 0, 'the third has received nothing while both threads are busy');
      await f.quit(second);
      await expectLine(t, third, f.greeting, 'the third is greeted once a thread is free');
      await expectInSync(t, third, 'third: served');
      await expectInSync(t, first, 'first: still served');
      await f.quit(first);
      await f.quit(third);
    });
  }

  if (model === 'async') {
    t.test('order (async): five clients are all greeted while none has quit', async (t) => {
      const f = await WireFixture.start(t, model);
      const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => f.open(`client ${i + 1}`)));
      t.equal(clients.length, 5, 'all five greeted, none has quit');
      for (const [i, c] of clients.entries()) await expectInSync(t, c, `client ${i + 1} served`);
      for (const c of clients) await f.quit(c);
    });
  }
}

/** True when one of this process's descriptors is `file` (Linux: /proc/self/fd). */
function openHere(file: string): boolean {
  const real = fs.realpathSync(file);
  return fs.readdirSync('/proc/self/fd').some((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === real;
    } catch {
      return false; // closed meanwhile (the readdir's own descriptor, say)
    }
  });
}
