/**
 * The steps conformance cases are made of: an upload, a STAT, a GET, each
 * checked against PROTOCOL.md as it goes. A case is a few of these in a row.
 */
import { createHash } from 'node:crypto';
import { MAX_LINE_BYTES, type PutMode } from '../../protocol/index.js';
import { Conversation, showLine } from './conversation.js';

export const utf8 = new TextEncoder();

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const EMPTY_SHA256 = sha256(new Uint8Array(0));

/** A size no server can take (1 PB): over every limit, so `552`. */
export const TOO_LARGE = '1000000000000000';

/** The case's endpoint-bound helpers: connections that close with the case, and the case's file names. */
export interface CaseContext {
  /** A connection whose `220` greeting has been read. */
  open(): Promise<Conversation>;
  /** A bare TCP connection, nothing read. */
  connect(): Promise<Conversation>;
  /** A file name of this run and case (`socklab-check-<run>-<case>-<suffix>`): the only names the check writes. */
  file(suffix: string): string;
}

export interface UploadOptions {
  /** `mode=...` on the PUT line; absent means none (the server's default, ask). */
  readonly mode?: PutMode;
  /** Extra text after size (options in another order, a sha256). Replaces `mode`. */
  readonly options?: string;
  /** The file's size after the upload (an append): default the data's size. */
  readonly newSize?: number;
}

export function putLine(name: string, size: number | string, options = ''): string {
  return `PUT ${name} ${size}${options === '' ? '' : ` ${options}`}`;
}

/** PUT, `150`, the data, `226 <name> <new size> <sha256 of the data>`. */
export async function upload(c: Conversation, name: string, data: Uint8Array | string, options: UploadOptions = {}): Promise<void> {
  const bytes = typeof data === 'string' ? utf8.encode(data) : data;
  const extra = options.options ?? (options.mode === undefined ? '' : `mode=${options.mode}`);
  await c.request(putLine(name, bytes.length, extra), 150, { what: '150 send <size> bytes' });
  await sendData(c, name, bytes, options.newSize ?? bytes.length);
}

/** After a `150`: the data, then `226 <name> <new size> <sha256 of the data received>`. */
export async function sendData(c: Conversation, name: string, bytes: Uint8Array, newSize = bytes.length): Promise<void> {
  await c.sendRaw(bytes, `(${bytes.length} bytes of data)`);
  await c.reply(226, { what: `226 ${name} ${newSize} ${sha256(bytes)}`, text: committedText(name, newSize, sha256(bytes)) });
}

export function committedText(name: string, size: number, sha: string): (text: string) => string | null {
  return (text) => {
    const [gotName, gotSize, gotSha] = text.split(' ');
    if (gotName !== name) return `(the name is ${JSON.stringify(gotName ?? '')}, not ${name})`;
    if (gotSize !== String(size)) return `(the new size is ${gotSize ?? 'missing'}, not ${size})`;
    if (gotSha !== sha) return `(the sha256 is ${gotSha ?? 'missing'}, not the sha256 of the bytes sent, ${sha})`;
    return null;
  };
}

/** STAT says the file holds exactly `content`. */
export async function expectStat(c: Conversation, name: string, content: Uint8Array | string): Promise<void> {
  const bytes = typeof content === 'string' ? utf8.encode(content) : content;
  await c.request(`STAT ${name}`, 213, { text: `${bytes.length} ${sha256(bytes)}` });
}

/** GET: `150 <size>`, exactly those bytes, `226 <sha256>`, and nothing else before the next reply. */
export async function expectGet(c: Conversation, name: string, content: Uint8Array | string): Promise<void> {
  const bytes = typeof content === 'string' ? utf8.encode(content) : content;
  await c.request(`GET ${name}`, 150, { text: firstField(String(bytes.length), 'size') });
  const got = await c.data(bytes.length, `${bytes.length} bytes of data`);
  if (Buffer.compare(Buffer.from(got), Buffer.from(bytes)) !== 0) {
    c.fail(`the file's ${bytes.length} bytes`, [showLine(got), `(differs from what was uploaded at byte ${firstDifference(got, bytes)})`]);
  }
  await c.reply(226, { what: `226 ${sha256(bytes)}`, text: firstField(sha256(bytes), 'sha256') });
}

/** The reply's first field must be `value`; later fields are for people. */
export function firstField(value: string, what: string): (text: string) => string | null {
  return (text) => (text.split(' ')[0] === value ? null : `(the ${what} must be ${value})`);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** `ECHO` plus text making a request line of exactly `bytes` bytes (LF excluded). */
export function echoLineOf(bytes: number, char = 'x'): string {
  const unit = Buffer.byteLength(char);
  return `ECHO ${char.repeat(Math.floor((bytes - 'ECHO '.length) / unit))}`;
}

export const LINE_LIMIT = MAX_LINE_BYTES;
