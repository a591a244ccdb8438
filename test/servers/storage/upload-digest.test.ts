/**
 * The running sha256 of an upload, inline or on a hasher thread: whatever the
 * chunking, the wrap-around of the ring, the number of uploads at once or the
 * uploads abandoned halfway, the digest is the sha256 of the bytes taken.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { ErrorCodes } from '../../../protocol/errors.js';
import { blockingDigest, eventLoopDigest, OFF_THREAD_MIN_BYTES, warmUpHasher, type BlockingDigest, type EventLoopDigest } from '../../../servers/storage/upload-digest.js';
import type { Tap } from '../../helpers/tap.js';

const MiB = 1024 * 1024;
// A large upload uses a hasher thread only once one is up (until then it is hashed inline): start one first.
await warmUpHasher();
/** Ten times the hasher's 4 MiB ring, so the ring wraps and fills. */
const data = randomBytes(40 * MiB);
const expected = createHash('sha256').update(data).digest('hex');

/**
 * Runs `script` (an ES module's text) in a worker thread, as a thread of the
 * workers server: `workerData.module` is upload-digest.js, `workerData.bytes`
 * the bytes; resolves with the one message it posts.
 */
async function inWorkerThread<Reply>(script: string, bytes: Uint8Array, extra: Record<string, unknown> = {}): Promise<Reply> {
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(script)}`), {
    workerData: { module: new URL('../../../servers/storage/upload-digest.js', import.meta.url).href, bytes, ...extra },
  });
  try {
    return await new Promise<Reply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  } finally {
    await worker.terminate();
  }
}

/** `bytes` cut into pieces of random sizes, from 1 byte to `maxPiece`, some far larger than a socket chunk. */
function pieces(bytes: Uint8Array, maxPiece: number, seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let state = seed;
  for (let at = 0; at < bytes.length; ) {
    state = (state * 1103515245 + 12345) >>> 0;
    const size = 1 + (state % maxPiece);
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

async function digestOnEventLoop(digest: EventLoopDigest, chunks: Uint8Array[], awaitEach: boolean): Promise<string> {
  for (const chunk of chunks) {
    const waiting = digest.take(chunk);
    if (awaitEach && waiting !== undefined) await waiting;
  }
  return digest.finish();
}

function digestBlocking(digest: BlockingDigest, chunks: Uint8Array[]): string {
  for (const chunk of chunks) digest.take(chunk);
  return digest.finish();
}

t.test('event-loop digest: any chunking, waiting or not, gives the sha256', async (t) => {
  for (const [maxPiece, awaitEach] of [[64 * 1024, true], [20 * MiB, true], [3 * MiB, false]] as const) {
    const digest = eventLoopDigest(data.length);
    t.ok(digest.onThread, 'a large upload is hashed on a hasher thread');
    const hex = await digestOnEventLoop(digest, pieces(data, maxPiece, maxPiece), awaitEach);
    t.equal(hex, expected, `pieces up to ${maxPiece} bytes, ${awaitEach ? 'waiting when asked' : 'never waiting'}`);
  }
});

t.test('bytes that come while older ones wait for room go in behind them, and finish waits for all of them', async (t) => {
  // A producer that ignores the digest's promise, now faster than the hasher, now slower: during the
  // pauses the hasher makes room while older bytes still wait in the digest (whose own drain cannot
  // run until this loop yields). The last 10 MiB come in one burst, so bytes still wait at finish().
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const burstFrom = data.length - 10 * MiB;
  for (const [maxPiece, pauseMs] of [[3 * MiB, 1], [6 * MiB, 2]] as const) {
    const digest = eventLoopDigest(data.length);
    t.ok(digest.onThread, 'on a hasher thread');
    let at = 0;
    for (const chunk of pieces(data, maxPiece, maxPiece + pauseMs)) {
      void digest.take(chunk);
      at += chunk.length;
      if (at < burstFrom) Atomics.wait(pause, 0, 0, pauseMs);
    }
    t.equal(await digest.finish(), expected, `pieces up to ${maxPiece} bytes, ${pauseMs} ms apart`);
  }
});

t.test('blocking digest: any chunking gives the sha256', async (t) => {
  for (const maxPiece of [64 * 1024, 20 * MiB]) {
    const digest = blockingDigest(data.length);
    t.ok(digest.onThread, 'a large upload is hashed on a hasher thread');
    t.equal(digestBlocking(digest, pieces(data, maxPiece, 7)), expected, `pieces up to ${maxPiece} bytes`);
  }
});

t.test('from OFF_THREAD_MIN_BYTES on, an upload is hashed on a thread; below it inline, with the same result', async (t) => {
  const small = data.subarray(0, OFF_THREAD_MIN_BYTES - 1);
  const smallExpected = createHash('sha256').update(small).digest('hex');
  const blocking = blockingDigest(small.length);
  const eventLoop = eventLoopDigest(small.length);
  t.notOk(blocking.onThread || eventLoop.onThread, 'one byte below: inline');
  t.equal(digestBlocking(blocking, pieces(small, 100_000, 3)), smallExpected, 'blocking');
  t.equal(await digestOnEventLoop(eventLoop, pieces(small, 100_000, 3), true), smallExpected, 'event loop');
  const least = data.subarray(0, OFF_THREAD_MIN_BYTES);
  const leastExpected = createHash('sha256').update(least).digest('hex');
  const onThread = blockingDigest(least.length);
  t.ok(onThread.onThread, 'exactly OFF_THREAD_MIN_BYTES: on a thread');
  t.equal(digestBlocking(onThread, pieces(least, 100_000, 4)), leastExpected);
  const onThreadToo = eventLoopDigest(least.length);
  t.ok(onThreadToo.onThread, 'on the event loop too');
  t.equal(await digestOnEventLoop(onThreadToo, pieces(least, 100_000, 5), true), leastExpected);
});

t.test('more uploads at once than there are hasher threads: each gets its own digest', async (t) => {
  const count = os.availableParallelism() + 2;
  const uploads = Array.from({ length: count }, (_, index) => data.subarray(index * MiB, index * MiB + 24 * MiB));
  const digests = uploads.map((bytes) => eventLoopDigest(bytes.length));
  // Interleaved, as uploads from several clients arrive on one event loop.
  const chunked = uploads.map((bytes, index) => pieces(bytes, 256 * 1024, index + 1));
  const waits: Promise<void>[] = [];
  for (let round = 0; chunked.some((chunks) => round < chunks.length); round++) {
    for (const [index, chunks] of chunked.entries()) {
      const chunk = chunks[round];
      if (chunk === undefined) continue;
      const waiting = digests[index]!.take(chunk);
      if (waiting !== undefined) waits.push(waiting);
    }
  }
  await Promise.all(waits);
  const hexes = await Promise.all(digests.map((digest) => digest.finish()));
  t.same(hexes, uploads.map((bytes) => createHash('sha256').update(bytes).digest('hex')));
});

t.test('abandoned halfway, again and again: the hasher threads stay usable and correct', async (t) => {
  for (let cycle = 0; cycle < 6; cycle++) {
    const dropped = eventLoopDigest(data.length);
    const chunks = pieces(data, 5 * MiB, cycle + 11);
    const waits: Promise<void>[] = [];
    for (const chunk of chunks.slice(0, chunks.length / 2)) {
      const waiting = dropped.take(chunk);
      if (waiting !== undefined) waits.push(waiting);
    }
    dropped.abandon();
    dropped.abandon(); // twice is harmless
    await Promise.all(waits);
    const blockingDropped = blockingDigest(data.length);
    blockingDropped.take(data.subarray(0, 30 * MiB));
    blockingDropped.abandon();
  }
  t.equal(await digestOnEventLoop(eventLoopDigest(data.length), pieces(data, MiB, 5), true), expected, 'the next digest is right');
  t.equal(digestBlocking(blockingDigest(data.length), pieces(data, MiB, 6)), expected, 'and a blocking one too');
});

t.test('a worker thread (as in the workers server) hashes through its own hasher thread', async (t) => {
  const script = `
    import { workerData, parentPort } from 'node:worker_threads';
    const { blockingDigest, warmUpHasher } = await import(workerData.module);
    await warmUpHasher();
    const bytes = Buffer.from(workerData.bytes);
    const digest = blockingDigest(bytes.length);
    for (let at = 0; at < bytes.length; at += 65536) digest.take(bytes.subarray(at, at + 65536));
    parentPort.postMessage({ onThread: digest.onThread, hex: digest.finish() });
  `;
  const bytes = data.subarray(0, 20 * MiB);
  const reply = await inWorkerThread<{ onThread: boolean; hex: string }>(script, bytes);
  t.ok(reply.onThread, 'on a hasher thread of the worker\'s own');
  t.equal(reply.hex, createHash('sha256').update(bytes).digest('hex'));
});

t.test('upload after upload in pieces that overrun the ring: every digest is right', async (t) => {
  // A drain of what did not fit can end within the call that starts it, when the hasher made room meanwhile;
  // once that left the next piece's overflow with no drain at all, and about one digest in ten came out wrong.
  const bytes = data.subarray(0, 9 * MiB);
  const right = createHash('sha256').update(bytes).digest('hex');
  let wrong = 0;
  for (let upload = 0; upload < 200; upload++) {
    const digest = eventLoopDigest(bytes.length);
    const piece = 512 * 1024 + 1 + (upload % 7) * 4096;
    for (let at = 0; at < bytes.length; at += piece) {
      const waiting = digest.take(bytes.subarray(at, at + piece));
      if (waiting !== undefined) await waiting;
    }
    if ((await digest.finish()) !== right) wrong++;
  }
  t.equal(wrong, 0, 'no wrong digest in 200 uploads');
});

t.test('abandoned while its digest is awaited (the commit failed beside it): finish ends with an error, the hasher is reusable', async (t) => {
  const bytes = data.subarray(0, 12 * MiB);
  const digest = eventLoopDigest(bytes.length);
  for (let at = 0; at < bytes.length; at += MiB) {
    const waiting = digest.take(bytes.subarray(at, at + MiB));
    if (waiting !== undefined) await waiting;
  }
  const finished = digest.finish();
  digest.abandon();
  // Without the check, finish looped on a state that could no longer become Digested, starving the event loop.
  await t.rejects(Promise.resolve(finished), { code: ErrorCodes.STORAGE_FAILED }, 'finish rejects');
  t.equal(await digestOnEventLoop(eventLoopDigest(data.length), pieces(data, MiB, 9), true), expected, 'the next digest is right');
});

t.test('an abandon after finish (an upload cleaned up once committed) leaves the next upload on that hasher alone', async (t) => {
  const bytes = data.subarray(0, 12 * MiB);
  const right = createHash('sha256').update(bytes).digest('hex');
  for (const flavour of ['blocking', 'event loop'] as const) {
    const first = flavour === 'blocking' ? blockingDigest(bytes.length) : eventLoopDigest(bytes.length);
    t.ok(first.onThread, `${flavour}: on a hasher thread`);
    for (const chunk of pieces(bytes, MiB, 31)) await first.take(chunk);
    t.equal(await first.finish(), right);
    // Nothing else is hashing: the next upload gets the hasher the first one just gave back.
    const next = flavour === 'blocking' ? blockingDigest(bytes.length) : eventLoopDigest(bytes.length);
    t.ok(next.onThread, `${flavour}: the next upload on a hasher thread too`);
    first.abandon();
    for (const chunk of pieces(bytes, MiB, 32)) await next.take(chunk);
    t.equal(await next.finish(), right, `${flavour}: the next upload's digest is whole`);
  }
});

