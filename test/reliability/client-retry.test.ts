/**
 * The client when the server goes away (the real `socklab client put`, as a
 * process):
 * - without --retry, a server SIGKILLed mid-upload (a proxy holds the client
 *   after 2 MiB, so that the kill lands mid-upload however late): one sentence, exit 1;
 *   a connection lost after all the data (the `226` never came): one sentence
 *   that says the upload may or may not have committed, exit 1;
 * - with --retry N, a server SIGKILLed mid-upload and restarted on the same
 *   port: the client reconnects with backoff and finishes; an append lands
 *   exactly once (every model);
 * - a lost `226` (a proxy swallows it after the server committed): the client
 *   finds out with STAT (and a GET for an append onto an existing file) that
 *   the upload committed and does not send it again; a connection cut in the
 *   middle of the data: the client sends it again, once;
 * - someone else changes the file meanwhile: the client stops and says so
 *   rather than risk appending twice; retries exhausted: one final sentence.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ErrorCodes, ReplyError } from '../../protocol/index.js';
import { SERVER_MODELS } from '../../servers/index.js';
import { ClientFailure } from '../../clients/messages.js';
import { backoffMs, isRetriable } from '../../clients/retry.js';
import { closedPort, finished, isOneSentence, runCli } from '../clients/run-cli.js';
import { startTestServer, type TestServer, makeTempRoot } from '../helpers/server.js';
import { delay, eventually, readOrNull, tempFilesIn } from '../helpers/wire-fixture.js';
import { startFaultyProxy, type Fault } from './faulty-proxy.js';
import { ServerProcess } from './processes.js';
import type { Tap } from '../helpers/tap.js';

let local: string;
let bigFile: string;
let big: Buffer;
const BIG_BYTES = 32 * 1024 * 1024;
const BASE = Buffer.from('the log so far\n'.repeat(70));

t.before(() => {
  local = makeTempRoot('socklab-retry-local-');
  bigFile = path.join(local, 'big.bin');
  big = randomBytes(BIG_BYTES);
  fs.writeFileSync(bigFile, big);
  fs.writeFileSync(path.join(local, 'small.txt'), 'small data\n');
});
t.teardown(() => fs.rmSync(local, { recursive: true, force: true }));

/** SIGKILLs `server` once an upload's temporary file holds at least `bytes` bytes. */
async function killMidUpload(server: ServerProcess, bytes: number): Promise<void> {
  await eventually(
    () =>
      tempFilesIn(server.root).some((name) => {
        try {
          return fs.statSync(path.join(server.root, name)).size >= bytes;
        } catch {
          return false;
        }
      }),
    'an upload is under way',
    15_000,
  );
  await server.crash();
}

/** A server process; a restart passes the first one's port and root (the first one's teardown removes the root). */
async function processServer(t: Tap, model: (typeof SERVER_MODELS)[number], port = 0, root = makeTempRoot(`socklab-retry-${model}-`)): Promise<ServerProcess> {
  if (port === 0) t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const server = await ServerProcess.start(model, { root, port, args: ['--threads', '2', '--quiet'] });
  t.teardown(() => server.crash());
  return server;
}

const firstOnly = (fault: Fault) => (n: number): Fault => (n === 1 ? fault : { kind: 'pass' });

/**
 * A proxy in front of `server` that lets the first connection send 2 MiB and then holds it: killed
 * then, the server surely dies mid-upload, however fast the client and however late the kill.
 */
async function holdingProxy(t: Tap, server: ServerProcess): Promise<number> {
  const proxy = await startFaultyProxy(server.port, firstOnly({ kind: 'hold-after-client-bytes', bytes: 2 * 1024 * 1024 }));
  t.teardown(() => proxy.close());
  return proxy.port;
}

t.jobs = 3;

