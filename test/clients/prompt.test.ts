/**
 * What the prompts make of typed answers: shell-style quoting and escaping, as a
 * person used to a shell types it; and keys typed while queued, on a terminal.
 */
import { PassThrough } from 'node:stream';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import t from 'tap';
import { expandPath } from '../../clients/local-file.js';
import { nameRule } from '../../clients/messages.js';
import { Prompter, shellWord } from '../../clients/prompt.js';

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

/** A terminal's two ends as readline sees them: keys in, the screen out (columns as `script` sets them). */
function fakeTerminal(): { input: PassThrough & { isTTY: boolean; setRawMode: (mode: boolean) => void }; output: PassThrough & { isTTY: boolean; columns: number } } {
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (_mode: boolean) => {} });
  const output = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
  output.resume();
  return { input, output };
}

t.test('text typed while queued is the start of the first answer: keys typed after the prompt shows go after it, not before', async (t) => {
  const { input, output } = fakeTerminal();
  const prompter = new Prompter({ input, output });
  t.teardown(() => prompter.close());
  const status = prompter.statusDisplay();
  t.ok(status, 'a terminal gets the waiting line drawn as the prompt');
  status!.draw('waiting... 0.5 s');
  input.write('typ');
  await setImmediatePromise();
  status!.clear();
  const answer = prompter.line('> ');
  input.write('ed ahead\r');
  t.equal(await answer, 'typed ahead');
});

t.test('a line finished while queued is the first answer, whole', async (t) => {
  const { input, output } = fakeTerminal();
  const prompter = new Prompter({ input, output });
  t.teardown(() => prompter.close());
  const status = prompter.statusDisplay();
  status!.draw('waiting... 0.5 s');
  input.write('typed ahead\r');
  await setImmediatePromise();
  status!.clear();
  t.equal(await prompter.line('> '), 'typed ahead');
});
