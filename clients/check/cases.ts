/**
 * The conformance cases: one per requirement of protocol/PROTOCOL.md, in the
 * order of its sections, each naming the section it checks. A case follows the
 * page, not socklab's servers: it checks reply codes, and reply text only where
 * the page gives it a meaning (ECHO's text, sizes, sha256s, counts), since
 * "clients act on the code alone".
 *
 * Adding a case is one entry: an id, the section, the requirement in a line,
 * and what to send and expect (steps.ts and conversation.ts do the rest).
 * Every case needs a switch of test/helpers/broken-server.ts that makes it fail.
 */
import { nameProblem } from '../../protocol/index.js';
import type { Conversation } from './conversation.js';
import {
  echoLineOf,
  EMPTY_SHA256,
  expectGet,
  expectStat,
  firstField,
  LINE_LIMIT,
  putLine,
  sendData,
  sha256,
  TOO_LARGE,
  upload,
  utf8,
  type CaseContext,
} from './steps.js';

/** PROTOCOL.md's sections, as headed there. */
export const SECTIONS = ['Transport and framing', 'Greeting', 'Commands', 'File names', 'Upload', 'Limits and closing'] as const;
export type Section = (typeof SECTIONS)[number];

export interface CheckCase {
  /** Stable id, `area/what` (what --case matches). */
  readonly id: string;
  readonly section: Section;
  /** What PROTOCOL.md requires, in one line. */
  readonly requirement: string;
  /** Set when no later case can pass if this one fails: why (the later cases are then not run). */
  readonly gate?: string;
  run(t: CaseContext): Promise<void>;
}

const cases: CheckCase[] = [];

function check(id: string, section: Section, requirement: string, run: (t: CaseContext) => Promise<void>, gate?: string): void {
  cases.push({ id, section, requirement, run, ...(gate === undefined ? {} : { gate }) });
}

/** Each line in turn must get `code` (a table of requests breaking one rule). */
async function eachGets(c: Conversation, lines: readonly string[], code: number): Promise<void> {
  for (const line of lines) await c.request(line, code);
}

/** The connection still works: PING gets 200. */
async function stillUsable(c: Conversation): Promise<void> {
  await c.request('PING', 200, { what: '200 (the connection stays usable)' });
}

// --- Greeting ----------------------------------------------------------------

check('greeting', 'Greeting', 'the server speaks first: 220 socklab/1 <model> ready', async (t) => {
  const c = await t.connect();
  await c.reply(220, { what: '220 socklab/1 <model> ready, before the client sends anything', text: /^socklab\/1 \S+/ });
}, 'every other case starts by reading the greeting');

check('greeting/requests-before-it', 'Limits and closing', 'requests sent before the greeting are answered in order once the client is served', async (t) => {
  const c = await t.connect();
  await c.sendRaw(utf8.encode('PING\nECHO early\n'), ['(the greeting)', 'PING', 'ECHO early']);
  await c.reply(220, { what: '220 first, then the replies to what was sent before it' });
  await c.reply(200, { what: '200 for PING' });
  await c.reply(200, { text: 'early' });
});

// --- Transport and framing ---------------------------------------------------

check('framing/crlf', 'Transport and framing', 'a CR right before the LF is dropped', async (t) => {
  const c = await t.open();
  await c.sendRaw(utf8.encode('PING\r\n'), 'PING\\r\\n');
  await c.reply(200);
  await c.sendRaw(utf8.encode('ECHO crlf\r\n'), 'ECHO crlf\\r\\n');
  await c.reply(200, { text: 'crlf' });
});

check('framing/invalid-utf8', 'Transport and framing', 'a line that is not valid UTF-8 gets 500', async (t) => {
  const c = await t.open();
  await c.sendRaw(Uint8Array.from([...utf8.encode('ECHO '), 0xff, 0xfe, 0xc3, 0x0a]), 'ECHO \\xff\\xfe\\xc3');
  await c.reply(500);
});

check('framing/line-at-limit', 'Transport and framing', 'a request line of 1024 bytes (LF excluded) is served', async (t) => {
  const c = await t.open();
  const line = echoLineOf(LINE_LIMIT);
  await c.request(line, 200, { text: line.slice('ECHO '.length), what: '200 <the 1019 x>', shown: line });
});

