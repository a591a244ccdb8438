import t from 'tap';
import { MAX_LINE_BYTES, ReceiveBuffer, type LineResult } from '../../protocol/index.js';
import { bytes, latin1, raw } from './fixtures.js';

function lineText(r: LineResult): string {
  return r.kind === 'line' ? `line:${latin1(r.bytes)}` : r.kind;
}

function takeAll(buf: ReceiveBuffer, max = MAX_LINE_BYTES): string[] {
  const out: string[] = [];
  for (;;) {
    const r = buf.takeLine(max);
    out.push(lineText(r));
    if (r.kind !== 'line') return out;
  }
}

t.test('an empty buffer needs more', async (t) => {
  const buf = new ReceiveBuffer();
  t.equal(buf.length, 0);
  t.equal(buf.takeLine(10).kind, 'need-more');
  t.equal(buf.takeBytes(10), null);
  t.equal(buf.drain().length, 0);
  buf.push(new Uint8Array(0));
  t.equal(buf.length, 0, 'an empty chunk adds nothing');
  t.equal(buf.takeBytes(10), null);
});

t.test('lines: LF ends a line, the LF is not part of it', async (t) => {
  const buf = new ReceiveBuffer();
  buf.push(bytes('PING\nLIST\n\nHELP'));
  t.same(takeAll(buf), ['line:PING', 'line:LIST', 'line:', 'need-more']);
  t.equal(buf.length, 4, 'the unterminated HELP stays buffered');
  buf.push(bytes('\n'));
  t.same(takeAll(buf), ['line:HELP', 'need-more']);
  t.equal(buf.length, 0);
});

t.test('CR is dropped only right before LF', async (t) => {
  const buf = new ReceiveBuffer();
  buf.push(raw('a\r\nb\rc\n\r\n\r\r\nd\r \n\re\n'));
  t.same(takeAll(buf), [
    'line:a',
    'line:b\rc', // lone CR kept
    'line:', // CRLF alone: empty line
    'line:\r', // only the CR right before the LF goes
    'line:d\r ', // CR not right before LF: kept
    'line:\re', // leading CR kept
    'need-more',
  ]);
});

t.test('a CR at the end of the buffer waits for what follows', async (t) => {
  const buf = new ReceiveBuffer();
  buf.push(raw('abc\r'));
  t.equal(buf.takeLine(10).kind, 'need-more');
  buf.push(raw('\n'));
  t.same(takeAll(buf), ['line:abc', 'need-more']);
  buf.push(raw('x\r'));
  t.equal(buf.takeLine(10).kind, 'need-more');
  buf.push(raw('y\n'));
  t.same(takeAll(buf), ['line:x\ry', 'need-more']);
});

t.test('lines spanning several chunks', async (t) => {
  const buf = new ReceiveBuffer();
  for (const part of ['PU', 'T a', ' 1', '\r', '\nPI', 'NG', '\n']) buf.push(bytes(part));
  t.same(takeAll(buf), ['line:PUT a 1', 'line:PING', 'need-more']);
});

t.test('a line near the cap whose LF is in a later chunk, all buffered: found at once', async (t) => {
  // The server reads only when the core asks for more bytes: a line that is
  // already complete in the buffer but not found would never be answered.
  for (const [chunks, line] of [
    [['x'.repeat(9), '\n'], 'x'.repeat(9)],
    [['x'.repeat(10), '\r\n'], 'x'.repeat(10)],
    [['x'.repeat(5), 'y'.repeat(5), '\r', '\nPING\n'], 'x'.repeat(5) + 'y'.repeat(5)],
  ] as const) {
    const buf = new ReceiveBuffer();
    for (const chunk of chunks) buf.push(bytes(chunk));
    t.equal(lineText(buf.takeLine(10)), `line:${line}`, JSON.stringify(chunks));
  }
});

