/**
 * When things go wrong, every client says so in ONE sentence on stderr and
 * exits non-zero, never with a stack trace. The misbehaving servers are small
 * node:net fakes that do on purpose what a real server only does by accident.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { makeTempRoot } from '../helpers/server.js';
import { closedPort, finished, isOneSentence, readLines, runCli, sha256, startFakeServer, type FakeServer } from './run-cli.js';

let local: string;
let bigFile: string;
const BIG_BYTES = 8 * 1024 * 1024;

t.before(() => {
  local = makeTempRoot('socklab-failures-local-');
  bigFile = path.join(local, 'big.bin');
  fs.writeFileSync(bigFile, randomBytes(BIG_BYTES));
});
t.teardown(() => fs.rmSync(local, { recursive: true, force: true }));

const GREETING = '220 socklab/1 fake ready\n';

/** A fake that greets, answers LIST with no files and QUIT with bye, and hands every other line to `onLine`. */
async function fakeSocklab(t: Pick<typeof tapRoot, 'teardown'>, onLine: (line: string, socket: net.Socket) => 'stop' | void, onData?: (chunk: Buffer, socket: net.Socket) => void): Promise<FakeServer> {
  const fake = await startFakeServer((socket) => {
    socket.write(GREETING);
    readLines(
      socket,
      (line) => {
        if (line === 'LIST') socket.write('211 0\n');
        else if (line.startsWith('STAT ')) socket.write(`550 ${line.slice(5)}: no such file\n`);
        else if (line === 'QUIT') socket.end('221 bye\n');
        else return onLine(line, socket);
        return undefined;
      },
      onData === undefined ? undefined : (chunk) => onData(chunk, socket),
    );
  });
  t.teardown(() => fake.close());
  return fake;
}
const tapRoot = t;

/** A fake's answer to a PUT line: `150`, then what follows is the upload's data. */
function acceptPut(line: string, socket: net.Socket): 'stop' | undefined {
  const size = /^PUT \S+ (\d+) /.exec(line)?.[1];
  if (size === undefined) return undefined;
  socket.write(`150 send ${size} bytes\n`);
  return 'stop';
}

t.test('a refused connection: one sentence, exit 1, for every client', async (t) => {
  const port = String(await closedPort());
  const file = path.join(local, 'small.txt');
  fs.writeFileSync(file, 'small\n');
  for (const args of [['client', 'list'], ['client', 'stat', 'x'], ['client', 'get', 'x'], ['client', 'put', file], ['client'], ['chat']]) {
    const r = await runCli([...args, '--port', port], { stdin: 'answer\n', cwd: local });
    finished(t, r);
    t.equal(r.code, 1, `${args.join(' ')} exits 1`);
    t.ok(isOneSentence(r.stderr), r.stderr);
    t.match(r.stderr, new RegExp(`could not connect to 127\\.0\\.0\\.1:${port}: connection refused`));
  }
  t.same(fs.readdirSync(local).sort(), ['big.bin', 'small.txt'], 'get left nothing behind');
});

t.test('the server dies in the middle of an upload (put)', async (t) => {
  let received = 0;
  const fake = await fakeSocklab(
    t,
    acceptPut,
    (chunk, socket) => {
      received += chunk.length;
      if (received >= 100_000) socket.destroy();
    },
  );
  const r = await runCli(['client', 'put', bigFile, '--port', String(fake.port)]);
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /socklab: the server closed the connection in the middle of the upload of big\.bin; the server discards partial uploads/);
  t.ok(received >= 100_000 && received < BIG_BYTES, 'the upload had started and did not finish');
});

t.test('the local file shrinks during an upload (put --retry): said as a change of the file, not blamed on the server, and not retried', async (t) => {
  const SIZE = 32 * 1024 * 1024;
  const file = path.join(fs.mkdtempSync(path.join(local, 'shrink-')), 'growing.log');
  fs.writeFileSync(file, Buffer.alloc(SIZE, 'x'));
  let received = 0;
  let puts = 0;
  const fake = await fakeSocklab(
    t,
    (line, socket) => {
      if (line.startsWith('PUT ')) puts++;
      return acceptPut(line, socket);
    },
    (chunk, socket) => {
      received += chunk.length;
      if (received - chunk.length > 0) return;
      // The upload is under way and far from done (the socket holds a few MiB at most): the file is cut short.
      socket.pause();
      fs.truncateSync(file, 1000);
      setTimeout(() => socket.resume(), 50);
    },
  );
  const r = await runCli(['client', 'put', file, '--retry', '3', '--port', String(fake.port)]);
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.equal(
    r.stderr,
    `socklab: ${file} changed while it was being read: it is now 1000 bytes, not the ${SIZE} it had when the upload started; nothing was committed (upload it again once nothing is writing to it)\n`,
  );
  t.equal(puts, 1, 'one PUT: a file that changed is not sent again');
  // (That the client drops the connection is the protocol client's: test/protocol/client.test.ts, a source that runs short.)
  t.ok(received < SIZE, `the upload had started and did not finish (${received} bytes)`);
});

