/** `socklab chat` (homework 1) with piped stdin, against a real async server. */
import t from 'tap';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { finished, runCli, type RunResult } from './run-cli.js';

let server: TestServer;

t.before(async () => {
  server = await startTestServer('async');
});
t.teardown(() => server.close());

const chat = (stdin: string): Promise<RunResult> => runCli(['chat', '--port', String(server.port)], { stdin });

t.test('echoes every line until STOP, then quits with 0', async (t) => {
  const r = await chat('hello\nworld\nSTOP\nnot sent\n');
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'socklab/1 async ready\nhello\nworld\n', 'the greeting, then the two echoes and nothing after STOP');
  t.equal(r.stderr, '', 'no prompt and no noise without a terminal');
});

t.test('the text goes byte for byte: spaces, an empty line, non-ASCII', async (t) => {
  const r = await chat('  two leading, two trailing  \n\nпривет, 世界\n   STOP   \n');
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'socklab/1 async ready\n  two leading, two trailing  \n\nпривет, 世界\n', 'STOP with spaces around it still stops');
});

t.test('STOP ends the chat in any case, but only alone on its line', async (t) => {
  const r = await chat('STOP now\nstopping\n  Stop \nnot sent\n');
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'socklab/1 async ready\nSTOP now\nstopping\n', '"Stop" ended it; the lines before were echoed');
  const lower = await chat('stop\nnot sent\n');
  t.equal(lower.stdout, 'socklab/1 async ready\n', 'lowercase stop is not sent as a message');
});

t.test('the end of stdin ends the chat like STOP', async (t) => {
  const r = await chat('only line\n');
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'socklab/1 async ready\nonly line\n');
});

t.test('a line over the request limit is refused locally; the chat goes on', async (t) => {
  const longest = 'x'.repeat(1019); // "ECHO " + 1019 bytes = 1024, the limit
  const tooLong = 'y'.repeat(1020);
  const wide = 'ж'.repeat(510); // 1020 bytes of UTF-8 in 510 characters
  const r = await chat(`${tooLong}\n${wide}\n${longest}\nafter\nSTOP\n`);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `socklab/1 async ready\n${longest}\nafter\n`, 'the two long lines were not sent, the rest was');
  t.match(r.stderr, /line not sent: it is 1020 bytes, and ECHO carries at most 1019/);
  t.equal(r.stderr.trimEnd().split('\n').length, 2, 'one message per refused line');
});