for (const model of SERVER_MODELS) {
  t.test(`${model}: the server SIGKILLed mid-upload`, { buffered: true }, async (t) => {
    t.test('without --retry: one sentence, exit 1', async (t) => {
      const server = await processServer(t, model);
      const port = await holdingProxy(t, server);
      const [r] = await Promise.all([runCli(['client', 'put', bigFile, '--port', String(port)]), killMidUpload(server, 1024 * 1024)]);
      finished(t, r);
      t.equal(r.code, 1, 'exit 1');
      t.ok(isOneSentence(r.stderr), `one sentence: ${r.stderr}`);
      t.match(r.stderr, /the server closed the connection in the middle of the upload of big\.bin; the server discards partial uploads/);
    });

    t.test('with --retry 10: reconnects to the restarted server and finishes; the append lands exactly once', async (t) => {
      const first = await processServer(t, model);
      const port = await holdingProxy(t, first);
      fs.writeFileSync(path.join(first.root, 'log.bin'), BASE);
      // Ten retries (up to about 30 s of backoff) and a minute: a restart on a busy machine can take seconds.
      const run = runCli(['client', 'put', bigFile, '--as', 'log.bin', '--mode', 'append', '--retry', '10', '--port', String(port)], { limitMs: 60_000 });
      await killMidUpload(first, 1024 * 1024);
      await delay(300); // down for a moment: the client's first retry may find nobody
      await processServer(t, model, first.port, first.root);
      const r = await run;
      finished(t, r);
      t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
      t.match(r.stderr, /retrying in \d+\.\d s \(retry 1 of 10\)/, 'it said it was retrying');
      t.match(r.stdout, /log\.bin is now \d+ bytes on the server/);
      const content = readOrNull(first.root, 'log.bin');
      t.equal(content?.length, BASE.length + BIG_BYTES, 'the size of the base plus one append');
      t.ok(content?.equals(Buffer.concat([BASE, big])), 'exactly the base, then the file once');
    });
  });
}

// ---------------------------------------------------------------------------
// Faults on purpose, through a proxy, in front of an async server

async function behindProxy(t: Tap, faults: (n: number) => Fault): Promise<{ server: TestServer; proxy: Awaited<ReturnType<typeof startFaultyProxy>> }> {
  const server = await startTestServer('async');
  t.teardown(() => server.close());
  const proxy = await startFaultyProxy(server.port, faults);
  t.teardown(() => proxy.close());
  return { server, proxy };
}

t.test('a lost 226 after an append onto an existing file: STAT and GET show it committed; not sent again', async (t) => {
  const { server, proxy } = await behindProxy(t, firstOnly({ kind: 'drop-226' }));
  fs.writeFileSync(path.join(server.root, 'log.bin'), BASE);
  const r = await runCli(['client', 'put', bigFile, '--as', 'log.bin', '--mode', 'append', '--retry', '3', '--port', String(proxy.port)]);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /after all of log\.bin was sent but before confirming it.*retrying in/, 'it said why it retried');
  t.match(r.stdout, /committed by the attempt whose confirmation was lost/);
  t.equal(proxy.puts.length, 1, 'the PUT was sent once');
  t.ok(readOrNull(server.root, 'log.bin')?.equals(Buffer.concat([BASE, big])), 'the append is there exactly once');
});

t.test('a lost 226 for an append onto nothing, an overwrite and a new file: STAT shows it committed; not sent again', async (t) => {
  for (const [mode, name, existing] of [
    ['append', 'fresh.log', null],
    ['overwrite', 'over.bin', Buffer.from('old content')],
    ['new', 'new.bin', null],
  ] as const) {
    const { server, proxy } = await behindProxy(t, firstOnly({ kind: 'drop-226' }));
    if (existing !== null) fs.writeFileSync(path.join(server.root, name), existing);
    const r = await runCli(['client', 'put', bigFile, '--as', name, '--mode', mode, '--retry', '3', '--port', String(proxy.port)]);
    finished(t, r);
    t.equal(r.code, 0, `${mode}: exit 0 (${r.stderr.trim()})`);
    t.equal(proxy.puts.length, 1, `${mode}: the PUT was sent once`);
    t.ok(readOrNull(server.root, name)?.equals(big), `${mode}: the file is the upload, once`);
  }
});

t.test('a connection cut in the middle of the data: the append is sent again and lands once', async (t) => {
  const { server, proxy } = await behindProxy(t, firstOnly({ kind: 'cut-after-client-bytes', bytes: 5 * 1024 * 1024 }));
  fs.writeFileSync(path.join(server.root, 'log.bin'), BASE);
  const r = await runCli(['client', 'put', bigFile, '--as', 'log.bin', '--mode', 'append', '--retry', '3', '--port', String(proxy.port)]);
  finished(t, r);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /in the middle of the upload of log\.bin.*retrying in/);
  t.equal(proxy.puts.length, 2, 'the PUT was sent twice');
  t.ok(readOrNull(server.root, 'log.bin')?.equals(Buffer.concat([BASE, big])), 'the append is there exactly once');
  await eventually(() => tempFilesIn(server.root).length === 0, 'the cut upload left no temporary file');
});

