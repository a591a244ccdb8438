import t from 'tap';
import {
  DEFAULT_MAX_FILE_SIZE,
  ErrorCodes,
  formatRequest,
  parseRequest,
  ProtocolError,
  PUT_MODES,
  type ErrorCode,
  type Request,
} from '../../protocol/index.js';
import { thrown, type Asserts } from './fixtures.js';

const options = { maxFileSize: DEFAULT_MAX_FILE_SIZE };
const SHA = 'ab'.repeat(32);
const parse = (line: string, o = options) => parseRequest(line, o);

/** Asserts that parsing `line` is refused with `code` and a `reply` with `replyCode`. */
function refuses(t: Asserts, line: string, code: ErrorCode, replyCode: number, o = options): void {
  const error = thrown(() => parse(line, o));
  t.ok(error instanceof ProtocolError, `${JSON.stringify(line)} is refused with a ProtocolError`);
  if (!(error instanceof ProtocolError)) return;
  t.equal(error.code, code, `${JSON.stringify(line)}: error.code ${code}`);
  t.equal(error.reply.code, replyCode, `${JSON.stringify(line)}: reply ${replyCode}`);
  t.equal(error.message, `${error.reply.code} ${error.reply.text}`, `${JSON.stringify(line)}: the message is the reply line`);
  t.equal(error.closesConnection, false, `${JSON.stringify(line)}: the connection stays usable`);
}

t.test('every command without arguments', async (t) => {
  for (const word of ['PING', 'LIST', 'HELP', 'QUIT', 'OVERWRITE', 'APPEND', 'CANCEL'] as const) {
    t.same(parse(word), { command: word }, word);
  }
});

t.test('STAT and GET take one name', async (t) => {
  t.same(parse('STAT notes.txt'), { command: 'STAT', name: 'notes.txt' });
  t.same(parse('GET заметки-1.txt'), { command: 'GET', name: 'заметки-1.txt' });
  t.same(parse('GET a..b'), { command: 'GET', name: 'a..b' });
});

t.test('command words are case-insensitive, names are not', async (t) => {
  t.same(parse('ping'), { command: 'PING' });
  t.same(parse('PiNg'), { command: 'PING' });
  t.same(parse('list'), { command: 'LIST' });
  t.same(parse('help'), { command: 'HELP' });
  t.same(parse('Quit'), { command: 'QUIT' });
  t.same(parse('overwrite'), { command: 'OVERWRITE' });
  t.same(parse('append'), { command: 'APPEND' });
  t.same(parse('cancel'), { command: 'CANCEL' });
  t.same(parse('stat Notes.TXT'), { command: 'STAT', name: 'Notes.TXT' });
  t.same(parse('get a'), { command: 'GET', name: 'a' });
  t.same(parse('echo Hi'), { command: 'ECHO', text: 'Hi' });
  t.same(parse('put A 1'), { command: 'PUT', name: 'A', size: 1, mode: 'ask', sha256: null });
});

t.test('only ASCII letters fold: look-alike words are unknown commands', async (t) => {
  // 'ı' (U+0131), 'ſ' (U+017F) and the 'ﬆ' ligature (U+FB06) upper-case to
  // ASCII in JavaScript; a command word must not be matched through them.
  refuses(t, 'pıng', ErrorCodes.UNKNOWN_COMMAND, 500);
  refuses(t, 'lıst', ErrorCodes.UNKNOWN_COMMAND, 500);
  refuses(t, 'quıt', ErrorCodes.UNKNOWN_COMMAND, 500);
  refuses(t, 'ſtat a', ErrorCodes.UNKNOWN_COMMAND, 500);
  refuses(t, 'ﬆat a', ErrorCodes.UNKNOWN_COMMAND, 500);
  refuses(t, 'overwrıte', ErrorCodes.UNKNOWN_COMMAND, 500);
});