check('framing/line-too-long', 'Transport and framing', 'a line over 1024 bytes gets 500 line too long, then the server closes', async (t) => {
  const c = await t.open();
  await c.send(echoLineOf(LINE_LIMIT + 1));
  await c.reply(500);
  await c.expectClosed('500');
});

check('framing/line-limit-in-bytes', 'Transport and framing', 'the 1024 limit counts bytes, not characters (605 characters, 1205 bytes: too long)', async (t) => {
  const c = await t.open();
  await c.send(echoLineOf(1205, 'я'));
  await c.reply(500);
  await c.expectClosed('500');
});

check('framing/case-insensitive', 'Transport and framing', 'command words are case-insensitive', async (t) => {
  const c = await t.open();
  await c.request('ping', 200);
  await c.request('Ping', 200);
  await c.request('echo Mixed Case', 200, { text: 'Mixed Case' });
});

check('framing/spaces', 'Transport and framing', 'arguments are separated by one or more spaces; leading and trailing spaces are ignored', async (t) => {
  const c = await t.open();
  await c.request('   PING   ', 200);
  await c.request(`STAT   ${t.file('absent.txt')}   `, 550);
});

check('framing/empty-line', 'Transport and framing', 'an empty line is ignored (no reply)', async (t) => {
  const c = await t.open();
  await c.sendRaw(utf8.encode('\n\r\nPING\n'), '(empty line) (\\r\\n) PING');
  await c.reply(200, { what: '200 for the PING, the empty lines getting no reply' });
  await c.request('ECHO next', 200, { text: 'next' });
});

check('framing/pipelining', 'Transport and framing', 'pipelined requests are answered strictly in order', async (t) => {
  const c = await t.open();
  const name = t.file('piped.txt');
  const content = 'pipelined\n';
  await upload(c, name, content);
  const missing = t.file('absent.txt');
  const requests = ['PING', 'ECHO one', `STAT ${missing}`, `GET ${name}`, 'HELP', 'ECHO two'];
  await c.sendRaw(utf8.encode(requests.map((r) => `${r}\n`).join('')), requests);
  await c.reply(200, { what: '200 for PING' });
  await c.reply(200, { text: 'one' });
  await c.reply(550, { what: `550 for STAT ${missing}` });
  await c.reply(150, { text: firstField(String(content.length), 'size'), what: `150 ${content.length} for GET` });
  await c.data(content.length, 'the GET data');
  await c.reply(226, { text: firstField(sha256(utf8.encode(content)), 'sha256'), what: `226 ${sha256(utf8.encode(content))}` });
  await c.reply(214, { what: '214 for HELP' });
  await c.reply(200, { text: 'two' });
});

check('framing/pipelining-after-data', 'Transport and framing', 'requests sent right behind an upload\'s data are answered after its 226', async (t) => {
  const c = await t.open();
  const name = t.file('behind.txt');
  const data = utf8.encode('data, then two requests in the same write\n');
  await c.request(putLine(name, data.length), 150);
  await c.sendRaw(Buffer.concat([data, utf8.encode('PING\nECHO after\n')]), [`(${data.length} bytes of data, then in the same write:)`, 'PING', 'ECHO after']);
  await c.reply(226, { what: `226 ${name} ${data.length} ${sha256(data)}` });
  await c.reply(200, { what: '200 for PING' });
  await c.reply(200, { text: 'after' });
});

check('framing/eof-discards-upload', 'Transport and framing', 'a client that closes mid-upload ends its session; the upload is discarded', async (t) => {
  const setup = await t.open();
  const existing = t.file('existing.txt');
  await upload(setup, existing, 'before\n');
  setup.close();
  const fresh = t.file('fresh.txt');
  for (const [name, mode] of [[fresh, 'new'], [existing, 'overwrite']] as const) {
    const c = await t.open();
    await c.request(putLine(name, 100, `mode=${mode}`), 150);
    await c.sendRaw(new Uint8Array(40).fill(0x61), '(40 of the 100 bytes, then EOF)');
    await c.end();
    await c.expectClosed('the session ends at EOF', { ignoringLines: true });
  }
  const after = await t.open();
  await after.request(`STAT ${fresh}`, 550, { what: `550: ${fresh} was never completed` });
  await expectStat(after, existing, 'before\n');
});

