/**
 * Where an accepted socket's reads land. Node reads an accepted socket into a
 * fresh 64 KiB buffer per read (an allocation, fresh pages, a realloc down to
 * what came, and at most 64 KiB per system call and per 'data' event).
 * Receiving a large upload, that cost more than writing it to the file. A
 * socket Node connects itself can read into buffers of ours (`onread`), but
 * `net.Server` offers no such option for the sockets it accepts (Node 20 and
 * 24), so the accepted socket's handle moves into a Socket made with one,
 * before anything is read (the server must pause on connect). Two ways:
 *
 * - `withGrowingReads` (sequential, async, the copy-sink): each read gets a
 *   buffer of its own, sized by the traffic: a few KiB while the client sends
 *   requests, growing fourfold each time a read fills it, up to 1 MiB while
 *   it streams an upload, small again after. A chunk is never overwritten, so
 *   whoever keeps it (a session's queue, a batch of file writes) may keep it.
 *   An idle connection holds one small buffer, as it would hold nothing with
 *   Node's reads.
 * - `withSharedReadBuffer` (workers, the bare relay): every socket of the
 *   thread reads into one 256 KiB buffer, for a reader that copies each chunk
 *   before its 'data' event returns (the thread relay copies it into a
 *   worker's ring at once). libuv reads one socket at a time on this thread
 *   and the bytes are handed over before the next read. The price is the
 *   contract: a chunk is valid only during its 'data' event.
 *
 * Measured (`put-throughput.js --rounds 3`, Node's reads and these
 * alternating, twice): async 0.63 and 0.68 of the native copy with Node's
 * reads, 0.85 and 0.77 with growing reads (server CPU 2.24, 2.16 → 1.72,
 * 1.64 s per GiB); sequential 0.38, 0.52 → 0.73, 0.66; workers 0.46, 0.54 →
 * 0.56, 0.70 with the shared buffer (a 1 MiB shared buffer did no better).
 */
import net from 'node:net';

/** As large as a socket read is worth for a reader that copies: up to four of Node's reads in one system call. */
const SHARED_READ_BYTES = 256 * 1024;
/**
 * A growing read's smallest buffer: a line of requests fits, and below
 * Buffer.poolSize / 2 it is a slice of Node's shared pool, not an allocation
 * of its own (an idle connection holds one).
 */
export const MIN_READ_BYTES = 2 * 1024;
/** A growing read's largest buffer: past this, fewer system calls and events no longer show. */
export const MAX_READ_BYTES = 1024 * 1024;

let sharedBuffer: Buffer | null = null;

/** The parts of an accepted socket this move needs: its handle, and the server that counts it. */
interface AcceptedInternals {
  _handle: object | null;
  _server: net.Server | null;
  server: net.Server | null;
}

/** What net.Socket's `onread` takes: a buffer, or a function giving the next read's, and a callback per read. */
interface ReadsInto {
  readonly buffer: Buffer | (() => Buffer);
  /** Given back the buffer the read landed in: ours, so a Buffer. */
  readonly callback: (bytes: number, buffer: Buffer) => void;
}

/**
 * The accepted, not yet read `socket` as one whose every read lands in a
 * buffer of its own, sized by nextReadBytes; its 'data' chunks may be kept.
 * Paused (resume() starts reading) and half-open allowed, as the server
 * accepted it. Where the handle cannot be moved (another Node version's
 * internals), the same socket, reading as Node does. The socket given must
 * not be used again.
 */
export function withGrowingReads(accepted: net.Socket): net.Socket {
  let nextBytes = MIN_READ_BYTES;
  return movedInto(accepted, (emit) => ({
    buffer: () => (nextBytes < Buffer.poolSize >>> 1 ? Buffer.allocUnsafe(nextBytes) : Buffer.allocUnsafeSlow(nextBytes)),
    callback: (bytes, buffer) => {
      nextBytes = nextReadBytes(bytes, buffer.length);
      emit(buffer.subarray(0, bytes));
    },
  }));
}

/**
 * The next read's buffer after `bytes` landed in one of `capacity`: four
 * times larger when the read filled it (more is waiting), else the power of
 * two that holds what came, within MIN_READ_BYTES..MAX_READ_BYTES.
 */
export function nextReadBytes(bytes: number, capacity: number): number {
  const wanted = bytes >= capacity ? capacity * 4 : 2 ** Math.ceil(Math.log2(Math.max(bytes, 1)));
  return Math.min(MAX_READ_BYTES, Math.max(MIN_READ_BYTES, wanted));
}

/**
 * The accepted, not yet read `socket` as one whose reads land in this
 * thread's shared buffer, its 'data' chunks valid only during the event.
 * Otherwise as withGrowingReads.
 */
export function withSharedReadBuffer(accepted: net.Socket): net.Socket {
  sharedBuffer ??= Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
  const buffer = sharedBuffer;
  return movedInto(accepted, (emit) => ({ buffer, callback: (bytes) => emit(buffer.subarray(0, bytes)) }));
}

function movedInto(accepted: net.Socket, reads: (emit: (chunk: Buffer) => void) => ReadsInto): net.Socket {
  const internals = accepted as unknown as AcceptedInternals;
  const handle = internals._handle;
  if (handle === null || typeof handle !== 'object' || accepted.destroyed) return accepted;
  const server = internals._server;
  internals._handle = null;
  // The server counts its connections through the socket's _server until 'close': the new socket carries the count.
  internals._server = null;
  const options = {
    handle,
    allowHalfOpen: accepted.allowHalfOpen,
    pauseOnCreate: true,
    readable: true,
    writable: true,
    onread: reads((chunk) => socket.emit('data', chunk)),
  };
  const socket = new net.Socket(options as net.SocketConstructorOpts);
  const moved = socket as unknown as AcceptedInternals;
  moved._server = server;
  moved.server = server;
  return socket;
}
