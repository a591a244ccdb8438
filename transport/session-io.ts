/**
 * The contracts between a session program (servers/session.ts) and the
 * transports that carry its bytes. They live here, below both, so that
 * transport/ never imports servers/ and servers/ imports only downwards.
 */

/** What a read can return instead of bytes; the transport delivers these. */
export type ReadSignal =
  /** The client closed its side. */
  | 'eof'
  /** No byte from the client for the idle time while the session waited for one. */
  | 'idle-timeout'
  /** The server is stopping: finish what is under way, then say 421. */
  | 'shutdown'
  /** Stop now (grace time over, or the socket broke): discard what is under way. */
  | 'abort';

export type ClientInput = Uint8Array | ReadSignal;

/**
 * A session's I/O on the event loop (the sequential and async servers).
 *
 * Nothing here costs a promise or a microtask when it need not: a read that
 * finds bytes already received returns them at once, and writes are queued
 * and sent together when the session next has to wait, so the replies to
 * pipelined requests leave in one system call.
 */
export interface AsyncSessionIO {
  /**
   * Bytes or a signal when one is ready now. Otherwise null, and `resume` is
   * called (once) when one is: the session waits for its client.
   */
  read(resume: (input: ClientInput) => void): ClientInput | null;
  /**
   * Queues bytes for the client. A promise when the client is so far behind
   * that the session must wait before writing more (it rejects with a
   * ConnectionError if the client stops reading, or leaves).
   */
  write(bytes: Uint8Array): void | Promise<void>;
  /** Sends what `write` queued. Called before the session waits for anything. */
  flush(): void;
}

/** A session's I/O as blocking calls (a worker thread). */
export interface BlockingSessionIO {
  /**
   * Bytes or a signal, blocking until one is there. The bytes may live in
   * memory this IO reuses from the read after the next one on: the session
   * consumes a read's bytes before it reads again, and its core copies what
   * it has not consumed when the next read's bytes come (ReceiveBuffer.push).
   */
  read(): ClientInput;
  write(bytes: Uint8Array): void;
  /** Sends what `write` queued; called before the session blocks on anything but a read. */
  flush(): void;
}

/**
 * What a client sent while it waited for its turn (sequential and workers
 * servers), held unread so that a client that leaves the queue is noticed;
 * the session receives it first when it starts.
 */
export interface HeldInput {
  readonly chunks: readonly Uint8Array[];
  /** The client closed its side while it waited (after sending what is held). */
  readonly ended: boolean;
}

export const NOTHING_HELD: HeldInput = { chunks: [], ended: false };