t.test('the server dies in the middle of an upload (interactive client)', async (t) => {
  const fake = await fakeSocklab(
    t,
    acceptPut,
    (_chunk, socket) => socket.destroy(),
  );
  const r = await runCli(['client', '--retry', '0', '--port', String(fake.port)], { stdin: `${bigFile}\ny\n\n` });
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /in the middle of the upload of big\.bin/);
  t.match(r.stdout, /looks like a binary file/, 'the conversation got as far as the upload');

  // Reconnecting does not help against a server that dies every time: it gives up after --retry reconnections.
  const retried = await runCli(['client', '--retry', '2', '--port', String(fake.port)], { stdin: `${bigFile}\ny\n\n` });
  finished(t, retried);
  t.equal(retried.code, 1);
  const lines = retried.stderr.trim().split('\n');
  t.equal(lines.length, 3, `two "reconnecting" lines and the final sentence: ${retried.stderr}`);
  t.match(lines[0] ?? '', /^socklab: the server closed the connection in the middle of the upload of big\.bin; .*; reconnecting in \d\.\d s \(retry 1 of 2\)$/);
  t.match(lines[2] ?? '', /in the middle of the upload of big\.bin; .* \(gave up after 2 retries\)$/);
  t.equal((retried.stdout.match(/reconnected to 127\.0\.0\.1:\d+: socklab\/1 fake ready/g) ?? []).length, 2, 'it said so each time it was back');
});

t.test('Ctrl-C during an upload: the client says the server discards it, exit 130', async (t) => {
  let child: import('node:child_process').ChildProcess | undefined;
  let interrupted = false;
  const fake = await fakeSocklab(
    t,
    acceptPut,
    (_chunk, socket) => {
      // Data is flowing: stop reading (the client blocks on a full socket) and press Ctrl-C.
      socket.pause();
      if (!interrupted) {
        interrupted = true;
        child?.kill('SIGINT');
      }
    },
  );
  const r = await runCli(['client', 'put', bigFile, '--port', String(fake.port)], { onSpawn: (c) => (child = c) });
  finished(t, r);
  t.ok(interrupted, 'the upload was under way when Ctrl-C came');
  t.equal(r.code, 130);
  t.equal(r.stderr, 'socklab: upload cancelled; the server discards it\n');
});

t.test('the server dies in the middle of a download: nothing is saved', async (t) => {
  const fake = await fakeSocklab(t, (line, socket) => {
    if (!line.startsWith('GET ')) return;
    socket.write('150 1000\n');
    socket.end('only 24 bytes of 1000...');
  });
  const dir = fs.mkdtempSync(path.join(local, 'download-'));
  const r = await runCli(['client', 'get', 'file.txt', '--port', String(fake.port)], { cwd: dir });
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /the server closed the connection in the middle of the download of file\.txt; nothing was saved/);
  t.same(fs.readdirSync(dir), [], 'neither the file nor a temporary file');
});

t.test('the server dies in the middle of a download to stdout (--out -): it says the output is incomplete, and how much of it there is', async (t) => {
  const fake = await fakeSocklab(t, (line, socket) => {
    if (!line.startsWith('GET ')) return;
    socket.write('150 1000\n');
    socket.end('only 24 bytes of 1000...');
  });
  const r = await runCli(['client', 'get', 'file.txt', '--out', '-', '--port', String(fake.port)]);
  finished(t, r);
  t.equal(r.code, 1);
  t.equal(r.stdout, 'only 24 bytes of 1000...', 'what arrived went out as it came');
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(
    r.stderr,
    /the server closed the connection in the middle of the download of file\.txt; the output is incomplete \(24 of 1000 bytes were written to it\): discard it/,
    'not "nothing was saved": 24 bytes were',
  );
});

t.test('a download whose sha256 does not match is not saved', async (t) => {
  const fake = await fakeSocklab(t, (line, socket) => {
    if (!line.startsWith('GET ')) return;
    socket.write(`150 5\nhello226 ${sha256('HELLO')}\n`);
  });
  const dir = fs.mkdtempSync(path.join(local, 'mismatch-'));
  const r = await runCli(['client', 'get', 'file.txt', '--port', String(fake.port)], { cwd: dir });
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /do not match the server's sha256/);
  t.same(fs.readdirSync(dir), []);
});

t.test("an upload whose 226 reports another sha256 than the file's is not called verified", async (t) => {
  const content = 'the bytes on the client\n';
  const file = path.join(local, 'checked.txt');
  fs.writeFileSync(file, content);
  const wrong = sha256('the bytes some other file has\n');
  let received = Buffer.alloc(0);
  // Takes the whole upload, as a real server would, then commits it with a sha256 of other bytes
  // (and says bye to a QUIT after it, so a client that believed it ends at once).
  const fake = await fakeSocklab(
    t,
    acceptPut,
    (chunk, socket) => {
      const before = received.length;
      received = Buffer.concat([received, chunk]);
      if (before < content.length && received.length >= content.length) socket.write(`226 checked.txt ${content.length} ${wrong}\n`);
      if (received.subarray(content.length).includes('QUIT\n')) socket.end('221 bye\n');
    },
  );
  const clients: [string, string[], string][] = [
    ['client put', ['client', 'put', file], ''],
    ['the interactive client', ['client'], `${file}\n\n`],
  ];
  for (const [which, args, stdin] of clients) {
    received = Buffer.alloc(0);
    const r = await runCli([...args, '--port', String(fake.port)], { stdin });
    finished(t, r);
    t.equal(received.subarray(0, content.length).toString('utf8'), content, `${which}: the fake received the whole file`);
    t.equal(r.code, 1, `${which}: exit 1`);
    t.ok(isOneSentence(r.stderr), r.stderr);
    t.match(r.stderr, `socklab: the server committed checked.txt but reports sha256 ${wrong} for the bytes it received, while ${file} has ${sha256(content)}`);
    t.notMatch(r.stdout, /verified/, `${which}: nothing is called verified`);
  }
});

