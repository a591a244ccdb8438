/**
 * The connection as a client reads it, able to notice that the server has
 * gone while the client is not waiting for a reply.
 *
 * The protocol client reads only when it expects a reply. Between requests
 * (the user thinking at a prompt) nobody reads, so a server that says
 * `421 idle timeout` and closes, or one that is killed, would go unnoticed
 * until the next request. watch() reads ahead: it resolves as soon as anything
 * arrives or the connection ends, and keeps what came for the next read(), so
 * a reply that arrives for a request sent meanwhile is not lost.
 */
import type { ByteChannel } from '../protocol/index.js';

interface ReadAhead {
  readonly chunk: Promise<Uint8Array | null>;
  settled: boolean;
}

export class WatchedChannel implements ByteChannel {
  private ahead: ReadAhead | null = null;

  constructor(private readonly inner: ByteChannel) {}

  read(): Promise<Uint8Array | null> {
    const ahead = this.ahead;
    if (ahead === null) return this.inner.read();
    this.ahead = null;
    return ahead.chunk;
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.inner.write(bytes);
  }

  close(): void {
    this.inner.close();
  }

  /** Resolves once the server sends something or closes the connection; what came stays for the next read(). */
  watch(): Promise<void> {
    if (this.ahead === null) {
      const ahead: ReadAhead = { chunk: this.inner.read(), settled: false };
      const settle = () => {
        ahead.settled = true;
      };
      ahead.chunk.then(settle, settle);
      this.ahead = ahead;
    }
    return this.ahead.chunk.then(
      () => undefined,
      () => undefined,
    );
  }

  /** True when a watch() saw bytes (or the end) arrive that no read() has taken: the server spoke unasked. */
  get spokeUnasked(): boolean {
    return this.ahead?.settled === true;
  }
}