t.test('line cap: 1024 content bytes pass, 1025 are too long', async (t) => {
  const cap = MAX_LINE_BYTES;
  t.equal(cap, 1024, 'PROTOCOL.md: a request line is at most 1024 bytes');
  const cases: Array<[string, string, string]> = [
    ['1024 + LF', 'a'.repeat(1024) + '\n', 'line'],
    ['1024 + CR LF', 'a'.repeat(1024) + '\r\n', 'line'],
    ['1023 + CR LF', 'a'.repeat(1023) + '\r\n', 'line'],
    ['1025 + LF', 'a'.repeat(1025) + '\n', 'too-long'],
    ['1025 + CR LF', 'a'.repeat(1025) + '\r\n', 'too-long'],
    ['1024 + CR CR LF (1025 content bytes)', 'a'.repeat(1024) + '\r\r\n', 'too-long'],
    ['1023 + CR CR LF (1024 content bytes)', 'a'.repeat(1023) + '\r\r\n', 'line'],
  ];
  for (const [what, input, kind] of cases) {
    for (const chunking of ['whole', 'bytewise'] as const) {
      const buf = new ReceiveBuffer();
      const data = raw(input);
      let r: LineResult = { kind: 'need-more' };
      if (chunking === 'whole') {
        buf.push(data);
        r = buf.takeLine(cap);
      } else {
        for (let i = 0; i < data.length && r.kind === 'need-more'; i++) {
          buf.push(data.subarray(i, i + 1));
          r = buf.takeLine(cap);
        }
      }
      t.equal(r.kind, kind, `${what} (${chunking})`);
      if (r.kind === 'line') {
        const content = input.endsWith('\r\n') ? input.slice(0, -2) : input.slice(0, -1);
        t.equal(latin1(r.bytes), content, `${what} (${chunking}): content`);
        t.equal(buf.length, 0);
      }
    }
  }
});

t.test('too long is detected without a LF once more than cap + 1 bytes are buffered', async (t) => {
  const cap = 8;
  const buf = new ReceiveBuffer();
  buf.push(raw('a'.repeat(cap)));
  t.equal(buf.takeLine(cap).kind, 'need-more', 'cap bytes: might still be a line');
  buf.push(raw('\r'));
  t.equal(buf.takeLine(cap).kind, 'need-more', 'cap + 1 bytes: might be cap bytes + CR before LF');
  buf.push(raw('b'));
  t.equal(buf.takeLine(cap).kind, 'too-long', 'cap + 2 bytes without LF: can never be a line');

  // The same, bytes arriving one by one, and a big cap.
  const big = new ReceiveBuffer();
  let result: LineResult = { kind: 'need-more' };
  let fed = 0;
  while (result.kind === 'need-more' && fed < 5000) {
    big.push(raw('x'));
    fed++;
    result = big.takeLine(MAX_LINE_BYTES);
  }
  t.equal(result.kind, 'too-long');
  t.equal(fed, MAX_LINE_BYTES + 2, 'reported as soon as the (cap + 2)th byte arrives');

  // In one big chunk: no need to wait for anything.
  const once = new ReceiveBuffer();
  once.push(new Uint8Array(100_000).fill(0x61));
  t.equal(once.takeLine(MAX_LINE_BYTES).kind, 'too-long');
});

t.test('a LF far beyond the cap in the same chunk is still too long', async (t) => {
  const buf = new ReceiveBuffer();
  buf.push(raw('y'.repeat(2000) + '\nPING\n'));
  t.equal(buf.takeLine(MAX_LINE_BYTES).kind, 'too-long');
});

t.test('multi-byte UTF-8 counts bytes, not characters', async (t) => {
  // 512 two-byte characters = 1024 bytes: fits; 513 do not.
  const fits = new ReceiveBuffer();
  fits.push(bytes('я'.repeat(512) + '\n'));
  const r = fits.takeLine(1024);
  t.equal(r.kind, 'line');
  if (r.kind === 'line') t.equal(r.bytes.length, 1024);
  const over = new ReceiveBuffer();
  over.push(bytes('я'.repeat(513) + '\n'));
  t.equal(over.takeLine(1024).kind, 'too-long');
});