t.test('without --retry, a lost 226: one sentence that says it may or may not have committed, exit 1', async (t) => {
  const { server, proxy } = await behindProxy(t, () => ({ kind: 'drop-226' }));
  const r = await runCli(['client', 'put', path.join(local, 'small.txt'), '--mode', 'new', '--port', String(proxy.port)]);
  finished(t, r);
  t.equal(r.code, 1);
  t.ok(isOneSentence(r.stderr), r.stderr);
  t.match(r.stderr, /after all of small\.txt was sent but before confirming it, so it may or may not have been committed/);
  t.equal(readOrNull(server.root, 'small.txt')?.toString(), 'small data\n', '(it had)');
});

t.test('the file changed by someone else meanwhile: the client stops rather than append twice', async (t) => {
  let root = '';
  const { server, proxy } = await behindProxy(
    t,
    firstOnly({ kind: 'drop-226', onDrop: () => fs.appendFileSync(path.join(root, 'log.bin'), 'ANOTHER WRITER\n') }),
  );
  root = server.root;
  fs.writeFileSync(path.join(root, 'log.bin'), BASE);
  const r = await runCli(['client', 'put', bigFile, '--as', 'log.bin', '--mode', 'append', '--retry', '3', '--port', String(proxy.port)]);
  finished(t, r);
  t.equal(r.code, 1);
  t.match(r.stderr.trim().split('\n').at(-1) ?? '', /^socklab: log\.bin changed on the server while the upload was retried .* not sending the append again/);
  t.equal(proxy.puts.length, 1, 'the PUT was not sent again');
  t.ok(readOrNull(root, 'log.bin')?.equals(Buffer.concat([BASE, big, Buffer.from('ANOTHER WRITER\n')])), 'our append is there once, and theirs');
});

t.test('retries exhausted: the reason and "gave up after N retries", exit 1', async (t) => {
  const port = String(await closedPort());
  const r = await runCli(['client', 'put', path.join(local, 'small.txt'), '--retry', '2', '--port', port]);
  finished(t, r);
  t.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 3, 'two "retrying" lines and the final sentence');
  t.match(lines[0] ?? '', /connection refused.*; retrying in \d\.\d s \(retry 1 of 2\)$/);
  t.match(lines[2] ?? '', /^socklab: could not connect to 127\.0\.0\.1:\d+: connection refused .*\(gave up after 2 retries\)$/);
  t.notOk(r.stderr.includes('    at '), 'no stack trace');
});

t.test('what is retried, and how long the client waits in between', async (t) => {
  const failure = (code: (typeof ErrorCodes)[keyof typeof ErrorCodes], cause?: unknown) => new ClientFailure(code, 'x', { cause });
  t.ok(isRetriable(failure(ErrorCodes.CONNECTION_CLOSED)), 'a broken connection');
  t.ok(isRetriable(failure(ErrorCodes.CONNECTION_REFUSED)), 'a server that is not there (yet)');
  t.ok(isRetriable(failure(ErrorCodes.REPLY_ERROR, new ReplyError({ code: 421, text: 'shutting down' }, 'PUT'))), '421 shutting down / too many connections');
  t.notOk(isRetriable(failure(ErrorCodes.REPLY_ERROR, new ReplyError({ code: 452, text: 'out of space' }, 'PUT'))), 'not 452: the same upload would fail again');
  t.notOk(isRetriable(failure(ErrorCodes.CHECKSUM_MISMATCH)), 'not a sha256 mismatch');
  t.notOk(isRetriable(new Error('bug')), 'not a bug');
  t.same([1, 2, 3, 4, 5, 9].map((n) => backoffMs(n, () => 0.5)), [250, 500, 1000, 2000, 4000, 4000], 'doubling from 250 ms, at most 4 s');
  t.same([backoffMs(1, () => 0), backoffMs(1, () => 0.999)], [188, 312], '±25 % jitter');
});
