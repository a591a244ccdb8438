/**
 * The live fuzzer behind fuzz.ts (`npm run fuzz`) and fuzz.test.ts: hostile
 * byte streams (hostile-bytes.ts) sent to a running server over real sockets.
 *
 * A case is one stream, written in a few pieces, then a resynchronising tail:
 * enough LFs to finish any data block the case may have opened (the server
 * runs with a small --max-file-size), `CANCEL` to end a pending `350`
 * question, and `ECHO fuzz-sync-<n>`. Everything the server sends is read as
 * PROTOCOL.md allows it (server-output.ts) until that echo comes back, or until
 * the server closes after a reply that says it will (`221`, `500 line too
 * long`, `421`); then the next case opens a new connection. A case fails if
 * the server sends anything else, closes without such a reply, answers
 * `421 internal server error`, or takes longer than CASE_TIMEOUT_MS.
 */
import net from 'node:net';
import fc from 'fast-check';
import { cutAt, hostileStreamArb } from './hostile-bytes.js';
import { ProtocolViolation, ServerOutputReader } from './server-output.js';

export const FUZZ_MAX_FILE_SIZE = 256;
const CASE_TIMEOUT_MS = 10_000;
const SAMPLE_BATCH = 500;

export interface FuzzOptions {
  readonly port: number;
  /** Stop after this many cases... */
  readonly cases: number;
  /** ...or after this long, whichever comes first. */
  readonly seconds: number;
  /** Connections fuzzing at once (1 for a sequential server: it serves one at a time anyway). */
  readonly connections: number;
  readonly seed: number;
}

export interface FuzzReport {
  readonly cases: number;
  readonly bytesSent: number;
  readonly connections: number;
  /** Sessions the server ended itself, after a closing reply. */
  readonly closedByServer: number;
  readonly failures: readonly string[];
  readonly seconds: number;
}

class Connection {
  private readonly socket: net.Socket;
  private reader = new ServerOutputReader();
  private wake: (() => void) | null = null;
  private ended = false;
  private violation: Error | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk); // it throws on anything PROTOCOL.md does not allow
      } catch (error) {
        this.violation ??= error as Error;
      }
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', () => {});
  }

  static open(port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  get closedByServer(): boolean {
    return this.ended;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.ended) return;
    await new Promise<void>((resolve) => this.socket.write(bytes, () => resolve()));
  }

  /**
   * Waits until a reply satisfies `done` (searching from item `from`), or the
   * server closes. Returns 'done' or 'closed'; throws on a violation or timeout.
   */
  async until(done: (line: string) => boolean, from: number): Promise<'done' | 'closed'> {
    const deadline = Date.now() + CASE_TIMEOUT_MS;
    for (;;) {
      if (this.violation !== null) throw this.violation;
      const items = this.reader.items;
      for (let i = from; i < items.length; i++) {
        const item = items[i];
        if (item?.kind !== 'reply') continue;
        if (item.code === 421 && /internal/.test(item.text)) throw new ProtocolViolation(`the server failed: ${item.line}`);
        if (done(item.line)) return 'done';
      }
      if (this.ended) {
        if (!this.reader.closed) throw new ProtocolViolation('the server closed the connection without a reply that says it would');
        return 'closed';
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new ProtocolViolation(`no answer within ${CASE_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  get itemCount(): number {
    return this.reader.items.length;
  }

  /** Keeps the reader from growing without bound on a long-lived connection. */
  forgetItems(): void {
    this.reader.items.length = 0;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Samples hostile streams in batches, from one seed: a run can be replayed. */
function* streams(seed: number): Generator<{ bytes: Uint8Array; cuts: number[] }> {
  for (let batch = 0; ; batch++) {
    const sample = fc.sample(fc.tuple(hostileStreamArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 })), { numRuns: SAMPLE_BATCH, seed: seed + batch });
    for (const [bytes, cuts] of sample) yield { bytes, cuts };
  }
}

const encoder = new TextEncoder();

export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const deadline = Date.now() + options.seconds * 1000;
  const source = streams(options.seed);
  const failures: string[] = [];
  let cases = 0;
  let bytesSent = 0;
  let connections = 0;
  let closedByServer = 0;
  const tail = (n: number) => encoder.encode(`${'\n'.repeat(FUZZ_MAX_FILE_SIZE + 2)}CANCEL\nECHO fuzz-sync-${n}\n`);

  const worker = async (): Promise<void> => {
    let c: Connection | null = null;
    while (cases < options.cases && Date.now() < deadline && failures.length < 10) {
      const n = ++cases;
      const next = source.next();
      if (next.done === true) break;
      const { bytes, cuts } = next.value;
      try {
        if (c === null) {
          c = await Connection.open(options.port);
          connections++;
        }
        const from = c.itemCount;
        for (const piece of cutAt(bytes, cuts)) await c.write(piece);
        await c.write(tail(n));
        bytesSent += bytes.length;
        const marker = `200 fuzz-sync-${n}`;
        if ((await c.until((line) => line === marker, from)) === 'closed') {
          closedByServer++;
          c.close();
          c = null;
        } else if (c.itemCount > 10_000) {
          c.forgetItems();
        }
      } catch (error) {
        failures.push(`case ${n} (${bytes.length} bytes, seed ${options.seed}): ${(error as Error).message}; input ${JSON.stringify(Buffer.from(bytes).toString('latin1').slice(0, 200))}`);
        c?.close();
        c = null;
      }
    }
    if (c !== null) {
      c.close();
    }
  };
  await Promise.all(Array.from({ length: options.connections }, () => worker()));
  return { cases: Math.min(cases, options.cases), bytesSent, connections, closedByServer, failures, seconds: (performance.now() - started) / 1000 };
}

/** A new connection gets the greeting and `200 PONG`: the server still serves. */
export async function stillAnswersPing(port: number): Promise<string | null> {
  let c: Connection;
  try {
    c = await Connection.open(port);
  } catch (error) {
    return `cannot connect: ${(error as Error).message}`;
  }
  try {
    await c.write(encoder.encode('PING\n'));
    await c.until((line) => line === '200 PONG', 0);
    return null;
  } catch (error) {
    return `PING after the fuzzing: ${(error as Error).message}`;
  } finally {
    c.close();
  }
}
