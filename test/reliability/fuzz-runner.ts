/**
 * The live fuzzer behind fuzz.ts (`npm run fuzz`) and fuzz.test.ts: hostile
 * byte streams (hostile-bytes.ts) sent to a running server over real sockets.
 *
 * A case is one stream, written in a few pieces, then a resynchronising tail:
 * enough LFs to finish any data block of a size the generator writes, `CANCEL`
 * to end a pending `350` question, and `ECHO fuzz-sync-<n>`. A mutated size
 * can announce more (up to the server's --max-file-size): when the last reply
 * is that `150` and nothing more comes for STALL_MS, the case sends as many
 * LFs as the `150` announced, which finishes any block, and the tail again.
 * Everything the server sends is read as PROTOCOL.md allows it
 * (server-output.ts) until that echo comes back, or until the server closes
 * after a reply that says it will (`221`, `500 line too long`, `421`); then
 * the next case opens a new connection. A case fails if the server sends
 * anything else, closes without such a reply, answers `421 internal server
 * error`, or takes longer than its time limit.
 */
import net from 'node:net';
import fc from 'fast-check';
import { cutAt, hostileStreamArb, MAX_GENERATED_SIZE } from './hostile-bytes.js';
import { ProtocolViolation, ServerOutputReader } from './server-output.js';

/** A case's time limit when nothing else makes it wait. */
export const CASE_TIMEOUT_MS = 10_000;
/**
 * No new output for this long after a `150`: the server waits for data the
 * tail did not bring (or commits slowly: the LFs are then empty lines). Less
 * than the fuzz server's idle time.
 */
const STALL_MS = 1000;
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
  /** A case's time limit (default CASE_TIMEOUT_MS): longer where other clients may be served first. */
  readonly caseTimeoutMs?: number;
}

export interface FuzzReport {
  readonly cases: number;
  readonly bytesSent: number;
  readonly connections: number;
  /** Sessions the server ended itself, after a closing reply. */
  readonly closedByServer: number;
  /** Cases quiet for STALL_MS after a `150`, given as many LFs as it announced: a block the tail did not finish (a mutated size), or a slow commit. */
  readonly toppedUp: number;
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
   * If the last reply since `from` is `150 send N bytes` and nothing more
   * comes for STALL_MS, calls `stalled(N)` (once).
   */
  async until(done: (line: string) => boolean, from: number, timeoutMs: number, stalled?: (announced: number) => Promise<void>): Promise<'done' | 'closed'> {
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    let quietSince = Date.now();
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
      if (items.length !== seen) {
        seen = items.length;
        quietSince = Date.now();
      } else if (stalled !== undefined && items.length > from && Date.now() - quietSince >= STALL_MS) {
        const last = items[items.length - 1];
        const announced = last?.kind === 'reply' && last.code === 150 ? /^150 send (\d+) bytes$/.exec(last.line)?.[1] : undefined;
        if (announced !== undefined) {
          const topUp = stalled;
          stalled = undefined;
          await topUp(Number(announced));
          continue;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new ProtocolViolation(`no answer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, stalled === undefined ? left : Math.min(left, STALL_MS));
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
  let toppedUp = 0;
  const caseTimeoutMs = options.caseTimeoutMs ?? CASE_TIMEOUT_MS;
  const sync = (n: number) => encoder.encode(`CANCEL\nECHO fuzz-sync-${n}\n`);
  const tail = (n: number) => Buffer.concat([Buffer.alloc(MAX_GENERATED_SIZE + 2, 0x0a), sync(n)]);

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
        const open = c;
        const topUp = async (announced: number): Promise<void> => {
          toppedUp++;
          await open.write(Buffer.alloc(announced, 0x0a));
          await open.write(sync(n));
        };
        if ((await c.until((line) => line === marker, from, caseTimeoutMs, topUp)) === 'closed') {
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
  return { cases: Math.min(cases, options.cases), bytesSent, connections, closedByServer, toppedUp, failures, seconds: (performance.now() - started) / 1000 };
}