/**
 * Runs `cycles` jobs in a worker thread, which has a single hasher (a hasher
 * left in a wrong state shows as no hasher at all), each abandoned by
 * `abandonOne`: JavaScript with `digest` (a job on the hasher) and `bytes` in
 * scope that returns the job's finish() promise. Then checks that every such
 * finish rejected (or, with `finishMayWin`, gave the right digest: it took the
 * digest before the abandon came), that the hasher came back each time, and
 * that one more job's digest is right. `size` is the upload size announced
 * (it decides the thread), by default the bytes' length.
 */
async function abandonCycles(
  t: Tap,
  { cycles, bytes, size, abandonOne, finishMayWin = false }: { cycles: number; bytes: Uint8Array; size?: number; abandonOne: string; finishMayWin?: boolean },
): Promise<void> {
  const right = createHash('sha256').update(bytes).digest('hex');
  const script = `
    import { workerData, parentPort } from 'node:worker_threads';
    const { eventLoopDigest, warmUpHasher } = await import(workerData.module);
    await warmUpHasher();
    const bytes = Buffer.from(workerData.bytes);
    const report = { cycles: 0, rejected: 0, wrong: 0, lostAt: null, hex: null };
    const onThread = async () => {
      for (const deadline = Date.now() + 3000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 5))) {
        const digest = eventLoopDigest(workerData.size);
        if (digest.onThread) return digest;
      }
      return null;
    };
    for (let cycle = 0; cycle < workerData.cycles; cycle++) {
      const digest = await onThread();
      if (digest === null) { report.lostAt = cycle; break; }
      const finishing = (() => { ${abandonOne} })();
      try {
        const hex = await finishing;
        if (!workerData.finishMayWin || hex !== workerData.right) report.wrong++;
      } catch (error) {
        if (error.code === workerData.storageFailed) report.rejected++;
        else report.wrong++;
      }
      report.cycles++;
    }
    const last = report.lostAt === null ? await onThread() : null;
    if (last === null) report.lostAt ??= 'the end';
    else { await last.take(bytes); report.hex = await last.finish(); }
    parentPort.postMessage(report);
  `;
  const report = await inWorkerThread<{ cycles: number; rejected: number; wrong: number; lostAt: number | string | null; hex: string | null }>(script, bytes, {
    storageFailed: ErrorCodes.STORAGE_FAILED,
    size: size ?? bytes.length,
    cycles,
    finishMayWin,
    right,
  });
  t.equal(report.lostAt, null, 'the hasher came back after every abandoned job');
  t.equal(report.cycles, cycles);
  t.equal(report.wrong, 0, finishMayWin ? 'every finish rejected with STORAGE_FAILED or gave the right digest' : 'every abandoned finish rejected with STORAGE_FAILED');
  t.ok(report.rejected > 0, 'an abandon came before the finish took the digest');
  t.equal(report.hex, right, 'and the next digest is right');
}