// --- Commands ----------------------------------------------------------------

check('ping', 'Commands', 'PING gets 200 PONG', async (t) => {
  const c = await t.open();
  await c.request('PING', 200);
});

check('echo', 'Commands', 'ECHO <text> gets 200 <text>: the text after the first space, byte for byte', async (t) => {
  const c = await t.open();
  await c.request('ECHO hello', 200, { text: 'hello' });
  await c.request('ECHO   two  spaces  ', 200, { text: '  two  spaces  ' });
  await c.request('ECHO привет, мир', 200, { text: 'привет, мир' });
});

check('echo/empty', 'Commands', 'ECHO with no text gets 200 (empty text)', async (t) => {
  const c = await t.open();
  await c.request('ECHO', 200, { text: '' });
});

check('help', 'Commands', 'HELP gets 214 and the commands on one line', async (t) => {
  const c = await t.open();
  await c.sendRaw(utf8.encode('HELP\nPING\n'), ['HELP', 'PING']);
  await c.reply(214);
  await c.reply(200, { what: '200 for PING, right after the one 214 line' });
});

check('list', 'Commands', 'LIST gets 211 <n>, then n lines <name> <size> <mtime>, sorted by name bytewise, mtime ISO 8601 UTC', async (t) => {
  const c = await t.open();
  const files = [
    [t.file('a.txt'), 'lower-case a\n'],
    [t.file('B.txt'), 'upper-case B, sorted before a\n'],
    [t.file('файл.txt'), 'Cyrillic, sorted after Latin\n'],
  ] as const;
  for (const [name, content] of files) await upload(c, name, content);
  const header = await c.request('LIST', 211, { text: /^\d+( |$)/, what: '211 <n>' });
  const count = Number(header.text.split(' ')[0]);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(await c.line(`line ${i + 1} of ${count}: <name> <size> <mtime>`));
  const entries = lines.map((line) => line.split(' '));
  for (const [i, [name, size, mtime]] of entries.entries()) {
    const line = lines[i]!;
    if (name === undefined || nameProblem(name) !== null) c.fail('only valid file names listed', [line]);
    if (size === undefined || !/^[0-9]+$/.test(size)) c.fail('<name> <size> <mtime>, size in bytes', [line]);
    if (mtime === undefined || !isIsoUtc(mtime)) c.fail('mtime as ISO 8601 UTC (such as 2026-12-06T01:02:03Z)', [line]);
  }
  const names = entries.map((e) => e[0] ?? '');
  const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (names.join('\n') !== sorted.join('\n')) c.fail('names sorted bytewise (UTF-8)', names.slice(0, 6));
  for (const [name, content] of files) {
    const entry = entries.find((e) => e[0] === name);
    const size = utf8.encode(content).length;
    if (entry?.[1] !== String(size)) c.fail(`${name} ${size} <mtime> listed`, entry === undefined ? lines.slice(0, 6) : [entry.join(' ')]);
  }
  await c.request('PING', 200, { what: `200 for PING, right after the ${count} lines` });
});

check('stat', 'Commands', 'STAT <name> gets 213 <size> <sha256>', async (t) => {
  const c = await t.open();
  const name = t.file('stat.txt');
  await upload(c, name, 'three lines\nof text\nhere\n');
  await expectStat(c, name, 'three lines\nof text\nhere\n');
});

check('stat/missing', 'Commands', 'STAT of a name that is not there gets 550', async (t) => {
  const c = await t.open();
  await c.request(`STAT ${t.file('absent.txt')}`, 550);
});

check('stat/bad-name', 'Commands', 'STAT of a name that is not a name gets 553', async (t) => {
  const c = await t.open();
  await eachGets(c, ['STAT ../etc/passwd', 'STAT .hidden'], 553);
});

check('get', 'Commands', 'GET gets 150 <size>, exactly size bytes, then 226 <sha256>', async (t) => {
  const c = await t.open();
  const name = t.file('get.txt');
  const content = 'line one\r\nстрока два\n226 not a reply\n\nno newline at the end';
  await upload(c, name, content);
  await expectGet(c, name, content);
  await c.request('PING', 200, { what: '200 for PING, right after the 226 (no byte more in between)' });
});