t.test('error replies become sentences', async (t) => {
  const replies: Record<string, string> = {
    'big.bin': '552 too large (limit 1048576 bytes)',
    'full.bin': '452 quota exceeded',
  };
  const fake = await fakeSocklab(t, (line, socket) => {
    const name = /^PUT (\S+) /.exec(line)?.[1];
    if (name !== undefined) socket.write(`${replies[name] ?? '500 unknown command'}\n`);
  });
  const port = String(fake.port);
  const tooLarge = await runCli(['client', 'put', bigFile, '--port', port]);
  finished(t, tooLarge);
  t.equal(tooLarge.code, 1);
  t.ok(isOneSentence(tooLarge.stderr), tooLarge.stderr);
  t.match(tooLarge.stderr, /the file is larger than the server accepts \(8388608 bytes \(8\.0 MiB\); the limit is 1048576 bytes \(1\.0 MiB\)\)/);

  const full = await runCli(['client', 'put', bigFile, '--as', 'full.bin', '--port', port]);
  finished(t, full);
  t.equal(full.code, 1);
  t.ok(isOneSentence(full.stderr), full.stderr);
  t.match(full.stderr, /out of space or over a quota \(quota exceeded\)/);
});

t.test('450 busy and 451 to LIST, STAT and GET: a busy server, a file it could not read (not "the upload was discarded")', async (t) => {
  const answers: Record<string, string> = {
    LIST: '450 busy: too many files open on the server (EMFILE), try again later',
    'STAT a.txt': '451 opening a file failed (EACCES)',
    'GET a.txt': '451 reading a file failed (EIO)',
  };
  // Its own fake: fakeSocklab answers LIST and STAT itself.
  const fake = await startFakeServer((socket) => {
    socket.write(GREETING);
    readLines(socket, (line) => {
      if (line === 'QUIT') socket.end('221 bye\n');
      else socket.write(`${answers[line] ?? '500 unknown command'}\n`);
    });
  });
  t.teardown(() => fake.close());
  const port = String(fake.port);
  const dir = fs.mkdtempSync(path.join(local, 'unread-'));
  for (const [args, expected] of [
    [['list'], 'socklab: the server is busy (too many files open on the server (EMFILE)); nothing happened: try again later\n'],
    [['stat', 'a.txt'], 'socklab: the server could not read for STAT a.txt (opening a file failed (EACCES))\n'],
    [['get', 'a.txt'], 'socklab: the server could not read for GET a.txt (reading a file failed (EIO))\n'],
  ] as const) {
    const r = await runCli(['client', ...args, '--port', port], { cwd: dir });
    finished(t, r);
    t.equal(r.code, 1, args.join(' '));
    t.equal(r.stderr, expected);
  }
});

t.test('a 421 instead of a greeting', async (t) => {
  const fake = await startFakeServer((socket) => socket.end('421 too many connections\n'));
  t.teardown(() => fake.close());
  const r = await runCli(['client', 'list', '--port', String(fake.port)]);
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /the server turned us away: it has too many connections/);
});

t.test('something that is not a socklab server', async (t) => {
  const fake = await startFakeServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  t.teardown(() => fake.close());
  const r = await runCli(['chat', '--port', String(fake.port)], { stdin: 'hi\n' });
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /not socklab protocol/);
});

t.test('queued before the greeting: said once when it starts, once when served', async (t) => {
  let greet: (() => void) | undefined;
  const fake = await startFakeServer((socket) => {
    greet = () => socket.write(GREETING);
    readLines(socket, (line) => {
      if (line === 'LIST') socket.write('211 1\nqueued.txt 3 2024-01-02T03:04:05.000Z\n');
      if (line === 'QUIT') socket.end('221 bye\n');
    });
  });
  t.teardown(() => fake.close());
  const r = await runCli(['client', 'list', '--port', String(fake.port)], {
    // Greet only once the client has said it is waiting: no clock involved.
    onSpawn: (child) => child.stderr?.on('data', (chunk: Buffer) => chunk.toString().includes('waiting for the server...') && greet?.()),
  });
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /^waiting for the server\.\.\.\nserved after \d+\.\d s\n$/);
  t.match(r.stdout, /3\s+2024-01-02 03:04:05Z\s+queued\.txt/);
});