t.test('leading and trailing spaces are ignored, arguments split on runs of spaces', async (t) => {
  t.same(parse('   PING'), { command: 'PING' });
  t.same(parse('PING   '), { command: 'PING' });
  t.same(parse('  STAT   a.txt   '), { command: 'STAT', name: 'a.txt' });
  t.same(parse('PUT  a   5   mode=new  '), { command: 'PUT', name: 'a', size: 5, mode: 'new', sha256: null });
});

t.test('an empty or all-space line is null (no reply)', async (t) => {
  t.equal(parse(''), null);
  t.equal(parse(' '), null);
  t.equal(parse('      '), null);
});

t.test('ECHO keeps its text byte for byte', async (t) => {
  const cases: Array<[string, string]> = [
    ['ECHO hello', 'hello'],
    ['ECHO  two leading', ' two leading'], // only the first space separates
    ['ECHO    ', '   '],
    ['ECHO trailing  ', 'trailing  '],
    ['ECHO a  b   c', 'a  b   c'],
    ['ECHO ', ''],
    ['ECHO', ''],
    ['echo MiXeD', 'MiXeD'],
    ['  ECHO x', 'x'], // leading spaces before the word are not text
    ['ECHO \t tab', '\t tab'],
    ['ECHO ✓ 𝐀 заметки', '✓ 𝐀 заметки'],
    ['ECHO PING\rQUIT', 'PING\rQUIT'],
    ['ECHO mode=new sha256=x', 'mode=new sha256=x'],
  ];
  for (const [line, text] of cases) t.same(parse(line), { command: 'ECHO', text }, JSON.stringify(line));
});

t.test('unknown commands get 500 and keep the connection', async (t) => {
  for (const line of ['NOPE', 'PINGX', 'PIN', 'ECH0 x', 'DELETE a', '\tPING', 'PING\t', 'PING\r', '-', '200 PONG', 'ПИНГ']) {
    refuses(t, line, ErrorCodes.UNKNOWN_COMMAND, 500);
  }
});

t.test('wrong argument counts get 501 BAD_SYNTAX', async (t) => {
  for (const line of [
    'PING x',
    'LIST x',
    'HELP me',
    'QUIT now',
    'OVERWRITE x',
    'APPEND x',
    'CANCEL x',
    'STAT',
    'STAT   ',
    'STAT a b',
    'GET',
    'GET a b',
    'PUT',
    'PUT a',
    'PUT    a    ',
  ]) {
    refuses(t, line, ErrorCodes.BAD_SYNTAX, 501);
  }
});

t.test('STAT and GET with a bad name get 553 BAD_NAME', async (t) => {
  for (const name of ['../x', '.hidden', 'a\\b', '-a', 'a\u202eb', 'e\u0301', 'a'.repeat(129), 'a/b']) {
    refuses(t, `STAT ${name}`, ErrorCodes.BAD_NAME, 553);
    refuses(t, `GET ${name}`, ErrorCodes.BAD_NAME, 553);
  }
});

t.test('PUT: name, size, defaults', async (t) => {
  t.same(parse('PUT notes.txt 0'), { command: 'PUT', name: 'notes.txt', size: 0, mode: 'ask', sha256: null });
  t.same(parse('PUT notes.txt 12345'), { command: 'PUT', name: 'notes.txt', size: 12345, mode: 'ask', sha256: null });
  t.same(parse('PUT заметки-1.txt 3'), { command: 'PUT', name: 'заметки-1.txt', size: 3, mode: 'ask', sha256: null });
});

t.test('PUT: every mode, options in any order, case of option words', async (t) => {
  for (const mode of PUT_MODES) {
    t.same(parse(`PUT a 1 mode=${mode}`), { command: 'PUT', name: 'a', size: 1, mode, sha256: null }, mode);
    t.same(parse(`PUT a 1 MODE=${mode.toUpperCase()}`), { command: 'PUT', name: 'a', size: 1, mode, sha256: null }, `${mode} upper`);
  }
  t.same(PUT_MODES, ['ask', 'new', 'overwrite', 'append']);
  const both = { command: 'PUT', name: 'a', size: 1, mode: 'append', sha256: SHA };
  t.same(parse(`PUT a 1 mode=append sha256=${SHA}`), both);
  t.same(parse(`PUT a 1 sha256=${SHA} mode=append`), both);
  t.same(parse(`PUT a 1   sha256=${SHA}    mode=append  `), both);
  t.same(parse(`PUT a 1 sha256=${SHA}`), { command: 'PUT', name: 'a', size: 1, mode: 'ask', sha256: SHA });
});

