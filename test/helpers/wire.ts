/**
 * A raw-bytes test client: it speaks TCP and nothing else, so a test built on
 * it checks the bytes on the wire, not our own client library. Every wait has
 * a deadline and throws when it passes (an async tap test that throws fails),
 * so a server that never answers fails the test instead of hanging it.
 */
import net from 'node:net';

export const WIRE_TIMEOUT_MS = 10_000;

export class WireTimeoutError extends Error {
  override name = 'WireTimeoutError';
}

export class WireClosedError extends Error {
  override name = 'WireClosedError';
}

export interface ConnectOptions {
  readonly host?: string;
  /** For error messages. */
  readonly label?: string;
  readonly timeoutMs?: number;
}

/** Shows bytes for an error message: printable ASCII as is, the rest escaped. */
export function preview(bytes: Uint8Array, max = 200): string {
  const shown = Buffer.from(bytes.subarray(0, max)).toString('latin1');
  const escaped = JSON.stringify(shown).replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return bytes.length > max ? `${escaped}... (${bytes.length} bytes)` : escaped;
}

export class WireClient {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  private peerEnded = false;
  private closed = false;
  private socketError: Error | null = null;
  /** Every byte received since connect, consumed or not. */
  received = 0;

  private constructor(
    readonly socket: net.Socket,
    readonly label: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.received += chunk.length;
      this.wake();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', (error) => {
      this.socketError = error;
      this.wake();
    });
  }

  /** Opens a TCP connection; reads nothing (the greeting is the test's business). */
  static connect(port: number, options: ConnectOptions = {}): Promise<WireClient> {
    const host = options.host ?? '127.0.0.1';
    const label = options.label ?? `client→${port}`;
    const timeoutMs = options.timeoutMs ?? WIRE_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const client = new WireClient(socket, label);
      const onError = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(() => {
        socket.off('error', onError);
        socket.destroy();
        reject(new WireTimeoutError(`${label}: no TCP connection to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(client);
      });
    });
  }

  /** Bytes received and not yet consumed by a read. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** True once the server has closed its side (FIN), or the connection is gone. */
  get isEnded(): boolean {
    return this.peerEnded || this.closed || this.socketError !== null;
  }

  /** Writes the bytes (a string is UTF-8) and resolves once the socket took them. */
  send(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Writes `data` in pieces of `pieceBytes`, letting the event loop turn between them (separate segments). */
  async sendInPieces(data: string | Uint8Array, pieceBytes = 1): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    for (let at = 0; at < bytes.length; at += pieceBytes) {
      await this.send(bytes.subarray(at, at + pieceBytes));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Sends one request line with LF. */
  sendLine(line: string): Promise<void> {
    return this.send(`${line}\n`);
  }

  /** Sends a line and reads one reply line. */
  async request(line: string, timeoutMs?: number): Promise<string> {
    await this.sendLine(line);
    return this.readLine(timeoutMs);
  }

  /** The next reply line, without its LF, as raw bytes. */
  readLineBytes(timeoutMs = WIRE_TIMEOUT_MS): Promise<Buffer> {
    return this.waitFor(
      () => {
        const lf = this.buffer.indexOf(0x0a);
        if (lf < 0) return undefined;
        const line = this.buffer.subarray(0, lf);
        this.buffer = this.buffer.subarray(lf + 1);
        return Buffer.from(line);
      },
      'a reply line',
      timeoutMs,
    );
  }

  /** The next reply line, without its LF, decoded as UTF-8. */
  async readLine(timeoutMs = WIRE_TIMEOUT_MS): Promise<string> {
    return (await this.readLineBytes(timeoutMs)).toString('utf8');
  }

  /** Reads `count` reply lines. */
  async readLines(count: number, timeoutMs = WIRE_TIMEOUT_MS): Promise<string[]> {
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(await this.readLine(timeoutMs));
    return lines;
  }

  /** Exactly `count` bytes. */
  readBytes(count: number, timeoutMs = WIRE_TIMEOUT_MS): Promise<Buffer> {
    return this.waitFor(
      () => {
        if (this.buffer.length < count) return undefined;
        const bytes = Buffer.from(this.buffer.subarray(0, count));
        this.buffer = this.buffer.subarray(count);
        return bytes;
      },
      `${count} bytes`,
      timeoutMs,
    );
  }

  /**
   * Waits for the server to close the connection and fails if it sent anything
   * not yet read before closing. A reset counts as a close.
   */
  async expectClose(timeoutMs = WIRE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buffer.length > 0) {
        throw new Error(`${this.label}: expected the server to close, got more bytes first: ${preview(this.buffer)}`);
      }
      if (this.isEnded) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new WireTimeoutError(`${this.label}: the server did not close the connection within ${timeoutMs} ms`);
      await this.nextEvent(left);
    }
  }

  /** Half-closes: sends our FIN, keeps reading. */
  end(): Promise<void> {
    return new Promise((resolve) => this.socket.end(() => resolve()));
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }

  private async waitFor<T>(take: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = take();
      if (value !== undefined) return value;
      if (this.isEnded) {
        const how = this.socketError !== null ? `failed (${this.socketError.message})` : 'was closed by the server';
        throw new WireClosedError(`${this.label}: the connection ${how} while waiting for ${what}; unread: ${preview(this.buffer)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new WireTimeoutError(`${this.label}: no ${what} within ${timeoutMs} ms; unread: ${preview(this.buffer)}`);
      }
      await this.nextEvent(left);
    }
  }

  /** Resolves at the next data/end/close/error event, or after `ms`. */
  private nextEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
