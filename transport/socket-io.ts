/**
 * A session's reads and writes over a net.Socket owned by this thread, as
 * promises (the sequential and async servers). Reading is pull-based: bytes
 * queue here until the session asks, and past a small bound the socket is
 * paused, so a session busy with storage makes the kernel, not this process,
 * hold a fast client's data (TCP flow control does the rest).
 */
import type { Socket } from 'node:net';
import { ConnectionError, ErrorCodes } from '../protocol/index.js';
import type { AsyncSessionIO, ReadSignal } from '../servers/session.js';

const QUEUE_HIGH_WATER_BYTES = 512 * 1024;

export class SocketSessionIO implements AsyncSessionIO {
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private ended: 'eof' | 'abort' | null = null;
  private shutdownPending = false;
  private idleTimedOut = false;
  private waiter: ((input: Uint8Array | ReadSignal) => void) | null = null;

  constructor(
    private readonly socket: Socket,
    idleTimeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
      if (this.queuedBytes > QUEUE_HIGH_WATER_BYTES) socket.pause();
      this.wake();
    });
    socket.on('end', () => this.finish('eof'));
    socket.on('close', () => this.finish('abort'));
    // A reset by the peer surfaces as 'close' right after; the error itself needs no handling.
    socket.on('error', () => {});
    if (idleTimeoutMs > 0) {
      socket.setTimeout(idleTimeoutMs, () => {
        this.idleTimedOut = true;
        this.wake();
      });
    }
    socket.resume();
  }

  read(): Promise<Uint8Array | ReadSignal> {
    const ready = this.take();
    if (ready !== null) return Promise.resolve(ready);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  write(bytes: Uint8Array): Promise<void> | void {
    if (this.socket.destroyed || this.socket.writableEnded) {
      throw new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'the client is gone');
    }
    if (this.socket.write(bytes)) return;
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.socket.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.off('drain', onDrain);
        reject(new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'the client is gone'));
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  /** The shell's word to this session: finish up (`shutdown`) or stop now (`abort`). */
  signal(signal: 'shutdown' | 'abort'): void {
    if (signal === 'abort') this.finish('abort');
    else {
      this.shutdownPending = true;
      this.wake();
    }
  }

  private take(): Uint8Array | ReadSignal | null {
    if (this.ended === 'abort') return 'abort';
    if (this.shutdownPending) {
      this.shutdownPending = false;
      return 'shutdown';
    }
    const chunk = this.queue.shift();
    if (chunk !== undefined) {
      this.queuedBytes -= chunk.length;
      if (this.queuedBytes <= QUEUE_HIGH_WATER_BYTES && this.socket.isPaused() && this.ended === null) this.socket.resume();
      return chunk;
    }
    if (this.idleTimedOut) return 'idle-timeout';
    return this.ended;
  }

  private finish(how: 'eof' | 'abort'): void {
    if (this.ended !== 'abort') this.ended = how;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter === null) return;
    const ready = this.take();
    if (ready === null) return;
    this.waiter = null;
    waiter(ready);
  }
}
