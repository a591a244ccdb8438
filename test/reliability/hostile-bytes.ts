/**
 * Hostile input, shared by the property tests of the protocol core, the live
 * fuzzer and the hostile-name table: fast-check arbitraries of byte streams a
 * client might send (well-formed sessions, the same mutated, random bytes,
 * over-long lines), cut into chunks at random points; and the names that must
 * never reach the file system.
 */
import fc from 'fast-check';
import { sha256 } from '../protocol/fixtures.js';

const encoder = new TextEncoder();

/** Valid names (PROTOCOL.md's examples and edge cases): a stream that uses them reaches the storage. */
export const VALID_NAMES: readonly string[] = ['a', 'notes.txt', 'заметки-1.txt', 'a..b', 'Z9_-.x', '名前', 'e\u0301'.normalize('NFC'), `${'x'.repeat(127)}y`];

export interface HostileName {
  readonly name: string;
  readonly why: string;
}

/**
 * Names that must get `553` and touch nothing. None contains a space or a LF
 * (those would split the request line differently); CR only mid-name (a CR
 * right before the LF would be dropped as framing).
 */
export const HOSTILE_NAMES: readonly HostileName[] = [
  { name: '..', why: 'parent directory' },
  { name: '.', why: 'the root itself' },
  { name: '../outside.txt', why: 'traversal' },
  { name: '../../etc/passwd', why: 'deep traversal' },
  { name: 'a/../../outside.txt', why: 'traversal after a component' },
  { name: 'sub/file', why: 'a separator' },
  { name: '/etc/passwd', why: 'absolute path' },
  { name: '/tmp', why: 'absolute directory' },
  { name: '..\\outside.txt', why: 'backslash traversal' },
  { name: 'a\\b', why: 'backslash' },
  { name: 'C:\\Windows\\win.ini', why: 'drive path' },
  { name: '\\\\server\\share', why: 'UNC path' },
  { name: '%2e%2e%2foutside.txt', why: 'percent-encoded traversal' },
  { name: '..%c0%af', why: 'overlong-UTF-8 traversal, as text' },
  { name: 'a\u2215b', why: 'division slash (looks like /)' },
  { name: 'a\uff0fb', why: 'fullwidth solidus' },
  { name: 'a\u0000b', why: 'NUL' },
  { name: 'a\u0001', why: 'control character' },
  { name: 'tab\there', why: 'TAB' },
  { name: 'cr\rmid', why: 'CR inside' },
  { name: 'del\u007f', why: 'DEL' },
  { name: 'esc\u001b[31m', why: 'terminal escape' },
  { name: 'a\u0085b', why: 'C1 control (NEL)' },
  { name: 'evil\u202etxt.exe', why: 'bidi override (RLO)' },
  { name: 'a\u2066b\u2069', why: 'bidi isolate' },
  { name: 'zero\u200bwidth', why: 'zero-width space' },
  { name: '\ufeffbom', why: 'byte order mark' },
  { name: 'e\u0301', why: 'not NFC (e + combining acute)' },
  { name: 'A\u030a', why: 'not NFC (A + combining ring)' },
  { name: '\u212b', why: 'not NFC (angstrom sign)' },
  { name: 'x'.repeat(129), why: 'over 128 code points' },
  { name: 'я'.repeat(128), why: 'over 255 bytes of UTF-8' },
  { name: '.hidden', why: 'dot name' },
  { name: '.socklab-tmp-0123456789abcdef', why: "the server's own temporary file" },
  { name: '-rf', why: 'leading dash' },
  { name: '_x', why: 'leading underscore' },
  { name: '~', why: 'home' },
  { name: '*', why: 'glob' },
  { name: 'a:b', why: 'colon (alternate data stream)' },
  { name: 'a;rm', why: 'shell metacharacter' },
  { name: '\ud800', why: 'lone surrogate (sent as U+FFFD)' },
];

/** The names the generators draw from: valid ones, hostile ones, and anything at all. */
const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...VALID_NAMES) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_NAMES.map((h) => h.name)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
);