check('get/empty', 'Commands', 'GET of an empty file gets 150 0, no data, 226 <sha256 of nothing>', async (t) => {
  const c = await t.open();
  const name = t.file('empty.txt');
  await upload(c, name, '');
  await c.request(`GET ${name}`, 150, { text: /^0( |$)/, what: '150 0' });
  await c.reply(226, { text: firstField(EMPTY_SHA256, 'sha256'), what: `226 ${EMPTY_SHA256}` });
});

check('get/missing', 'Commands', 'GET of a name that is not there gets 550', async (t) => {
  const c = await t.open();
  await c.request(`GET ${t.file('absent.txt')}`, 550);
  await stillUsable(c);
});

check('get/bad-name', 'Commands', 'GET of a name that is not a name gets 553', async (t) => {
  const c = await t.open();
  await eachGets(c, ['GET ../etc/passwd', 'GET a/b'], 553);
});

check('quit', 'Commands', 'QUIT gets 221 bye, then the server closes', async (t) => {
  const c = await t.open();
  await c.request('QUIT', 221);
  await c.expectClosed('221');
});

check('unknown-command', 'Commands', 'anything else gets 500 unknown command, and the connection stays usable', async (t) => {
  const c = await t.open();
  await eachGets(c, ['FROB', 'DELETE x.txt', 'PINGPONG'], 500);
  await stillUsable(c);
});

/** `501` for a wrong argument count or form, one case per command. */
const WRONG_ARGUMENTS: readonly [string, readonly string[]][] = [
  ['PING', ['PING now']],
  ['LIST', ['LIST everything']],
  ['HELP', ['HELP PUT']],
  ['STAT', ['STAT', 'STAT a.txt b.txt']],
  ['GET', ['GET', 'GET a.txt b.txt']],
  ['PUT', ['PUT', 'PUT a.txt']],
  ['QUIT', ['QUIT now']],
];
for (const [command, lines] of WRONG_ARGUMENTS) {
  check(`arguments/${command.toLowerCase()}`, 'Commands', `${command} with a wrong argument count gets 501`, async (t) => {
    const c = await t.open();
    await eachGets(c, lines, 501);
    await stillUsable(c);
  });
}

// --- File names --------------------------------------------------------------

check('names/accepted', 'File names', 'names of letters (any script), digits, ".", "_", "-" are names', async (t) => {
  const c = await t.open();
  for (const suffix of ['заметки-1.txt', 'a..b', 'Ünïcödé_名前.md', '2024.log']) {
    const name = t.file(suffix);
    await upload(c, name, `${suffix}\n`);
    await expectStat(c, name, `${suffix}\n`);
  }
});

check('names/longest', 'File names', 'a name of 128 code points, or of 255 bytes of UTF-8, is a name', async (t) => {
  const c = await t.open();
  const prefix = t.file('');
  const longestInCodePoints = prefix + 'я'.repeat(128 - [...prefix].length);
  const longestInBytes = prefix + '語'.repeat(Math.floor((255 - prefix.length) / 3)) + 'x'.repeat((255 - prefix.length) % 3);
  for (const name of [longestInCodePoints, longestInBytes]) {
    await c.request(`STAT ${name}`, 550, { what: '550 (a valid name, not there), not 553' });
  }
});

check('names/case-sensitive', 'File names', 'names are case-sensitive', async (t) => {
  const c = await t.open();
  await upload(c, t.file('Case.txt'), 'upper\n');
  await c.request(`STAT ${t.file('case.txt')}`, 550, { what: `550: ${t.file('case.txt')} is another name` });
  await upload(c, t.file('case.txt'), 'lower, longer\n', { mode: 'new' });
  await expectStat(c, t.file('Case.txt'), 'upper\n');
});

