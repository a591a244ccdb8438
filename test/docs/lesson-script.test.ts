/**
 * The guide convention itself (lesson-script.ts): how a guide is read, and
 * exactly what the test changes in a command before running it.
 */
import t from 'tap';
import { normalizeCommand, parseLesson, placeholderIn, programsIn, rewriteCommand, rewritePhrase, skeleton, type Step } from './lesson-script.js';

const fence = '```';

function commands(steps: Step[]) {
  return steps.filter((s) => s.kind === 'command');
}

t.test('a guide becomes steps: commands with their annotations, actions, sections', async (t) => {
  const md = [
    '# Title',
    'Prose.',
    '<!-- terminal: 1 -->',
    '<!-- expect: listening on 127.0.0.1:8020 -->',
    '',
    `${fence}sh`,
    'npx socklab server async',
    `${fence}`,
    '<!-- type 1: hello\\nworld -->',
    '<!-- see 1: /wor+ld/ -->',
    '<!-- ctrl-c 1 -->',
    '<!-- exits 1: 0 -->',
    '## Next',
    '<!-- stdin: a\\nSTOP -->',
    '<!-- exit: 2 -->',
    `${fence}sh`,
    '# a comment, not a command',
    "printf 'x\\n' | npx socklab chat",
    `${fence}`,
    `${fence}sh`,
    'ls results',
    'cat results/latest.md',
    `${fence}`,
    `${fence}text`,
    '## not a heading, output',
    `${fence}`,
    '<!--',
    'a free note over',
    'several lines',
    '-->',
  ].join('\n');
  const steps = parseLesson(md);
  t.same(
    steps.map((s) => s.kind),
    ['command', 'type', 'see', 'ctrl-c', 'exits', 'section', 'command', 'command', 'command'],
  );
  const [server, chat, ls, cat] = commands(steps);
  t.equal(server?.terminal, 1);
  t.same(server?.expect, ['listening on 127.0.0.1:8020']);
  t.equal(server?.line, 7, 'the line of the command itself');
  t.equal(chat?.stdin, 'a\nSTOP', 'stdin unescaped');
  t.equal(chat?.exit, 2);
  t.equal(chat?.section, 'Next');
  t.equal(ls?.stdin, null, 'annotations apply to the next block only');
  t.equal(cat?.command, 'cat results/latest.md', 'every line of a block is a command');
  const type = steps[1];
  t.equal(type?.kind === 'type' ? type.text : null, 'hello\nworld');
});

t.test('malformed guides are refused with the line', async (t) => {
  const cases: [string, RegExp][] = [
    [`<!-- terminal: 1 -->\nprose\n${fence}sh\nls\n${fence}`, /:1: .*followed by prose/],
    [`<!-- expekt: x -->\n${fence}sh\nls\n${fence}`, /unknown annotation "expekt"/],
    [`<!-- see: x -->`, /needs a terminal number/],
    [`<!-- terminal: 1 -->\n${fence}sh\nls\npwd\n${fence}`, /exactly one command/],
    [`${fence}sh\nls \\\n  -l\n${fence}`, /no line continuations/],
    [`${fence}sh\nls\n`, /never closed/],
    [`<!-- expect: x -->\n${fence}text\nx\n${fence}`, /belong right before a/],
    [`<!-- expect: x -->`, /end of the guide/],
    [`<!-- type 2 hello -->`, /not an annotation/],
  ];
  for (const [md, message] of cases) t.throws(() => parseLesson(md, 'G.md'), message, md.split('\n')[0] ?? md);
  t.throws(() => parseLesson('<!-- expect: -->\n```sh\nls\n```'), { name: 'LessonSyntaxError' });
});

t.test('placeholders are found', async (t) => {
  t.equal(placeholderIn('npx socklab client stat NAME'), 'NAME');
  t.equal(placeholderIn('kill -9 <pid>'), '<pid>');
  t.equal(placeholderIn('npx socklab client put ...'), '...');
  t.equal(placeholderIn("printf 'hello\\nSTOP\\n' | npx socklab chat"), null);
  t.equal(placeholderIn('UV_THREADPOOL_SIZE=1 npx socklab server async'), null);
});

t.test('the programs a command runs are found', async (t) => {
  t.same(programsIn('npx socklab server async'), ['npx']);
  t.same(programsIn('printf "PING\\n" | nc 127.0.0.1 8020'), ['printf', 'nc'], 'each stage of a pipe');
  t.same(programsIn('seq 1 5 && sha256sum a.txt; ls'), ['seq', 'sha256sum', 'ls'], 'each member of a list');
  t.same(programsIn(`ps -o nlwp= -p "$(pgrep -n -f 'server async')"`), ['ps', 'pgrep'], 'a command substitution, even inside double quotes');
  t.same(programsIn('UV_THREADPOOL_SIZE=1 npx socklab server workers'), ['npx'], 'after an assignment');
  t.same(programsIn("printf 'a | b; c && d\\n' | npx socklab chat"), ['printf', 'npx'], 'not words inside quotes');
  t.same(programsIn('(cd /tmp && cat x) | wc -l'), ['cd', 'cat', 'wc'], 'in a subshell');
});