t.test('takeBytes slices without copying what the session consumes before the next push; a rest left then is copied once', async (t) => {
  const buf = new ReceiveBuffer();
  const first = bytes('abcdef');
  const second = bytes('ghij');
  buf.push(first);
  t.equal(buf.length, 6);

  const a = buf.takeBytes(4);
  t.ok(a);
  if (a === null) return;
  t.equal(latin1(a), 'abcd');
  t.equal(a.buffer, first.buffer, 'a slice of the chunk pushed, not a copy');
  t.equal(a.byteOffset, first.byteOffset);
  t.equal(buf.length, 2);

  buf.push(second);
  t.equal(buf.length, 6);
  const b = buf.takeBytes(100);
  t.ok(b);
  if (b === null) return;
  t.equal(latin1(b), 'ef', 'never more than what is left in the head chunk');
  t.not(b.buffer, first.buffer, 'left unread at the next push: copied, so the first chunk\'s memory is free for reuse');

  const c = buf.takeBytes(4);
  t.equal(c, second, 'a whole chunk is handed over as is');
  t.equal(buf.length, 0);
  t.equal(buf.takeBytes(4), null);

  buf.push(bytes('xyz'));
  t.equal(buf.takeBytes(0), null, 'zero bytes asked: nothing');
  t.equal(buf.takeBytes(-1), null);
  t.equal(buf.length, 3);
});

t.test('lines and raw bytes mix (a PUT, its data block, the next command)', async (t) => {
  const buf = new ReceiveBuffer();
  const chunk = bytes('PUT a 5\r\nx\ny\r\nPING\nrest');
  buf.push(chunk);
  t.same(lineText(buf.takeLine(1024)), 'line:PUT a 5');
  const data = buf.takeBytes(5);
  t.ok(data);
  if (data === null) return;
  t.equal(latin1(data), 'x\ny\r\n', 'LF and CR inside data are data');
  t.equal(data.buffer, chunk.buffer, 'no copy');
  t.same(takeAll(buf), ['line:PING', 'need-more']);
  t.equal(latin1(buf.drain()), 'rest');
  t.equal(buf.length, 0);
});

t.test('after raw bytes, a line search does not skip a LF', async (t) => {
  // Scan a partial line, then take part of it as raw bytes (as a server would
  // not, but the buffer must stay consistent), then find the LF.
  const buf = new ReceiveBuffer();
  buf.push(bytes('abcdefgh'));
  t.equal(buf.takeLine(100).kind, 'need-more');
  const head = buf.takeBytes(3);
  t.equal(head && latin1(head), 'abc');
  buf.push(bytes('\nZ\n'));
  t.same(takeAll(buf, 100), ['line:defgh', 'line:Z', 'need-more']);
  // And with the LF inside what was already scanned, then raw-consumed past.
  const b2 = new ReceiveBuffer();
  b2.push(bytes('0123'));
  t.equal(b2.takeLine(100).kind, 'need-more');
  b2.push(bytes('45\n67\n'));
  const raw6 = b2.takeBytes(4);
  t.equal(raw6 && latin1(raw6), '0123');
  t.same(takeAll(b2, 100), ['line:45', 'line:67', 'need-more']);
});

t.test('drain returns everything across chunks', async (t) => {
  const buf = new ReceiveBuffer();
  buf.push(bytes('ab'));
  buf.push(bytes('c\nd'));
  buf.push(bytes('ef'));
  t.same(lineText(buf.takeLine(10)), 'line:abc');
  t.equal(latin1(buf.drain()), 'def');
  t.equal(buf.length, 0);
  t.equal(buf.takeLine(10).kind, 'need-more');
});

t.test('byte-by-byte feeding finds the same lines as one chunk', async (t) => {
  const input = raw('PING\r\nECHO  a b \n\r\n\nx\ry\r\nLAST');
  const whole = new ReceiveBuffer();
  whole.push(input);
  const expected = takeAll(whole);
  const bytewise = new ReceiveBuffer();
  const got: string[] = [];
  for (let i = 0; i < input.length; i++) {
    bytewise.push(input.subarray(i, i + 1));
    for (;;) {
      const r = bytewise.takeLine(1024);
      if (r.kind !== 'line') break;
      got.push(lineText(r));
    }
  }
  got.push('need-more');
  t.same(got, expected);
  t.equal(latin1(bytewise.drain()), 'LAST');
});