/** Names that are not names: each gets `553` (STAT here; GET and PUT have their own cases). */
const BAD_NAMES: readonly [string, string, readonly string[]][] = [
  ['parent', 'a name cannot climb out of the root (../x)', ['../x', '..', '../../etc/passwd']],
  ['slash', 'a name has no "/"', ['a/b', '/etc/passwd']],
  ['backslash', 'a name has no "\\"', ['a\\b', '..\\x']],
  ['leading-dot', 'a name does not start with "." (.hidden)', ['.hidden', '.x.txt']],
  ['first-character', 'the first character is a letter or digit', ['-a', '_a']],
  ['punctuation', 'only ".", "_" and "-" besides letters and digits', ['a*b', 'a:b', 'a?b', 'a~b', 'a"b']],
  ['control-character', 'a name has no control character', ['a\x01b', 'a\tb', 'a\x7fb']],
  ['too-many-code-points', 'a name has at most 128 code points', ['n'.repeat(129)]],
  ['too-many-bytes', 'a name has at most 255 bytes of UTF-8 (here 256 bytes, 86 code points)', ['語'.repeat(85) + 'x']],
  ['not-nfc', 'a name is NFC-normalized (here e + combining acute)', ['cafe\u0301.txt']],
];
for (const [slug, rule, names] of BAD_NAMES) {
  check(`names/${slug}`, 'File names', `${rule}: 553 bad name`, async (t) => {
    const c = await t.open();
    await eachGets(
      c,
      names.map((name) => `STAT ${name}`),
      553,
    );
  });
}

// --- Upload --------------------------------------------------------------------

check('put/new-file', 'Upload', 'PUT of an absent name (mode ask by default) gets 150, then 226 <name> <size> <sha256>; the file is there', async (t) => {
  const c = await t.open();
  const name = t.file('new.txt');
  const content = 'hello from socklab check\nline 2\n';
  await upload(c, name, content);
  await expectStat(c, name, content);
  await expectGet(c, name, content);
});

check('put/empty', 'Upload', 'size 0 is allowed: 150, no data, 226 <name> 0 <sha256 of nothing>', async (t) => {
  const c = await t.open();
  const name = t.file('zero.txt');
  await upload(c, name, '');
  await expectStat(c, name, '');
});

check('put/many-chunks', 'Upload', 'the server reads all size bytes, however they arrive (256 KiB)', async (t) => {
  const c = await t.open();
  const name = t.file('big.txt');
  const line = 'a line of a bigger text file, to be sent in more than one segment\n';
  const content = utf8.encode(line.repeat(Math.ceil((256 * 1024) / line.length)));
  await upload(c, name, content);
  await expectGet(c, name, content);
});

check('put/any-bytes', 'Upload', 'the data is bytes: all 256 byte values come back as sent', async (t) => {
  const c = await t.open();
  const name = t.file('bytes.bin');
  const ascending = Array.from({ length: 256 }, (_, i) => i);
  const content = Uint8Array.from([...ascending, 0x0d, 0x0a, 0x0d, 0x0a, ...ascending.reverse()]);
  await upload(c, name, content);
  await expectGet(c, name, content);
});

check('put/mode-new', 'Upload', 'mode=new: absent gets 150; present gets 554 <name> exists and nothing else happens', async (t) => {
  const c = await t.open();
  const name = t.file('new-mode.txt');
  await upload(c, name, 'first\n', { mode: 'new' });
  await c.request(putLine(name, 7, 'mode=new'), 554);
  await stillUsable(c);
  await expectStat(c, name, 'first\n');
});

check('put/overwrite', 'Upload', 'mode=overwrite on a present file gets 150; 226 carries the new size', async (t) => {
  const c = await t.open();
  const name = t.file('overwrite.txt');
  await upload(c, name, 'old content, longer than the new\n');
  await upload(c, name, 'new\n', { mode: 'overwrite' });
  await expectGet(c, name, 'new\n');
});

check('put/append', 'Upload', 'mode=append adds to the end; 226 <name> <old + new size> <sha256 of the bytes received>', async (t) => {
  const c = await t.open();
  const name = t.file('append.txt');
  await upload(c, name, 'first line\n');
  await upload(c, name, 'second line\n', { mode: 'append', newSize: 23 });
  await expectStat(c, name, 'first line\nsecond line\n');
});

check('put/append-absent', 'Upload', 'mode=append on an absent name gets 150 and creates the file', async (t) => {
  const c = await t.open();
  const name = t.file('append-new.txt');
  await upload(c, name, 'only line\n', { mode: 'append' });
  await expectStat(c, name, 'only line\n');
});