t.test('the two guides are compared language-neutrally', async (t) => {
  t.equal(normalizeCommand("printf 'привет\\nSTOP\\n'  |  npx socklab chat"), "printf <text> | npx socklab chat");
  t.equal(normalizeCommand("printf 'hello\\nSTOP\\n' | npx socklab chat"), "printf 'hello\\nSTOP\\n' | npx socklab chat");
  const en = parseLesson(`<!-- type 2: hello -->\n<!-- stdin: hi -->\n${fence}sh\nnpx socklab chat\n${fence}`);
  const ru = parseLesson(`<!-- type 2: привет -->\n<!-- stdin: здравствуй -->\n${fence}sh\nnpx socklab chat\n${fence}`);
  t.same(skeleton(ru), skeleton(en), 'typed text and stdin may be translated');
  const other = parseLesson(`<!-- type 2: hello -->\n${fence}sh\nnpx socklab chat --port 9000\n${fence}`);
  t.not(JSON.stringify(skeleton(other)), JSON.stringify(skeleton(en)), 'commands may not differ');
});

const ctx = {
  repo: '/repo',
  bin: 'dist/bin/socklab.js',
  scripts: {
    bench: 'npm run build && node dist/bench/run.js',
    demo: 'node dist/bin/socklab.js demo',
    weird: 'npm run build && a && b',
  },
  port: 43210,
  workDir: '/tmp/w',
  ttys: ['pts/3', 'pts/7'],
};

t.test('what the test changes in a command, and only that', async (t) => {
  const bin = 'node /repo/dist/bin/socklab.js';
  t.equal(rewriteCommand('npx socklab --help', ctx), `${bin} --help`, 'npx socklab → the bin package.json names');
  t.equal(rewriteCommand('npx socklab server async', ctx), `${bin} server async --port 43210 --root /tmp/w/storage`, 'a server gets a free port and a root');
  t.equal(
    rewriteCommand('npx socklab server sequential --root /tmp/files --idle-timeout 5', ctx),
    `${bin} server sequential --root /tmp/w/root-tmp_files --idle-timeout 5 --port 43210`,
    'a given root moves into the temporary directory',
  );
  t.equal(rewriteCommand("printf 'a\\nSTOP\\n' | npx socklab chat", ctx), `printf 'a\\nSTOP\\n' | ${bin} chat --port 43210`, 'a client in a pipe');
  t.equal(rewriteCommand('npx socklab client get notes.txt --out - > copy.txt', ctx), `${bin} client get notes.txt --out - --port 43210 > copy.txt`, 'before a redirection');
  t.equal(rewriteCommand('npx socklab client list --port 8020', ctx), `${bin} client list --port 43210`, 'an explicit 8020 too');
  t.equal(rewriteCommand("ss -tn '( dport = :8020 )'", ctx), "ss -tn '( dport = :43210 )'", '8020 anywhere');
  t.equal(rewriteCommand('printf "PING\\n" | nc 127.0.0.1 8020', ctx), 'printf "PING\\n" | nc 127.0.0.1 43210');
  t.equal(rewriteCommand('npx socklab check', ctx), `${bin} check --port 43210`, 'check connects to the free port, never to 8020');
  t.equal(rewriteCommand('npx socklab load chat sequential', ctx), `${bin} load chat sequential`, 'load and demo start their own servers: untouched');
  t.equal(rewriteCommand('npx socklab demo --server all', ctx), `${bin} demo --server all`);
  t.equal(rewriteCommand('npm run demo', ctx), `node /repo/dist/bin/socklab.js demo`, 'npm run X → its script');
  t.equal(
    rewriteCommand('npm run bench -- --quick --scenario chat', ctx),
    'node /repo/dist/bench/run.js --quick --scenario chat --out /tmp/w/results/local',
    'the bench: no rebuild, and its results into the temporary directory',
  );
  t.equal(
    rewriteCommand('npm run bench -- --scenario chat', ctx, '--quick'),
    'node /repo/dist/bench/run.js --scenario chat --out /tmp/w/results/local --quick',
    'test-args appended',
  );
  t.equal(rewriteCommand("pkill -9 -f 'client put big.txt'", ctx), "pkill -t pts/3,pts/7 -9 -f 'client put big.txt'", 'pkill only in our terminals');
  t.equal(
    rewriteCommand(`ps -o nlwp= -p "$(pgrep -n -f 'server async')"`, ctx),
    `ps -o nlwp= -p "$(pgrep -t pts/3,pts/7 -n -f 'server async')"`,
    'pgrep too',
  );
  t.equal(rewriteCommand('pgrep -f x', { ...ctx, ttys: [] }), 'pgrep -t pts/999999 -f x', 'no terminal: matches nothing');
  t.equal(
    rewriteCommand('python3 examples/python/blocking_server.py 8020', ctx),
    'python3 /repo/examples/python/blocking_server.py 43210',
    "the repository's examples, run from the temporary directory",
  );
  t.equal(rewritePhrase('listening on 127.0.0.1:8020', 43210), 'listening on 127.0.0.1:43210');
});

t.test('what the test refuses to run', async (t) => {
  t.throws(() => rewriteCommand('npm run nosuch', ctx), { name: 'RewriteError' });
  t.throws(() => rewriteCommand('npm run weird', ctx), /single command/);
  t.throws(() => rewriteCommand('npm run bench -- --out results', ctx), /--out/);
  t.throws(() => rewriteCommand('npx socklab load chat sequential', ctx, '--quick'), /only allowed on "npm run bench"/);
  t.throws(() => rewriteCommand('npm run bench', ctx, '--scenario chat'), /only --quick/);
});