/**
 * A Uint8Array whose `length` reads are counted: any walk over buffered chunks
 * reads each chunk's length, so the count is the work a line search does.
 */
let lengthReads = 0;
class CountedBytes extends Uint8Array {}
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'length');
Object.defineProperty(CountedBytes.prototype, 'length', {
  get(this: Uint8Array): number {
    lengthReads++;
    return typedArrayLength?.get?.call(this) as number;
  },
});

class WorkBudgetExceeded extends Error {}

t.test('a long line fed one byte at a time is not rescanned (linear work)', async (t) => {
  const n = 1000;
  const buf = new ReceiveBuffer();
  lengthReads = 0;
  const early: number[] = [];
  for (let i = 0; i < n; i++) {
    buf.push(new CountedBytes([0x61]));
    if (buf.takeLine(4096).kind !== 'need-more') early.push(i);
  }
  t.same(early, [], 'no line before the LF');
  buf.push(new CountedBytes([0x0a]));
  const r = buf.takeLine(4096);
  t.equal(r.kind, 'line');
  if (r.kind === 'line') t.equal(r.bytes.length, n);
  // An O(n) search reads each chunk's length a bounded number of times; a
  // search that walks every buffered chunk on each call reads ~n²/2 of them.
  t.ok(lengthReads <= 20 * n, `chunk lengths read ${lengthReads} times for ${n} one-byte chunks (budget ${20 * n})`);
});

t.test('1 MiB without a LF, one byte at a time, cap 2^21: bounded work', async (t) => {
  const n = 1024 * 1024;
  const budget = 64 * n;
  const buf = new ReceiveBuffer();
  const one = new CountedBytes([0x62]);
  lengthReads = 0;
  let fed = 0;
  let pushed = 0;
  let last: LineResult = { kind: 'need-more' };
  try {
    for (; fed < n; fed++) {
      buf.push(one);
      pushed++;
      last = buf.takeLine(2 ** 21);
      if (last.kind !== 'need-more') break;
      if (lengthReads > budget) throw new WorkBudgetExceeded();
    }
  } catch (error) {
    if (!(error instanceof WorkBudgetExceeded)) throw error;
  }
  t.equal(fed, n, `all ${n} bytes fed within a work budget of ${budget} chunk visits (stopped after ${fed}, ${lengthReads} visits)`);
  t.equal(last.kind, 'need-more');
  t.equal(buf.length, pushed, 'every byte pushed is buffered');
});

t.test('a chunk is read only until the next push: its memory may then be reused, and what was unread is kept', async (t) => {
  const buffer = new ReceiveBuffer();
  const landing = new Uint8Array(64);
  const land = (text: string) => {
    landing.set(new TextEncoder().encode(text));
    return landing.subarray(0, text.length);
  };
  buffer.push(land('PING\nPU'));
  t.equal(lineText(buffer.takeLine(100)), 'line:PING');
  t.same(buffer.takeLine(100), { kind: 'need-more' });
  const secondLanding = new Uint8Array(64); // where the next read lands: the first stays put meanwhile (BlockingSessionIO.read)
  secondLanding.set(new TextEncoder().encode('T a 3\n'));
  buffer.push(secondLanding.subarray(0, 6));
  land('XXXXXXXX'); // the first landing reused: "PU" was copied at the push
  t.equal(lineText(buffer.takeLine(100)), 'line:PUT a 3');
  buffer.push(land('abc'));
  secondLanding.fill(0x58); // the second landing reused: nothing of it was left unread
  t.same(new TextDecoder().decode(buffer.takeBytes(3) ?? new Uint8Array()), 'abc');
  t.equal(buffer.length, 0);
});