/** A present file, and a PUT in mode ask that must get `350 <name> exists <current size>`. */
async function askAbout(t: CaseContext, c: Conversation, suffix: string, current: string, size: number, options = 'mode=ask'): Promise<string> {
  const name = t.file(suffix);
  await upload(c, name, current);
  await expectExists(c, name, utf8.encode(current).length, size, options);
  return name;
}

async function expectExists(c: Conversation, name: string, currentSize: number, size: number, options: string): Promise<void> {
  await c.request(putLine(name, size, options), 350, {
    what: `350 ${name} exists ${currentSize}`,
    text: (text) => (text.split(' ').at(-1) === String(currentSize) ? null : `(the last field must be the current size, ${currentSize})`),
  });
}

check('put/ask-350', 'Upload', 'mode=ask, given or by default, on a present file gets 350 <name> exists <current size>', async (t) => {
  const c = await t.open();
  const name = await askAbout(t, c, 'ask.txt', 'twelve bytes', 5);
  await c.request('CANCEL', 200);
  await expectExists(c, name, 12, 5, '');
  await c.request('CANCEL', 200);
});

check('put/350-overwrite', 'Upload', 'after 350, OVERWRITE gets 150; the data replaces the file', async (t) => {
  const c = await t.open();
  const name = await askAbout(t, c, 'ask-overwrite.txt', 'old\n', 9);
  await c.request('OVERWRITE', 150);
  await sendData(c, name, utf8.encode('replaced\n'));
  await expectGet(c, name, 'replaced\n');
});

check('put/350-append', 'Upload', 'after 350, APPEND gets 150; the data is added to the end', async (t) => {
  const c = await t.open();
  const name = await askAbout(t, c, 'ask-append.txt', 'old\n', 6);
  await c.request('APPEND', 150);
  await sendData(c, name, utf8.encode('added\n'), 10);
  await expectGet(c, name, 'old\nadded\n');
});

check('put/350-cancel', 'Upload', 'after 350, CANCEL gets 200 cancelled; the file is unchanged', async (t) => {
  const c = await t.open();
  const name = await askAbout(t, c, 'ask-cancel.txt', 'keep me\n', 4);
  await c.request('CANCEL', 200);
  await expectStat(c, name, 'keep me\n');
});

check('put/350-any-case', 'Upload', 'the answer to 350 is case-insensitive', async (t) => {
  const c = await t.open();
  const name = await askAbout(t, c, 'ask-case.txt', 'old\n', 4);
  await c.request('cancel', 200);
  await expectExists(c, name, 4, 4, 'mode=ask');
  await c.request('Overwrite', 150);
  await sendData(c, name, utf8.encode('new\n'));
});

check('put/350-other-line', 'Upload', 'after 350 any other line gets 503 and the PUT is cancelled', async (t) => {
  const c = await t.open();
  const name = await askAbout(t, c, 'ask-other.txt', 'unchanged\n', 4);
  await c.request('PING', 503);
  await c.request('OVERWRITE', 503, { what: '503 (no PUT pending any more)' });
  await expectStat(c, name, 'unchanged\n');
});

check('put/350-keeps-sha256', 'Upload', "the PUT's sha256= still holds after 350 and OVERWRITE: a mismatch gets 451, the file as it was", async (t) => {
  const c = await t.open();
  const name = t.file('ask-sha.txt');
  await upload(c, name, 'kept\n');
  await expectExists(c, name, 5, 4, `sha256=${sha256(utf8.encode('not these bytes'))}`);
  await c.request('OVERWRITE', 150);
  await c.sendRaw(utf8.encode('new\n'), '(4 bytes of data)');
  await c.reply(451);
  await expectStat(c, name, 'kept\n');
});

check('put/decision-without-put', 'Upload', 'OVERWRITE, APPEND or CANCEL with no PUT pending gets 503', async (t) => {
  const c = await t.open();
  await eachGets(c, ['OVERWRITE', 'APPEND', 'CANCEL'], 503);
  await stillUsable(c);
});

check('put/options-any-order', 'Upload', 'PUT options come in any order', async (t) => {
  const c = await t.open();
  const name = t.file('order.txt');
  await upload(c, name, 'first\n');
  const data = utf8.encode('second\n');
  await upload(c, name, data, { options: `sha256=${sha256(data)} mode=overwrite` });
  await expectStat(c, name, data);
});

