/** What the prompts make of typed answers: shell-style quoting and escaping, as a person used to a shell types it. */
import t from 'tap';
import { expandPath } from '../../clients/local-file.js';
import { nameRule } from '../../clients/messages.js';
import { shellWord } from '../../clients/prompt.js';

t.test('a backslash or quotes keep a space, as in a shell', async (t) => {
  t.equal(shellWord('my\\ notes.txt'), 'my notes.txt');
  t.equal(shellWord("'my notes.txt'"), 'my notes.txt');
  t.equal(shellWord('"my notes.txt"'), 'my notes.txt');
  t.equal(shellWord('my" "notes.txt'), 'my notes.txt', 'quotes in the middle of a word');
  t.equal(shellWord("'it'\\''s.txt'"), "it's.txt", "the shell's way of quoting a quote");
  t.equal(shellWord('"a \\"b\\" \\\\ \\x"'), 'a "b" \\ \\x', 'inside double quotes a backslash escapes only " \\ $ `');
  t.equal(shellWord("'a\\b'"), 'a\\b', 'nothing is special inside single quotes');
});

t.test('plain answers are left alone', async (t) => {
  t.equal(shellWord('notes.txt'), 'notes.txt');
  t.equal(shellWord('my notes.txt'), 'my notes.txt', 'an unquoted space stays: one answer, not words');
  t.equal(shellWord('заметки.txt'), 'заметки.txt');
});

t.test('what a shell would refuse is taken as typed', async (t) => {
  t.equal(shellWord("don't.txt"), "don't.txt", 'an unbalanced quote');
  t.equal(shellWord('"half'), '"half');
  t.equal(shellWord('trailing\\'), 'trailing\\', 'a trailing backslash');
});

t.test('local paths: quotes and escapes from a drag and drop, and ~', async (t) => {
  t.equal(expandPath("  '/tmp/my report.txt'  "), '/tmp/my report.txt');
  t.equal(expandPath('/tmp/my\\ report.txt'), '/tmp/my report.txt');
  t.notMatch(expandPath('~/x.txt'), /^~/);
});

t.test('a name with a space is called that, not a list of allowed characters', async (t) => {
  t.equal(nameRule('my notes.txt'), 'a name cannot contain spaces; use _ or - instead');
  t.match(nameRule('a/b') ?? '', /^a name is letters, digits/);
  t.equal(nameRule('notes.txt'), null);
});
