/**
 * Request/response load with the least client-side work: each connection
 * sends `PING\n`, waits for one reply line, and sends the next. Counting LF
 * bytes is all the parsing it does, so the measured rate is the server's.
 *
 * PingConnection is that loop on one connection. The plain loops below
 * (N connections in this process: for a while, or for a fixed job) and the
 * ceiling scenario's scripted sessions (bench/load/load-worker.ts: N clients in load
 * processes, released at one instant, every session timed) all drive servers
 * through it, so comparing them in one run shows what the load generator's own
 * machinery costs.
 */
import { once } from 'node:events';
import net from 'node:net';
import { ConnectionError, ErrorCodes, parseReply, ReceiveBuffer, ReplyError, type Reply } from '../../protocol/index.js';

const PING = Buffer.from('PING\n');
const QUIT = Buffer.from('QUIT\n');
const LF = 10;
/** Every reply this loop expects is 2xx (`220`, `200 PONG`, `221`). */
const SUCCESS_FIRST_BYTE = '2'.charCodeAt(0);
const MAX_LINE_BYTES = 8192;
const utf8 = new TextDecoder();

/** Reply lines in a chunk: a reply ends with LF, and nothing else is asked meanwhile. */
export function countLineFeeds(chunk: Uint8Array): number {
  let lines = 0;
  for (let at = chunk.indexOf(LF); at >= 0; at = chunk.indexOf(LF, at + 1)) lines++;
  return lines;
}

type Waiting =
  | { readonly kind: 'line'; readonly resolve: (reply: Reply) => void; readonly reject: (error: Error) => void }
  | { readonly kind: 'pings'; readonly onReplies: (count: number) => void; readonly reject: (error: Error) => void };

/** Asked after every reply: send another PING? `newly` is how many replies just arrived (one, unless the server was slow to flush). */
export type PingWhile = (answered: number, newly: number) => boolean;