check('put/sha256-match', 'Upload', 'sha256=<hex> matching the data: 226', async (t) => {
  const c = await t.open();
  const name = t.file('sha-ok.txt');
  const data = utf8.encode('checked on arrival\n');
  await upload(c, name, data, { options: `mode=new sha256=${sha256(data)}` });
  await expectStat(c, name, data);
});

check('put/sha256-mismatch', 'Upload', 'sha256=<hex> not matching the data: 451, nothing stored (the name stays absent)', async (t) => {
  const c = await t.open();
  const name = t.file('sha-bad.txt');
  const data = utf8.encode('these bytes\n');
  await c.request(putLine(name, data.length, `sha256=${sha256(utf8.encode('other bytes\n'))}`), 150);
  await c.sendRaw(data, `(${data.length} bytes of data)`);
  await c.reply(451);
  await c.request(`STAT ${name}`, 550, { what: `550: ${name} was not stored` });
});

check('put/sha256-mismatch-existing', 'Upload', 'sha256 not matching on overwrite: 451, the file is as it was', async (t) => {
  const c = await t.open();
  const name = t.file('sha-keep.txt');
  await upload(c, name, 'the original\n');
  const data = utf8.encode('replacement\n');
  await c.request(putLine(name, data.length, `mode=overwrite sha256=${sha256(utf8.encode('something else'))}`), 150);
  await c.sendRaw(data, `(${data.length} bytes of data)`);
  await c.reply(451);
  await expectStat(c, name, 'the original\n');
});

check('put/size-not-decimal', 'Upload', 'a size that is not a decimal integer gets 501', async (t) => {
  const c = await t.open();
  const name = t.file('size.txt');
  await eachGets(c, ['abc', '-1', '1.5', '0x10', '1e3'].map((size) => putLine(name, size)), 501);
  await stillUsable(c);
});

check('put/unknown-option', 'Upload', 'an unknown option, or an unknown mode, gets 501', async (t) => {
  const c = await t.open();
  const name = t.file('option.txt');
  await eachGets(c, [putLine(name, 5, 'colour=red'), putLine(name, 5, 'mode=replace'), putLine(name, 5, 'overwrite')], 501);
  await stillUsable(c);
});

check('put/bad-sha256-form', 'Upload', 'a sha256 that is not 64 lowercase hex digits gets 501', async (t) => {
  const c = await t.open();
  const name = t.file('form.txt');
  const hex = sha256(utf8.encode('x'));
  await eachGets(c, [hex.toUpperCase(), hex.slice(1), `${hex}0`, 'xyz'].map((form) => putLine(name, 5, `sha256=${form}`)), 501);
  await stillUsable(c);
});

check('put/bad-name', 'Upload', 'PUT of a name that is not a name gets 553, before any data', async (t) => {
  const c = await t.open();
  // Prefixed, so that a server that does write them anyway leaves names the student can recognise.
  const file = t.file('x.txt');
  await eachGets(c, [putLine(`../${file}`, 5), putLine(`.${file}`, 5, 'mode=overwrite'), putLine(`${file}/b`, 0)], 553);
  await stillUsable(c);
});

check('put/too-large', 'Upload', 'a size over the server\'s limit gets 552, before any data', async (t) => {
  const c = await t.open();
  await c.request(putLine(t.file('huge.txt'), TOO_LARGE), 552);
  await stillUsable(c);
});

check('put/check-order', 'Upload', 'checks in order: 501 syntax, 553 name, 552 too large, then the file\'s state', async (t) => {
  const c = await t.open();
  const present = t.file('present.txt');
  await upload(c, present, 'here\n');
  await c.request(putLine(`../${present}`, 'abc'), 501, { what: '501 (syntax comes before the name)' });
  await c.request(putLine(`../${present}`, TOO_LARGE), 553, { what: '553 (the name comes before the size limit)' });
  await c.request(putLine(present, TOO_LARGE, 'mode=new'), 552, { what: '552 (the size limit comes before "exists")' });
  await c.request(putLine(present, TOO_LARGE), 552, { what: '552 (the size limit comes before 350)' });
});

function isIsoUtc(text: string): boolean {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]00:?00)$/.exec(text);
  return match !== null && !Number.isNaN(Date.parse(`${match[1]}Z`));
}

export const CASES: readonly CheckCase[] = cases;