const wordArb = fc.constantFrom('PING', 'ECHO', 'LIST', 'STAT', 'GET', 'PUT', 'HELP', 'QUIT', 'OVERWRITE', 'APPEND', 'CANCEL', 'ping', 'pUt', 'STOP', 'PUTT', 'pıng', '');
/** The largest size a generated request announces as plain digits (mutations may make any number). */
export const MAX_GENERATED_SIZE = 400;
const sizeTextArb = fc.oneof(fc.nat(MAX_GENERATED_SIZE).map(String), fc.constantFrom('0', '-1', '+5', '1e3', '0x10', '99999999999999999999', '00012', '3.5', ''));
const optionArb = fc.oneof(
  fc.constantFrom('mode=ask', 'mode=new', 'mode=overwrite', 'mode=append', 'MODE=APPEND', 'mode=', 'mode=bad', 'sha256=', 'sha256=XYZ', 'foo=bar', '='),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `sha256=${Buffer.from(b).toString('hex')}`),
);

/** One request line, without its LF: mostly near-valid, sometimes anything. */
export const requestLineArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(wordArb, fc.array(fc.oneof(nameArb, sizeTextArb, optionArb), { maxLength: 4 })).map(([w, args]) => [w, ...args].join(' ')) },
  { weight: 4, arbitrary: fc.tuple(nameArb, sizeTextArb, fc.subarray(['mode=overwrite', 'mode=append', 'mode=new', 'mode=ask'], { maxLength: 2 })).map(([n, s, o]) => ['PUT', n, s, ...o].join(' ')) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('', ' ', '   '), fc.string({ unit: 'binary', maxLength: 40 })).map(([pad, text]) => `${pad}ECHO ${text}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((s) => s.replace(/[\r\n]/g, '')) },
);

/** A piece of a session: a line (LF or CRLF), or a well-formed upload with its data. */
const segmentArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(requestLineArb, fc.constantFrom('\n', '\r\n')).map(([line, end]) => encoder.encode(line + end)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...VALID_NAMES), fc.constantFrom('overwrite', 'append', 'new', 'ask'), fc.uint8Array({ maxLength: 300 }), fc.boolean())
      .map(([name, mode, data, checksum]) =>
        Buffer.concat([encoder.encode(`PUT ${name} ${data.length} mode=${mode}${checksum ? ` sha256=${sha256(data)}` : ''}\n`), data]),
      ),
  },
  { weight: 1, arbitrary: fc.constantFrom('OVERWRITE\n', 'APPEND\n', 'CANCEL\n', 'LIST\n', 'QUIT\n').map((s) => encoder.encode(s)) },
);

export const sessionBytesArb: fc.Arbitrary<Uint8Array> = fc.array(segmentArb, { maxLength: 12 }).map((parts) => Uint8Array.from(Buffer.concat(parts)));

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'duplicate'; readonly at: number; readonly length: number }
  | { readonly kind: 'truncate'; readonly at: number };

const fraction = fc.double({ min: 0, max: 1, noNaN: true });
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fraction, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fraction, length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fraction, bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(...['\n', '\r', ' ', '\u0000', '\u202e'].map((s) => encoder.encode(s)), Uint8Array.of(0xff), Uint8Array.of(0xc0, 0xaf))) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fraction, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fraction }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const at = Math.min(out.length, Math.floor(m.at * (out.length + 1)));
    switch (m.kind) {
      case 'flip':
        if (at < out.length) out[at] = (out[at] ?? 0) ^ (1 << m.bit);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      case 'duplicate':
        out = Buffer.concat([out.subarray(0, at + m.length), out.subarray(at, at + m.length), out.subarray(at + m.length)]);
        break;
      case 'truncate':
        out = out.subarray(0, at);
        break;
    }
  }
  return Uint8Array.from(out);
}

/** A line of `length` bytes that never ends (or ends with `end`): for the line cap. */
export const longLineArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 1000, max: 2100 }), fc.constantFrom('', '\n', '\r\n'), fc.constantFrom('ECHO ', 'PUT ', 'x'))
  .map(([length, end, head]) => encoder.encode(head + 'y'.repeat(Math.max(0, length - head.length)) + end));

/** What a hostile client sends: a well-formed session mutated, random bytes, or a session ending in an over-long line. */
export const hostileStreamArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(sessionBytesArb, fc.array(mutationArb, { maxLength: 6 })).map(([bytes, ms]) => mutate(bytes, ms)) },
  { weight: 2, arbitrary: sessionBytesArb },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 600 }) },
  { weight: 1, arbitrary: fc.tuple(sessionBytesArb, longLineArb).map(([a, b]) => Uint8Array.from(Buffer.concat([a, b]))) },
);

/** `bytes` cut at the given points (fractions of its length), in order: the chunks a socket might deliver. */
export function cutAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(bytes.slice(from, p));
    from = p;
  }
  return chunks;
}

export const cutsArb: fc.Arbitrary<number[]> = fc.array(fraction, { maxLength: 12 });