export class PingConnection {
  private readonly buffer = new ReceiveBuffer();
  private waiting: Waiting | null = null;
  private failure: Error | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.fail(new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'the server closed the connection')));
  }

  /** A plain TCP connection: the loop needs the socket itself, not the pull-based channel of transport/. */
  static async connect(host: string, port: number, connectTimeoutMs = 10_000): Promise<PingConnection> {
    const socket = net.connect({ host, port, noDelay: true });
    try {
      await once(socket, 'connect', { signal: AbortSignal.timeout(connectTimeoutMs) });
    } catch (error) {
      socket.destroy();
      if ((error as Error).name !== 'AbortError') throw error;
      throw new ConnectionError(ErrorCodes.TIMEOUT, `could not connect to ${host}:${port} within ${connectTimeoutMs / 1000} s`, { cause: error });
    }
    return new PingConnection(socket);
  }

  /** The next reply line, parsed (the greeting, the reply to QUIT). */
  nextReply(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.waiting = { kind: 'line', resolve, reject };
      this.takeLine();
    });
  }

  /** PINGs, each sent when the previous one is answered, while `more(answered)` says so; resolves with the count answered. */
  pingWhile(more: PingWhile): Promise<number> {
    return new Promise((resolve, reject) => {
      let answered = 0;
      if (!more(answered, 0)) return resolve(answered);
      this.waiting = {
        kind: 'pings',
        reject,
        onReplies: (count) => {
          answered += count;
          if (more(answered, count)) this.socket.write(PING);
          else {
            this.waiting = null;
            resolve(answered);
          }
        },
      };
      this.socket.write(PING);
      if (this.failure !== null) this.fail(this.failure);
    });
  }

  /** QUIT and its reply; the line server answers any line, QUIT included, with `200 PONG`. */
  async quit(): Promise<Reply> {
    this.socket.write(QUIT);
    try {
      return await this.nextReply();
    } finally {
      this.close();
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const waiting = this.waiting;
    if (waiting?.kind === 'pings' && this.buffer.length === 0) {
      // The hot path: one small reply per chunk, counted, not parsed.
      if (chunk[0] !== SUCCESS_FIRST_BYTE) {
        this.buffer.push(chunk);
        this.fail(this.unexpectedReply());
        return;
      }
      waiting.onReplies(countLineFeeds(chunk));
      return;
    }
    this.buffer.push(chunk);
    if (waiting?.kind === 'line') this.takeLine();
  }

  private takeLine(): void {
    const waiting = this.waiting;
    if (waiting?.kind !== 'line') return;
    const taken = this.buffer.takeLine(MAX_LINE_BYTES);
    if (taken.kind === 'need-more') {
      if (this.failure !== null) this.fail(this.failure);
      return;
    }
    this.waiting = null;
    if (taken.kind === 'too-long') return waiting.reject(new ConnectionError(ErrorCodes.MALFORMED_REPLY, 'a reply line is too long'));
    try {
      waiting.resolve(parseReply(utf8.decode(taken.bytes)));
    } catch {
      waiting.reject(new ConnectionError(ErrorCodes.MALFORMED_REPLY, 'the server sent something that is not a reply line'));
    }
  }

  /** The first line of what is buffered, as the error reply it is. */
  private unexpectedReply(): Error {
    const taken = this.buffer.takeLine(MAX_LINE_BYTES);
    const line = taken.kind === 'line' ? utf8.decode(taken.bytes) : '';
    try {
      return new ReplyError(parseReply(line), 'PING');
    } catch {
      return new ConnectionError(ErrorCodes.MALFORMED_REPLY, `not a reply line: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(this.failure);
  }
}

export interface PingLoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Connections that were greeted (a sequential server greets one at a time). */
  readonly greeted: number;
  /** The server's CPU seconds over the counted time, when the caller can read them (its process). */
  readonly serverCpuSeconds?: number;
}

/**
 * N connections from this process, each in the PING loop from its greeting on;
 * counts what is answered in `durationMs`, after `warmUpMs` of the same load
 * that is not counted (so that connection set-up and JIT compilation are not
 * in the figure).
 */
export async function pingLoad(
  port: number,
  connections: number,
  durationMs: number,
  warmUpMs: number,
  host = '127.0.0.1',
  serverCpuSeconds?: () => number,
): Promise<PingLoadResult> {
  const open = await Promise.all(Array.from({ length: connections }, () => PingConnection.connect(host, port)));
  let requests = 0;
  let greeted = 0;
  let measuring = false;
  let stopped = false;
  for (const connection of open) {
    connection
      .nextReply()
      .then(() => {
        greeted++;
        return connection.pingWhile((_answered, newly) => {
          if (measuring) requests += newly;
          return !stopped;
        });
      })
      .catch(() => {}); // closed when stopped (or by the server): what was answered until then counts
  }
  await new Promise((resolve) => setTimeout(resolve, warmUpMs));
  measuring = true;
  const cpuBefore = serverCpuSeconds?.();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = serverCpuSeconds?.();
  stopped = true;
  for (const connection of open) connection.close();
  const cpu = cpuBefore === undefined || cpuAfter === undefined ? {} : { serverCpuSeconds: cpuAfter - cpuBefore };
  return { requests, seconds, perSecond: requests / seconds, greeted, ...cpu };
}

/**
 * The ceiling scenario's job done by the plain loop: `connections` connections
 * from this process, each greeted, `requestsEach` PINGs, QUIT; the rate is
 * every PING over the time from the first one sent to the last one answered,
 * exactly as the scenario's rate is taken from its timelines.
 */
export async function pingJob(port: number, connections: number, requestsEach: number, host = '127.0.0.1'): Promise<PingLoadResult> {
  const open = await Promise.all(Array.from({ length: connections }, () => PingConnection.connect(host, port)));
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  let greeted = 0;
  try {
    await Promise.all(
      open.map(async (connection) => {
        await connection.nextReply();
        greeted++;
        first = Math.min(first, performance.now());
        await connection.pingWhile((answered) => answered < requestsEach);
        last = Math.max(last, performance.now());
        await connection.quit();
      }),
    );
  } finally {
    for (const connection of open) connection.close();
  }
  const requests = connections * requestsEach;
  const seconds = (last - first) / 1000;
  return { requests, seconds, perSecond: requests / seconds, greeted };
}