t.test('abandoned right after it began, again and again: finish rejects, and the hasher always comes back', async (t) => {
  // Each cycle abandons a job a few microseconds after it began, often before the hasher thread has even
  // woken to it, or while it is writing the digest: two windows that each once lost the hasher for good.
  await abandonCycles(t, {
    cycles: 60,
    bytes: data.subarray(0, 9 * MiB),
    // More than the ring holds: the rest waits for a drain, and finish waits for that.
    abandonOne: 'void digest.take(bytes); const finishing = digest.finish(); digest.abandon(); return finishing;',
  });
});

t.test('abandoned once its digest is written but before finish took it: the hasher comes back', async (t) => {
  // The event loop is held while the hasher writes the digest, so the abandon meets the job done rather
  // than in progress: the one state the hasher thread itself never leaves, so the abandon must hand the
  // hasher back, or nobody ever will. The bytes fit in the ring (take needs no drain); the size announced
  // puts the job on the hasher. On a busy machine the hasher may digest between finish() marking the job
  // finished and looking for the digest: that finish wins, and its abandon comes after.
  await abandonCycles(t, {
    cycles: 10,
    finishMayWin: true,
    bytes: data.subarray(0, MiB),
    size: OFF_THREAD_MIN_BYTES,
    abandonOne: `
      digest.take(bytes);
      const finishing = digest.finish();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // the hasher digests 1 MiB in a few ms
      digest.abandon();
      return finishing;`,
  });
});