t.test('PUT: size with leading zeros is decimal', async (t) => {
  const size = (text: string) => {
    const r = parse(`PUT a ${text}`);
    return r !== null && r.command === 'PUT' ? r.size : null;
  };
  t.equal(size('0'), 0);
  t.equal(size('00'), 0);
  t.equal(size('007'), 7);
  t.equal(size('010'), 10, 'not octal');
  t.equal(size('0000000000000000000000000001'), 1, 'many leading zeros are not "enormous"');
  t.equal(size('0'.repeat(30) + '12345678'), 12345678);
  t.equal(size(String(DEFAULT_MAX_FILE_SIZE)), DEFAULT_MAX_FILE_SIZE, 'exactly the limit is fine');
});

t.test('PUT: sizes over the limit get 552 TOO_LARGE', async (t) => {
  refuses(t, `PUT a ${DEFAULT_MAX_FILE_SIZE + 1}`, ErrorCodes.TOO_LARGE, 552);
  refuses(t, 'PUT a 9007199254740993', ErrorCodes.TOO_LARGE, 552);
  refuses(t, `PUT a ${'9'.repeat(400)}`, ErrorCodes.TOO_LARGE, 552);
  refuses(t, `PUT a 1${'0'.repeat(20)}`, ErrorCodes.TOO_LARGE, 552);
  refuses(t, 'PUT a 11', ErrorCodes.TOO_LARGE, 552, { maxFileSize: 10 });
  t.same(parse('PUT a 10', { maxFileSize: 10 }), { command: 'PUT', name: 'a', size: 10, mode: 'ask', sha256: null });
  t.same(parse('PUT a 0', { maxFileSize: 0 }), { command: 'PUT', name: 'a', size: 0, mode: 'ask', sha256: null });
});

t.test('PUT: syntax errors get 501 BAD_SYNTAX', async (t) => {
  for (const line of [
    'PUT a -1',
    'PUT a +1',
    'PUT a 1.5',
    'PUT a 1e3',
    'PUT a 0x10',
    'PUT a ten',
    'PUT a ５', // a full-width digit is not a decimal digit
    'PUT a 1 mode=bogus',
    'PUT a 1 mode=',
    'PUT a 1 mode',
    'PUT a 1 mode=new mode=new', // repeated
    'PUT a 1 mode=new mode=append',
    `PUT a 1 sha256=${SHA} sha256=${SHA}`, // repeated
    'PUT a 1 sha256=abc', // too short
    `PUT a 1 sha256=${SHA}0`, // too long
    `PUT a 1 sha256=${'g'.repeat(64)}`, // not hex
    'PUT a 1 sha256=',
    'PUT a 1 sha256',
    'PUT a 1 size=3', // unknown option
    'PUT a 1 bogus',
    'PUT a 1 =ask',
    'PUT a 1 2',
  ]) {
    refuses(t, line, ErrorCodes.BAD_SYNTAX, 501);
  }
});

t.test('PUT: a name with a space in it gets a 501 that says so, not one about the size', async (t) => {
  for (const line of ['PUT "my file.txt" 5', 'PUT my file.txt 5', 'PUT my big file.txt 5 mode=new']) {
    refuses(t, line, ErrorCodes.BAD_SYNTAX, 501);
    const error = thrown(() => parse(line));
    t.match(error instanceof ProtocolError ? error.reply.text : '', /^a name cannot contain spaces/, line);
  }
  const error = thrown(() => parse('PUT a ten'));
  t.match(error instanceof ProtocolError ? error.reply.text : '', /^size must be a decimal byte count/, 'a size that is no number is still called that');
});

