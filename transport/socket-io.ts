/**
 * A session's reads and writes over a net.Socket owned by this thread (the
 * sequential and async servers).
 *
 * Reading is pull-based: bytes queue here until the session asks, and past a
 * small bound the socket is paused, so a session busy with storage makes the
 * kernel, not this process, hold a fast client's data (TCP flow control does
 * the rest). Bytes already here are returned at once, without a promise.
 *
 * Writing is batched: replies queue until the session next waits (for its
 * client, its disk, or a slow reader), then leave together in one write, as
 * a bare server would send them.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterPendingIO, clientGone, drained } from './drain.js';
import { NOTHING_HELD, type AsyncSessionIO, type ClientInput, type HeldInput } from './session-io.js';

const QUEUE_HIGH_WATER_BYTES = 512 * 1024;
/** Past this many queued reply bytes (a GET's data), they go out without waiting for the session to pause. */
const WRITE_BATCH_BYTES = 64 * 1024;

export class SocketSessionIO implements AsyncSessionIO {
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private ended: 'eof' | 'abort' | null = null;
  private shutdownPending = false;
  private idleTimedOut = false;
  /**
   * Armed by a wait for input, and when it goes off during a later wait, set
   * again for the rest of that wait's idle time: not re-armed for every byte in
   * and out, as socket.setTimeout would, which costs more than the rest of a
   * small request's reading and writing here.
   */
  private idleTimer: NodeJS.Timeout | undefined;
  /** When the current wait for input began (performance.now()). */
  private waitStartedAt = 0;
  private waiter: ((input: ClientInput) => void) | null = null;
  /** Counts the session's waits for input, so that a late idle verdict can tell its own wait from the next. */
  private waits = 0;
  private readonly unsent: Uint8Array[] = [];
  private unsentBytes = 0;

  constructor(
    private readonly socket: Socket,
    /** No byte from the client for this long while the session waits for one ends it (0: never); also the write stall bound. */
    private readonly idleTimeoutMs: number,
    held: HeldInput = NOTHING_HELD,
  ) {
    for (const chunk of held.chunks) {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
    }
    if (held.ended) this.ended = 'eof';
    socket.on('data', (chunk: Buffer) => {
      const waiter = this.waiter;
      // A read waits only when nothing is queued (take() found nothing), and every chunk queued meanwhile wakes
      // it: so a waiting read's bytes are exactly this chunk, handed over without a trip through the queue.
      if (waiter !== null) {
        this.waiter = null;
        waiter(chunk);
        return;
      }
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
      if (this.queuedBytes > QUEUE_HIGH_WATER_BYTES) socket.pause();
      this.wake();
    });
    socket.on('end', () => this.finish('eof'));
    socket.on('close', () => this.finish('abort'));
    // A reset by the peer surfaces as 'close' right after; the error itself needs no handling.
    socket.on('error', () => {});
    if (this.queuedBytes <= QUEUE_HIGH_WATER_BYTES) socket.resume();
  }

  read(resume: (input: ClientInput) => void): ClientInput | null {
    const ready = this.take();
    if (ready !== null) return ready;
    this.waiter = resume;
    this.waits++;
    if (this.idleTimeoutMs > 0) {
      this.waitStartedAt = performance.now();
      if (this.idleTimer === undefined) this.armIdleTimer(this.idleTimeoutMs);
    }
    return null;
  }

  write(bytes: Uint8Array): void | Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) throw clientGone();
    this.unsent.push(bytes);
    this.unsentBytes += bytes.length;
    // A client already behind on our replies gets no more until it takes some: small replies to a
    // steady stream of requests would otherwise pile up here, and a client that never reads would
    // never make a write wait, so it would never be cut off.
    if (this.unsentBytes < WRITE_BATCH_BYTES && !this.socket.writableNeedDrain) return;
    this.flush();
    if (this.socket.writableNeedDrain) return drained(this.socket, this.idleTimeoutMs);
  }

  flush(): void {
    const count = this.unsent.length;
    if (count === 0 || this.socket.destroyed) return;
    // pop(), not `length = 0`: setting an array's length is a runtime call, and this runs once per request.
    const bytes = count === 1 ? this.unsent.pop()! : Buffer.concat(this.unsent.splice(0), this.unsentBytes);
    this.unsentBytes = 0;
    this.socket.write(bytes);
  }

  /** The shell's word to this session: finish up (`shutdown`) or stop now (`abort`). */
  signal(signal: 'shutdown' | 'abort'): void {
    if (signal === 'abort') {
      this.finish('abort');
      // A session waiting for a slow reader learns it from the socket.
      if (this.socket.writableNeedDrain) this.socket.destroy();
    } else {
      this.shutdownPending = true;
      this.wake();
    }
  }

  private armIdleTimer(ms: number): void {
    this.idleTimer = setTimeout(() => this.onIdleTimer(), ms);
    // Like socket.setTimeout's timer: it must not keep a stopping server alive.
    this.idleTimer.unref();
  }

  private onIdleTimer(): void {
    this.idleTimer = undefined;
    // Not waiting: the client is waiting for us, not idle (a long append, a busy disk). The next wait arms the timer.
    // (An ended session has no timer: finish() cleared it.)
    if (this.waiter === null) return;
    const waited = performance.now() - this.waitStartedAt;
    if (waited < this.idleTimeoutMs) {
      this.armIdleTimer(this.idleTimeoutMs - waited); // a wait that began after the timer was set
      return;
    }
    // The event loop runs due timers before it polls its sockets: when this thread was busy past the idle
    // time, the client's bytes may be waiting in the kernel, unread. The verdict waits for that poll.
    const wait = this.waits;
    afterPendingIO(() => {
      if (this.waiter === null || this.waits !== wait) return; // bytes came: the client was not idle
      this.idleTimedOut = true;
      this.wake();
    });
  }

  private take(): ClientInput | null {
    if (this.ended === 'abort') return 'abort';
    if (this.shutdownPending) {
      this.shutdownPending = false;
      return 'shutdown';
    }
    const chunk = this.queue.shift();
    if (chunk !== undefined) {
      this.queuedBytes -= chunk.length;
      // A no-op on a socket that flows or has ended.
      if (this.queuedBytes <= QUEUE_HIGH_WATER_BYTES) this.socket.resume();
      return chunk;
    }
    if (this.idleTimedOut) {
      this.idleTimedOut = false;
      return 'idle-timeout';
    }
    return this.ended;
  }

  private finish(how: 'eof' | 'abort'): void {
    if (this.ended !== 'abort') this.ended = how;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
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
