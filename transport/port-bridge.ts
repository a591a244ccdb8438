/**
 * A socket owned by the main thread, read and written as *blocking* calls by a
 * worker thread. On Node 20 a socket cannot move to another thread, so the
 * main thread relays: socket bytes go to the worker over a MessagePort, the
 * worker's replies come back the same way. The worker blocks like the seed's
 * Python `recv()`: it sleeps in Atomics.wait on a shared counter that the main
 * thread bumps after each message, then takes the message with
 * receiveMessageOnPort (its own event loop never runs while a session does).
 *
 * Flow control both ways, so no side ever buffers a whole file:
 * - client → worker: the main thread counts bytes posted; the worker publishes
 *   bytes consumed; past the input window unconsumed the socket is paused, and the
 *   worker asks for a resume as soon as it takes bytes again (no hysteresis:
 *   a worker that stays behind costs a pause and a resume per chunk; uploads
 *   still run at the speed of a raw loopback copy, bench/put-throughput.ts).
 * - worker → client: the main thread publishes bytes flushed to the socket;
 *   past the output window unflushed the worker waits for the socket to drain.
 */
import type { Socket } from 'node:net';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { ConnectionError, ErrorCodes } from '../protocol/index.js';
import type { BlockingSessionIO, ReadSignal } from '../servers/session.js';

/** Int32 slots of the shared control array (exported for the tests, which stage races with them). */
export const ControlSlot = {
  /** Bumped by the main thread after every message it posts, and whenever the worker should look again. */
  WAKE: 0,
  /** Input bytes the worker has taken (wrapping counter). */
  CONSUMED: 1,
  /** Output bytes the socket has taken (wrapping counter). */
  FLUSHED: 2,
  /** 1 while the main thread holds the socket paused. */
  INPUT_PAUSED: 3,
  /** 1 once the socket is gone: writes fail at once. */
  SOCKET_CLOSED: 4,
} as const;
const { WAKE, CONSUMED, FLUSHED, INPUT_PAUSED, SOCKET_CLOSED } = ControlSlot;
const CONTROL_SLOTS = 5;

/** How many bytes the worker may be behind the socket (input) or the socket behind the worker (output). */
export const FLOW_WINDOW_BYTES = { input: 256 * 1024, output: 256 * 1024 } as const;

/**
 * Messages are as small as they can be, since there is one per request each
 * way: bytes travel bare (a Uint8Array *is* a data or write message), and
 * everything else is one word.
 */
export type ToWorker = Uint8Array | ReadSignal;

export type ToMain =
  | Uint8Array
  | 'started'
  | 'resume-input'
  /** The session is over; sent last, so every write before it has been relayed. */
  | 'done';

export function createControl(): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
}

/** Main-thread half: relays one socket to one worker's port. */
export class SocketPortBridge {
  private readonly control: Int32Array;
  private posted = 0;
  private ended = false;
  private relayedAll: () => void = () => {};
  /** Resolves once the worker's last message arrived: all its writes are in the socket. */
  readonly finished = new Promise<void>((resolve) => {
    this.relayedAll = resolve;
  });

  constructor(
    private readonly socket: Socket,
    private readonly port: MessagePort,
    control: SharedArrayBuffer,
    private readonly onStarted: () => void,
  ) {
    this.control = new Int32Array(control);
    port.on('message', (message: ToMain) => this.fromWorker(message));
  }

  /** Tells the worker's session to finish up or stop (also wakes a blocked read). */
  signal(signal: ReadSignal): void {
    this.post(signal);
  }

  close(): void {
    this.port.close();
  }

  private fromWorker(message: ToMain): void {
    if (message instanceof Uint8Array) {
      this.relayWrite(message);
      return;
    }
    switch (message) {
      case 'started':
        // Only now is the socket read: until a thread is free it waits unread, like a backlog.
        this.relaySocket();
        this.onStarted();
        break;
      case 'resume-input':
        if (!this.ended) this.socket.resume();
        break;
      case 'done':
        this.relayedAll();
        break;
    }
  }

  /** Output bytes written to the socket while it was over its high-water mark. */
  private undrained = 0;

  /**
   * Bytes the socket accepts below its high-water mark count as flushed at
   * once; the rest only when it drains. So the worker waits only while the
   * client really is slower than the server.
   */
  private relayWrite(bytes: Uint8Array): void {
    if (!this.socket.writable) this.flushed(bytes.length); // the client is gone; the worker learns it from its next read
    else if (this.socket.write(bytes) && this.undrained === 0) this.flushed(bytes.length);
    else {
      if (this.undrained === 0) this.socket.once('drain', () => this.flushed(this.undrained));
      this.undrained += bytes.length;
    }
  }

  private flushed(bytes: number): void {
    if (bytes === this.undrained) this.undrained = 0;
    Atomics.add(this.control, FLUSHED, bytes);
    Atomics.notify(this.control, FLUSHED);
  }

  private relaySocket(): void {
    this.socket.on('data', (chunk: Buffer) => {
      this.posted = (this.posted + chunk.length) | 0;
      this.post(chunk);
      if (((this.posted - Atomics.load(this.control, CONSUMED)) | 0) > FLOW_WINDOW_BYTES.input) {
        Atomics.store(this.control, INPUT_PAUSED, 1);
        this.socket.pause();
        // The CONSUMED read above may be stale: the worker may have taken
        // everything meanwhile and gone to sleep without seeing the pause. Wake it,
        // so that it looks at INPUT_PAUSED again and asks for a resume.
        this.wakeWorker();
      }
    });
    this.socket.on('end', () => this.finish('eof'));
    this.socket.on('close', () => this.finish('abort'));
    this.socket.resume();
  }

