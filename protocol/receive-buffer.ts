/**
 * The bytes a peer sent that nobody has consumed yet, read either as lines or
 * as a counted run of raw bytes (an upload's data block).
 *
 * Chunks are kept as they arrived and sliced, not concatenated, so a data block
 * passes through without being copied. A line search resumes where the last one
 * stopped (`scanned`): feeding a long line one byte at a time costs O(n), not
 * O(n²), and a peer cannot make the server rescan what it already looked at.
 */
const LF = 0x0a;
const CR = 0x0d;

export type LineResult =
  | { kind: 'line'; bytes: Uint8Array }
  | { kind: 'need-more' }
  | { kind: 'too-long' };

export class ReceiveBuffer {
  private chunks: Uint8Array[] = [];
  /** Unread bytes across all chunks. */
  private unread = 0;
  /** Leading unread bytes already known to hold no LF. */
  private scanned = 0;
  /** Where the scan resumes: a chunk index and that chunk's offset among the unread bytes. */
  private scanIndex = 0;
  private scanStart = 0;

  get length(): number {
    return this.unread;
  }

  /**
   * Adds what the peer sent next. A chunk is read only until the next push:
   * whatever is left of the last one then is copied first (at most a partial
   * line, since the session reads again only when it needs more), so a
   * transport may reuse a chunk's memory from its next-but-one read on. Each
   * byte is copied at most once: a copied chunk is no longer the last.
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    // Checked before indexing: chunks[-1] is no array index but a property name, looked up the slow way.
    const last = this.chunks.length - 1;
    if (last >= 0) this.chunks[last] = Uint8Array.prototype.slice.call(this.chunks[last]!);
    this.chunks.push(chunk);
    this.unread += chunk.length;
  }

  /**
   * The next line without its LF (and without a CR right before the LF).
   * `maxBytes` caps the line's content; once more than `maxBytes` + 1 bytes
   * (room for the CR) are buffered without a LF, the line can never be valid
   * and the answer is `too-long` at once rather than after an unbounded wait.
   */
  takeLine(maxBytes: number): LineResult {
    const lfAt = this.findLineFeed(maxBytes + 2);
    if (lfAt < 0) {
      return this.scanned > maxBytes + 1 ? { kind: 'too-long' } : { kind: 'need-more' };
    }
    let line = this.take(lfAt + 1).subarray(0, lfAt);
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (line.length > maxBytes) return { kind: 'too-long' };
    return { kind: 'line', bytes: line };
  }

  /** Up to `maxBytes` buffered bytes, from one chunk (no copy), or null if empty. */
  takeBytes(maxBytes: number): Uint8Array | null {
    const head = this.chunks[0];
    if (head === undefined || maxBytes <= 0) return null;
    if (head.length <= maxBytes) {
      this.chunks.shift();
      this.consumed(head.length);
      return head;
    }
    this.chunks[0] = head.subarray(maxBytes);
    this.consumed(maxBytes);
    return head.subarray(0, maxBytes);
  }

  /** Everything buffered, as one array of its own (for handing leftovers to another owner: the last chunk's memory may be reused). */
  drain(): Uint8Array {
    return Uint8Array.prototype.slice.call(this.take(this.unread));
  }

  /** Offset of the first LF among the first `limit` unread bytes, or -1. */
  private findLineFeed(limit: number): number {
    for (let chunk = this.chunks[this.scanIndex]; chunk !== undefined; chunk = this.chunks[this.scanIndex]) {
      const end = this.scanStart + chunk.length;
      if (end > this.scanned) {
        const at = chunk.indexOf(LF, Math.max(0, this.scanned - this.scanStart));
        if (at >= 0) return this.scanStart + at;
        this.scanned = end;
      }
      this.scanStart = end;
      this.scanIndex++;
      if (this.scanned >= limit) return -1;
    }
    return -1;
  }

  private take(count: number): Uint8Array {
    const head = this.chunks[0];
    if (head !== undefined && head.length >= count) {
      const out = head.subarray(0, count);
      if (head.length === count) this.chunks.shift();
      else this.chunks[0] = head.subarray(count);
      this.consumed(count);
      return out;
    }
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      if (chunk === undefined) break;
      const part = Math.min(chunk.length, count - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    this.consumed(filled);
    return out.subarray(0, filled);
  }

  private consumed(count: number): void {
    this.unread -= count;
    this.scanned = Math.max(0, this.scanned - count);
    // Chunks moved; the next scan walks from the first one, skipping whole chunks already scanned.
    this.scanIndex = 0;
    this.scanStart = 0;
  }
}
