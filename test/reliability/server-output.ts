/**
 * Reads what a server sends as PROTOCOL.md allows it and nothing else, for the
 * property tests of the protocol core and the live fuzzer: reply lines
 * (`^\d{3}( .*)?$`, valid UTF-8, a code the protocol has, no longer than a
 * request line may be), the n entry lines after `211 n`, and the data block
 * after a GET's `150 <size>` (exactly size bytes, then `226 <its sha256>`).
 * Nothing may follow a reply after which the server closes. Anything else is a
 * ProtocolViolation. Bytes may be pushed in any pieces.
 */
import { createHash } from 'node:crypto';
import { isValidName, MAX_LINE_BYTES, ReceiveBuffer } from '../../protocol/index.js';

/** Every code PROTOCOL.md gives a server. */
export const REPLY_CODES: ReadonlySet<number> = new Set([150, 200, 211, 213, 214, 220, 221, 226, 350, 421, 450, 451, 452, 500, 501, 503, 550, 552, 553, 554]);
const REPLY_LINE = /^([0-9]{3})(?: (.*))?$/s;
const LIST_ENTRY = /^(\S+) ([0-9]+) (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)$/;
/** A reply line's longest: `200 ` and an ECHO of the longest text a request line can carry is under this. */
export const MAX_REPLY_LINE_BYTES = MAX_LINE_BYTES;

export class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
}

export type OutputItem =
  | { readonly kind: 'reply'; readonly code: number; readonly text: string; readonly line: string }
  | { readonly kind: 'list-entry'; readonly line: string }
  | { readonly kind: 'data'; readonly bytes: Uint8Array };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether the server closes the connection right after this reply. */
export function closesAfter(code: number, text: string): boolean {
  return code === 221 || code === 421 || (code === 500 && text === 'line too long');
}

export class ServerOutputReader {
  private readonly buffer = new ReceiveBuffer();
  private listLeft = 0;
  private dataLeft = 0;
  private dataHash: ReturnType<typeof createHash> | null = null;
  private expectGetEnd = false;
  /** Set after a closing reply: any later byte is a violation. */
  closed = false;
  readonly items: OutputItem[] = [];

  /** Takes more output and returns the items it completes; throws a ProtocolViolation at the first wrong byte. */
  push(bytes: Uint8Array): OutputItem[] {
    if (bytes.length === 0) return [];
    if (this.closed) throw new ProtocolViolation(`${bytes.length} bytes after a reply that closes the connection`);
    this.buffer.push(bytes);
    const out: OutputItem[] = [];
    for (let item = this.next(); item !== null; item = this.next()) {
      out.push(item);
      this.items.push(item);
    }
    return out;
  }

  /** True between items: no partial line, no LIST or data block unfinished. */
  get atBoundary(): boolean {
    return this.buffer.length === 0 && this.listLeft === 0 && this.dataLeft === 0 && !this.expectGetEnd;
  }

  private next(): OutputItem | null {
    if (this.closed && this.buffer.length > 0) throw new ProtocolViolation('bytes after a reply that closes the connection');
    if (this.dataLeft > 0) {
      const bytes = this.buffer.takeBytes(this.dataLeft);
      if (bytes === null) return null;
      this.dataLeft -= bytes.length;
      this.dataHash?.update(bytes);
      return { kind: 'data', bytes };
    }
    const taken = this.buffer.takeLine(MAX_REPLY_LINE_BYTES);
    if (taken.kind === 'need-more') return null;
    if (taken.kind === 'too-long') throw new ProtocolViolation(`a line longer than ${MAX_REPLY_LINE_BYTES} bytes`);
    let line: string;
    try {
      line = utf8.decode(taken.bytes);
    } catch {
      throw new ProtocolViolation(`a line that is not UTF-8: ${JSON.stringify(Buffer.from(taken.bytes).toString('latin1').slice(0, 80))}`);
    }
    if (this.listLeft > 0) {
      this.listLeft--;
      const entry = LIST_ENTRY.exec(line);
      if (entry === null || !isValidName(entry[1] ?? '')) throw new ProtocolViolation(`not a LIST entry: ${JSON.stringify(line.slice(0, 80))}`);
      return { kind: 'list-entry', line };
    }
    const match = REPLY_LINE.exec(line);
    if (match === null) throw new ProtocolViolation(`not a reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(match[1]);
    const text = match[2] ?? '';
    if (!REPLY_CODES.has(code)) throw new ProtocolViolation(`a code PROTOCOL.md does not have: ${line.slice(0, 80)}`);
    if (this.expectGetEnd) {
      this.expectGetEnd = false;
      const digest = this.dataHash?.digest('hex');
      this.dataHash = null;
      if (code !== 226 || text !== digest) throw new ProtocolViolation(`a GET's data ended with ${JSON.stringify(line)}, not 226 ${digest}`);
    } else if (code === 211) {
      if (!/^[0-9]+$/.test(text)) throw new ProtocolViolation(`a LIST header without a count: ${line}`);
      this.listLeft = Number(text);
    } else if (code === 150 && /^[0-9]+$/.test(text)) {
      // A GET: exactly size bytes follow, then 226 with their sha256.
      this.dataLeft = Number(text);
      this.dataHash = createHash('sha256');
      this.expectGetEnd = true;
    } else if (code === 150 && !/^send [0-9]+ bytes$/.test(text)) {
      throw new ProtocolViolation(`a 150 that is neither a GET's nor an upload's: ${line}`);
    }
    if (closesAfter(code, text)) this.closed = true;
    return { kind: 'reply', code, text, line };
  }
}
