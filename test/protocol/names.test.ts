import t from 'tap';
import { describeNameProblem, isValidName, MAX_NAME_BYTES, MAX_NAME_CODE_POINTS, nameProblem, type NameProblem } from '../../protocol/index.js';

const show = (name: string): string => JSON.stringify(name).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test('limits are the ones PROTOCOL.md gives', async (t) => {
  t.equal(MAX_NAME_CODE_POINTS, 128);
  t.equal(MAX_NAME_BYTES, 255);
});

t.test('valid names', async (t) => {
  const valid = [
    // The examples PROTOCOL.md gives.
    'notes.txt',
    'заметки-1.txt',
    'a..b',
    // More.
    'a',
    'Z',
    '7',
    '0.tar.gz',
    'a_b-c.d',
    'a-',
    'a.',
    'a_',
    'README',
    'readme', // names are case-sensitive but both are fine
    '日本語.txt',
    'Ωmega',
    'é', // precomposed U+00E9 is NFC
    '\u00c5ngstr\u00f6m', // precomposed Å and ö
    '\u0663\u0664', // Arabic-Indic digits are \p{N}
    '𝐀bc', // U+1D400, a letter outside the BMP
    'a'.repeat(128), // exactly 128 code points
    'я'.repeat(127), // 127 code points, 254 bytes
    'я'.repeat(127) + 'a', // 128 code points, exactly 255 bytes
    '𝐀'.repeat(63) + 'abc', // 66 code points, 255 bytes
  ];
  for (const name of valid) {
    t.equal(nameProblem(name), null, `${show(name)} is a name`);
    t.equal(isValidName(name), true, `${show(name)} isValidName`);
  }
});

t.test('invalid names', async (t) => {
  const invalid: Array<[string, NameProblem | null]> = [
    // The examples PROTOCOL.md gives (null: any problem will do).
    ['../x', 'bad-character'],
    ['a/b', 'bad-character'],
    ['.hidden', 'bad-character'],
    ['a b', 'bad-character'],
    ['', 'empty'],
    ['a\u0001b', 'bad-character'],
    // Control characters of every kind.
    ['a\tb', 'bad-character'],
    ['a\nb', 'bad-character'],
    ['a\n', 'bad-character'],
    ['\na', 'bad-character'],
    ['a\rb', 'bad-character'],
    ['a\u007f', 'bad-character'],
    ['a\u0085b', 'bad-character'], // C1 control NEL
    ['a\u0000b', 'bad-character'],
    ['\u0000', 'bad-character'],
    // Separators and other punctuation.
    ['a\\b', 'bad-character'],
    ['..', 'bad-character'],
    ['.', 'bad-character'],
    ['/', 'bad-character'],
    ['/etc/passwd', 'bad-character'],
    ['C:x', 'bad-character'],
    ['a:b', 'bad-character'],
    ['a*', 'bad-character'],
    ['~x', 'bad-character'],
    ['a%2Fb', 'bad-character'],
    ['a\u00a0b', 'bad-character'], // no-break space
    ['a\u2028b', 'bad-character'], // line separator
    // Invisible and direction-changing characters.
    ['a\u202eb', 'bad-character'], // RIGHT-TO-LEFT OVERRIDE
    ['txt.\u202egpj', 'bad-character'],
    ['a\u200bb', 'bad-character'], // zero-width space
    ['a\u200db', 'bad-character'], // zero-width joiner
    ['\ufeffa', 'bad-character'], // BOM
    ['a\ufeff', 'bad-character'],
    ['😀', 'bad-character'], // a symbol, not a letter
    ['\ud800', 'bad-character'], // lone surrogate
    // First character must be a letter or digit.
    ['-a', 'bad-character'],
    ['_a', 'bad-character'],
    ['.a', 'bad-character'],
    ['-', 'bad-character'],
    // Not NFC.
    ['e\u0301', null], // e + combining acute: a mark is not \p{L} either
    ['cafe\u0301.txt', null],
    ['\u212b', 'not-nfc'], // ANGSTROM SIGN (a letter) normalizes to U+00C5
    ['\u2126', 'not-nfc'], // OHM SIGN normalizes to U+03A9
    ['\u1100\u1161', 'not-nfc'], // Hangul jamo compose to U+AC00
    // Too long.
    ['a'.repeat(129), 'too-long'], // 129 code points
    ['я'.repeat(128), 'too-long'], // 128 code points but 256 bytes
    ['𝐀'.repeat(64), 'too-long'], // 64 code points, 256 bytes
    ['я'.repeat(127) + 'ab', 'too-long'], // 129 code points, 256 bytes
    ['a'.repeat(10_000), 'too-long'],
  ];
  for (const [name, problem] of invalid) {
    const got = nameProblem(name);
    t.not(got, null, `${show(name)} is not a name`);
    t.equal(isValidName(name), false, `${show(name)} !isValidName`);
    if (problem !== null) t.equal(got, problem, `${show(name)}: ${problem}`);
  }
});

t.test('128 code points is the limit, counted as code points not UTF-16 units', async (t) => {
  // 128 astral letters are 256 UTF-16 units: over the byte limit anyway, so
  // use 2-byte letters and check the code point limit on its own.
  t.equal(nameProblem('a'.repeat(127)), null);
  t.equal(nameProblem('a'.repeat(128)), null);
  t.equal(nameProblem('a'.repeat(129)), 'too-long');
  // 60 astral letters (240 bytes, 120 UTF-16 units) + 8 ASCII = 68 code points, 248 bytes.
  t.equal(nameProblem('𝐀'.repeat(60) + 'a'.repeat(7)), null);
  // 255 bytes: OK; 256: not.
  t.equal(nameProblem('a'.repeat(1) + 'я'.repeat(127)), null);
  t.equal(new TextEncoder().encode('a' + 'я'.repeat(127)).length, 255);
  t.equal(nameProblem('aa' + 'я'.repeat(127)), 'too-long');
});

t.test('every problem has a description for people', async (t) => {
  const problems: NameProblem[] = ['empty', 'too-long', 'not-nfc', 'bad-character'];
  const texts = new Set<string>();
  for (const p of problems) {
    const text = describeNameProblem(p);
    t.type(text, 'string');
    t.ok(text.length > 0, `${p} has text`);
    t.notMatch(text, /[\r\n]/, `${p}: one line (it goes into a reply)`);
    texts.add(text);
  }
  t.equal(texts.size, problems.length, 'each problem described differently');
});

t.test('names are never normalized: the same letters in another form are another (invalid) name', async (t) => {
  const nfc = 'caf\u00e9';
  const nfd = 'cafe\u0301';
  t.equal(isValidName(nfc), true);
  t.equal(isValidName(nfd), false);
  t.equal(isValidName('Notes.txt'), true);
  t.equal(isValidName('notes.TXT'), true);
});