  private finish(signal: 'eof' | 'abort'): void {
    if (this.ended && signal === 'eof') return;
    this.ended = true;
    this.signal(signal);
    if (signal === 'abort') {
      // Wakes a worker waiting for output to drain: the socket it waits for is
      // gone, and 'drain' will never come. FLUSHED must *change*, not only be
      // notified: a worker that read FLUSHED (and SOCKET_CLOSED = 0) just before
      // this, and has yet to call Atomics.wait, would miss a bare notify and
      // sleep for good. Counting the undrained bytes as flushed moves FLUSHED;
      // with none undrained, whatever keeps the worker over its window is still
      // on its way here, and relayWrite counts it flushed when it arrives.
      Atomics.store(this.control, SOCKET_CLOSED, 1);
      this.flushed(this.undrained); // (and notifies)
    }
  }

  private post(message: ToWorker): void {
    try {
      if (message instanceof Uint8Array) postBytes(this.port, message);
      else this.port.postMessage(message);
    } catch {
      return; // the port is closed: the session already ended
    }
    this.wakeWorker();
  }

  private wakeWorker(): void {
    Atomics.add(this.control, WAKE, 1);
    Atomics.notify(this.control, WAKE);
  }
}

/** Worker-thread half: the session's blocking reads and writes. */
export class BlockingPortIO implements BlockingSessionIO {
  private readonly control: Int32Array;
  private written = 0;
  private consumed = 0;
  private shutdownSeen = false;

  constructor(
    private readonly port: MessagePort,
    control: SharedArrayBuffer,
    private readonly idleTimeoutMs: number,
  ) {
    this.control = new Int32Array(control);
    port.postMessage('started' satisfies ToMain);
  }

  read(): Uint8Array | ReadSignal {
    const deadline = this.idleTimeoutMs > 0 ? performance.now() + this.idleTimeoutMs : Number.POSITIVE_INFINITY;
    for (;;) {
      // Load the counter *before* looking at the port: a message posted after the
      // look bumps it, so the wait below returns at once instead of sleeping through it.
      const seen = Atomics.load(this.control, WAKE);
      const received = receiveMessageOnPort(this.port);
      if (received !== undefined) {
        const message = received.message as ToWorker;
        if (message instanceof Uint8Array) return this.took(message);
        if (message !== 'shutdown' || !this.shutdownSeen) {
          this.shutdownSeen ||= message === 'shutdown';
          return message;
        }
        continue;
      }
      // Nothing left to read: if the socket is paused, it is paused for nothing.
      this.resumeInputIfPaused();
      const left = deadline - performance.now();
      if (left <= 0) return 'idle-timeout';
      Atomics.wait(this.control, WAKE, seen, Number.isFinite(left) ? left : undefined);
    }
  }

  /** Last call of a session: the main thread may close the socket once this arrives. */
  done(): void {
    this.port.postMessage('done' satisfies ToMain);
  }

  write(bytes: Uint8Array): void {
    if (Atomics.load(this.control, SOCKET_CLOSED) === 1) throw new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'the client is gone');
    // Counted before posting: a large write moves its buffer, which leaves `bytes` empty.
    this.written = (this.written + bytes.length) | 0;
    postBytes(this.port, bytes);
    for (;;) {
      const flushed = Atomics.load(this.control, FLUSHED);
      if (((this.written - flushed) | 0) <= FLOW_WINDOW_BYTES.output) return;
      if (Atomics.load(this.control, SOCKET_CLOSED) === 1) throw new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'the client is gone');
      Atomics.wait(this.control, FLUSHED, flushed);
    }
  }

  private took(bytes: Uint8Array): Uint8Array {
    this.consumed = (this.consumed + bytes.length) | 0;
    Atomics.store(this.control, CONSUMED, this.consumed);
    this.resumeInputIfPaused();
    return bytes;
  }

  /**
   * Asks the main thread to read the socket again. Checked after every take
   * and again before every sleep: the main thread decides to pause from a
   * CONSUMED it read a moment earlier, so its pause may land just after this
   * worker took the last byte; it then wakes the worker, which ends up here.
   */
  private resumeInputIfPaused(): void {
    if (Atomics.compareExchange(this.control, INPUT_PAUSED, 1, 0) === 1) this.port.postMessage('resume-input' satisfies ToMain);
  }
}

/** Below this, copying bytes costs less than moving a buffer's ownership to another thread. */
const TRANSFER_THRESHOLD_BYTES = 16 * 1024;

/**
 * Posts bytes to the other thread. Large ones move (transfer) instead of being
 * copied; a view onto part of a larger buffer (Node pools small Buffers) is
 * copied out first, since cloning or transferring it would take the whole pool.
 */
function postBytes(port: MessagePort, bytes: Uint8Array): void {
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
  if (own.length < TRANSFER_THRESHOLD_BYTES) port.postMessage(own);
  else port.postMessage(own, [own.buffer as ArrayBuffer]);
}