t.test('501 says what is wrong, for a person typing requests by hand', async (t) => {
  const texts: Array<[string, string]> = [
    ['PING now', 'PING takes no arguments'],
    ['QUIT x', 'QUIT takes no arguments'],
    ['STAT', 'STAT takes one argument: a file name'],
    ['GET a b', 'GET takes one argument: a file name'],
    ['PUT', 'usage: PUT <name> <size> [mode=ask|new|overwrite|append] [sha256=<hex>]'],
    ['PUT a', 'usage: PUT <name> <size> [mode=ask|new|overwrite|append] [sha256=<hex>]'],
    ['PUT a ten', 'size must be a decimal byte count'],
    ['PUT a 1 mode=bogus', 'bad or repeated option: mode=bogus'],
    ['PUT a 1 mode=new mode=new', 'bad or repeated option: mode=new'],
    [`PUT a 1 sha256=${SHA} sha256=${SHA}`, `bad or repeated option: sha256=${SHA}`],
    ['PUT a 1 sha256=abc', 'bad or repeated option: sha256=abc'],
    ['PUT a 1 size=3', 'unknown option: size=3'],
    [`PUT a 1 checksum=${SHA}`, `unknown option: checksum=${SHA}`],
  ];
  for (const [line, text] of texts) {
    const error = thrown(() => parse(line));
    t.same(error instanceof ProtocolError ? error.reply : error, { code: 501, text }, line);
  }
});

t.test('PUT: checks come in the order 501, 553, 552', async (t) => {
  // 501 before 553: a bad name with a bad size, or a bad option.
  refuses(t, 'PUT ../x ten', ErrorCodes.BAD_SYNTAX, 501);
  refuses(t, 'PUT ../x 5 mode=bogus', ErrorCodes.BAD_SYNTAX, 501);
  refuses(t, 'PUT ../x 5 sha256=nothex', ErrorCodes.BAD_SYNTAX, 501);
  refuses(t, 'PUT ../x 5 what=ever', ErrorCodes.BAD_SYNTAX, 501);
  // 501 before 552: a huge size with a bad option.
  refuses(t, `PUT a ${'9'.repeat(30)} mode=bogus`, ErrorCodes.BAD_SYNTAX, 501);
  // 553 before 552.
  refuses(t, `PUT ../x ${DEFAULT_MAX_FILE_SIZE + 1}`, ErrorCodes.BAD_NAME, 553);
  refuses(t, `PUT .hidden ${'9'.repeat(30)} mode=new`, ErrorCodes.BAD_NAME, 553);
  // And each alone.
  refuses(t, 'PUT ../x 5', ErrorCodes.BAD_NAME, 553);
  refuses(t, `PUT a ${DEFAULT_MAX_FILE_SIZE + 1} mode=new sha256=${SHA}`, ErrorCodes.TOO_LARGE, 552);
});

t.test('formatRequest writes lines parseRequest reads back', async (t) => {
  const requests: Request[] = [
    { command: 'PING' },
    { command: 'ECHO', text: '  spaced  out  ' },
    { command: 'ECHO', text: '' },
    { command: 'LIST' },
    { command: 'STAT', name: 'заметки-1.txt' },
    { command: 'GET', name: 'a..b' },
    { command: 'PUT', name: 'x', size: 0, mode: 'ask', sha256: null },
    { command: 'PUT', name: 'x', size: 42, mode: 'append', sha256: SHA },
    { command: 'HELP' },
    { command: 'QUIT' },
    { command: 'OVERWRITE' },
    { command: 'APPEND' },
    { command: 'CANCEL' },
  ];
  for (const r of requests) {
    const line = formatRequest(r);
    t.notMatch(line, /\n/, `${r.command}: no LF in the line`);
    t.same(parse(line), r, `${r.command}: ${JSON.stringify(line)}`);
  }
  t.equal(formatRequest({ command: 'ECHO', text: 'x' }), 'ECHO x');
  t.equal(formatRequest({ command: 'PUT', name: 'f', size: 3, mode: 'new', sha256: null }), 'PUT f 3 mode=new');
});
