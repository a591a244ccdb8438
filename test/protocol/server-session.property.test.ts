/**
 * Property-based tests (fast-check) of the protocol core, ServerSession,
 * driven as a server drives it (fixtures.ts: SessionDriver over an in-memory
 * storage). Hostile byte streams (test/reliability/hostile-bytes.ts), cut into
 * chunks at random points:
 * - never make the core throw, and every byte it emits is a valid reply line,
 *   a LIST entry after `211 n` or a GET's data block (server-output.ts), with
 *   nothing after a reply that closes;
 * - give the same replies and the same files however they are cut;
 * - keep the session's invariants after every chunk: while reading lines it
 *   never holds more than a line's worth of bytes (the line cap), `isIdle`
 *   means nothing is buffered, `lastReplyCode` is the last code sent.
 * Plus the line cap exactly at its edge, and a model-based test: random
 * command sequences run against the session and against a small model of
 * PROTOCOL.md, which must agree on every reply and on every file.
 */
import fc from 'fast-check';
import t from 'tap';
import { MAX_LINE_BYTES, ServerSession } from '../../protocol/index.js';
import { cutAt, cutsArb, hostileStreamArb, longLineArb } from '../reliability/hostile-bytes.js';
import { ServerOutputReader, type OutputItem } from '../reliability/server-output.js';
import { MemoryStorage, SessionDriver } from './fixtures.js';
import { registerModelTest } from './session-model.js';

const RUNS = Number(process.env.SOCKLAB_PROPERTY_RUNS ?? 400);
const INITIAL = { a: 'hello', 'notes.txt': '', 'заметки-1.txt': 'привет\n' };

function driverFor(maxFileSize: number): SessionDriver {
  const storage = new MemoryStorage(INITIAL);
  storage.quota = 4096;
  return new SessionDriver(storage, { maxFileSize });
}

/** Feeds the chunks, checking the session's invariants after each; returns the output read as PROTOCOL.md allows it. */
function run(chunks: readonly Uint8Array[], maxFileSize: number): { driver: SessionDriver; items: OutputItem[] } {
  const driver = driverFor(maxFileSize);
  const reader = new ServerOutputReader();
  let seen = 0;
  for (const chunk of chunks) {
    driver.feed(chunk);
    for (const out of driver.output.slice(seen)) reader.push(out);
    seen = driver.output.length;
    checkInvariants(driver.session, reader);
  }
  return { driver, items: reader.items };
}

function checkInvariants(session: ServerSession, reader: ServerOutputReader): void {
  const fail = (why: string) => {
    throw new Error(`invariant broken: ${why}`);
  };
  if (session.isClosed !== reader.closed) fail(`isClosed is ${session.isClosed} but the output ${reader.closed ? 'ends with' : 'has no'} closing reply`);
  if (session.isClosed && (session.isIdle || session.isReceivingUpload)) fail('a closed session is idle or receiving');
  if (!session.isClosed && !session.isReceivingUpload) {
    // Waiting for the rest of a line: never more than the longest line (+ its CR) held without an answer.
    if (session.bufferedBytes > MAX_LINE_BYTES + 1) fail(`${session.bufferedBytes} bytes buffered while reading a line`);
    if (session.isIdle !== (session.bufferedBytes === 0)) fail(`isIdle is ${session.isIdle} with ${session.bufferedBytes} bytes buffered`);
  }
  const lastReply = [...reader.items].reverse().find((item) => item.kind === 'reply');
  if (lastReply?.kind === 'reply' && session.lastReplyCode !== lastReply.code) fail(`lastReplyCode ${session.lastReplyCode}, last reply sent ${lastReply.code}`);
  if (!session.isReceivingUpload && !reader.atBoundary) fail('a reply, LIST or GET data block left unfinished while the session waits for a request');
}

function describeItems(items: readonly OutputItem[]): string[] {
  return items.map((item) => (item.kind === 'data' ? `DATA ${Buffer.from(item.bytes).toString('hex')}` : item.line));
}

t.test('hostile byte streams cut at random points: no throw, only valid output, invariants kept', async (t) => {
  fc.assert(
    fc.property(hostileStreamArb, cutsArb, fc.constantFrom(64, 300, 64 * 1024 * 1024), (bytes, cuts, maxFileSize) => {
      run(cutAt(bytes, cuts), maxFileSize);
    }),
    { numRuns: RUNS * 5 },
  );
  t.pass(`${RUNS * 5} streams`);
});

t.test('however a stream is cut, the replies and the files are the same', async (t) => {
  fc.assert(
    fc.property(hostileStreamArb, cutsArb, (bytes, cuts) => {
      const whole = run([bytes], 300);
      const cut = run(cutAt(bytes, cuts), 300);
      const oneByOne = run(cutAt(bytes, Array.from({ length: bytes.length }, (_, i) => i / bytes.length)), 300);
      for (const other of [cut, oneByOne]) {
        if (JSON.stringify(describeItems(other.items)) !== JSON.stringify(describeItems(whole.items))) throw new Error('different replies');
        if (JSON.stringify(other.driver.storage.snapshot()) !== JSON.stringify(whole.driver.storage.snapshot())) throw new Error('different files');
      }
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} streams, each fed whole, cut at random and one byte at a time`);
});

t.test('the line cap: a line over 1024 bytes gets 500 line too long and the session closes, at any cut', async (t) => {
  fc.assert(
    fc.property(longLineArb, cutsArb, (line, cuts) => {
      const { driver, items } = run(cutAt(line, cuts), 300);
      const text = Buffer.from(line).toString('latin1');
      const ended = text.endsWith('\n');
      const content = text.replace(/\n$/, '').replace(/\r$/, '');
      const tooLong = ended ? content.length > MAX_LINE_BYTES : text.length > MAX_LINE_BYTES + 1;
      const replies = describeItems(items);
      if (tooLong) {
        if (JSON.stringify(replies) !== JSON.stringify(['500 line too long']) || !driver.session.isClosed) {
          throw new Error(`a ${content.length}-byte line got ${JSON.stringify(replies)}`);
        }
      } else if (driver.session.isClosed || replies.includes('500 line too long')) {
        throw new Error(`a ${content.length}-byte line (${ended ? 'ended' : 'not ended yet'}) was refused as too long`);
      }
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

registerModelTest(t, RUNS);