t.test('a hasher thread that dies mid-upload: the upload fails with an error that says so, at once; the next one is hashed inline', async (t) => {
  // The thread is ended from outside (as a crash or a resource limit would); a wait for it would otherwise
  // only end at the stall timeout, 30 s, with the client and its file slot held all along.
  const script = `
    import { workerData, parentPort } from 'node:worker_threads';
    const { eventLoopDigest, blockingDigest, warmUpHasher } = await import(workerData.module);
    await warmUpHasher();
    const bytes = Buffer.from(workerData.bytes);
    const MiB = 1024 * 1024;
    const digest = eventLoopDigest(bytes.length);
    const report = { onThread: digest.onThread, error: null, nextOnThread: null, hex: null };
    await digest.take(bytes.subarray(0, MiB));
    await digest.hasher.worker.terminate(); // the hasher's Worker: private to upload-digest, reached here on purpose
    await new Promise((resolve) => setImmediate(resolve));
    const rest = (async () => {
      await digest.take(bytes.subarray(MiB)); // more than the ring's room: this waits on the dead thread
      return digest.finish();
    })();
    const noAnswer = new Promise((resolve) => setTimeout(resolve, 5000, 'no answer within 5 s')).then((text) => ({ code: text, message: text }));
    try {
      const outcome = await Promise.race([rest, noAnswer]);
      report.error = typeof outcome === 'string' ? { code: 'none', message: 'a digest: ' + outcome } : outcome;
    } catch (error) {
      report.error = { code: error.code, message: error.message };
    }
    digest.abandon();
    const next = blockingDigest(bytes.length);
    report.nextOnThread = next.onThread;
    for (let at = 0; at < bytes.length; at += MiB) next.take(bytes.subarray(at, at + MiB));
    report.hex = next.finish();
    parentPort.postMessage(report);
  `;
  const bytes = data.subarray(0, 9 * MiB);
  const report = await inWorkerThread<{ onThread: boolean; error: unknown; nextOnThread: boolean; hex: string }>(script, bytes);
  t.ok(report.onThread, 'the upload was on a hasher thread');
  t.same(report.error, { code: ErrorCodes.STORAGE_FAILED, message: 'the thread computing the upload checksum stopped' });
  t.notOk(report.nextOnThread, 'the dead thread is never handed a job again (a worker thread has only one)');
  t.equal(report.hex, createHash('sha256').update(bytes).digest('hex'), 'and the next digest is right');
});
