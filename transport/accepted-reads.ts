/**
 * Where an accepted socket's reads land. Node reads an accepted socket into a
 * fresh 64 KiB buffer per read (an allocation, fresh pages, a realloc down to
 * what came, and at most 64 KiB per system call and per 'data' event).
 * Receiving a large upload, that cost more than writing it to the file. A
 * socket Node connects itself can read into buffers of ours (`onread`), but
 * `net.Server` offers no such option for the sockets it accepts (Node 20 and
 * 24), so an accepted socket is given one before anything is read (the
 * server must pause on connect), as net.Socket's constructor would. Two ways:
 *
 * - `withGrowingReads` (sequential, async, the copy-sink): each read gets a
 *   buffer of its own, sized by the traffic: a few KiB while the client sends
 *   requests, growing fourfold each time a read fills it, up to 1 MiB while
 *   it streams an upload, small again after. A chunk is never overwritten, so
 *   whoever keeps it (a session's queue, a batch of file writes) may keep it.
 *   The price is memory: a connection holds its next read's buffer while it
 *   waits (2 KiB after requests, up to 1 MiB right after a burst), and a
 *   small chunk keeps the whole buffer it landed in alive while it is kept;
 *   Node's reads hold nothing while idle and trim each chunk's buffer.
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
import { Buffer } from 'node:buffer';
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

/** What net.Socket's `onread` takes: a buffer, or a function giving the next read's, and a callback per read. */
interface ReadsInto {
  readonly buffer: Buffer | (() => Buffer);
  /** Given back the buffer the read landed in: ours, so a Buffer. False stops reading. */
  readonly callback: (bytes: number, buffer: Buffer) => boolean;
}

/** Hands a read's bytes on; false when the socket is paused (they wait in the socket, and reading stops). */
type Deliver = (chunk: Buffer, owned: boolean) => boolean;

/**
 * The accepted, not yet read `socket`, each of its reads from now on landing
 * in a buffer of its own, sized by nextReadBytes; its 'data' chunks may be
 * kept. Still paused (resume() starts reading). Where this Node keeps
 * `onread` elsewhere, the socket reads as Node does.
 */
export function withGrowingReads(accepted: net.Socket): net.Socket {
  let nextBytes = MIN_READ_BYTES;
  return readsInto(accepted, (deliver) => ({
    buffer: () => (nextBytes < Buffer.poolSize >>> 1 ? Buffer.allocUnsafe(nextBytes) : Buffer.allocUnsafeSlow(nextBytes)),
    callback: (bytes, buffer) => {
      nextBytes = nextReadBytes(bytes, buffer.length);
      return deliver(buffer.subarray(0, bytes), true);
    },
  }));
}

/**
 * The next read's buffer after `bytes` landed in one of `capacity`: four
 * times larger when the read filled it (more is waiting), else the power of
 * two that holds what came, within MIN_READ_BYTES..MAX_READ_BYTES.
 */
export function nextReadBytes(bytes: number, capacity: number): number {
  if (bytes >= capacity) return Math.min(MAX_READ_BYTES, Math.max(MIN_READ_BYTES, capacity * 4));
  // The power of two by counting bits: cheaper than pow and log2, once per read. MAX_READ_BYTES is one, so clamping first bounds it.
  return bytes <= MIN_READ_BYTES ? MIN_READ_BYTES : 1 << (32 - Math.clz32(Math.min(bytes, MAX_READ_BYTES) - 1));
}

/**
 * The accepted, not yet read `socket`, its reads from now on landing in this
 * thread's shared buffer, its 'data' chunks valid only during the event.
 * Otherwise as withGrowingReads.
 */
export function withSharedReadBuffer(accepted: net.Socket): net.Socket {
  sharedBuffer ??= Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
  const buffer = sharedBuffer;
  return readsInto(accepted, (deliver) => ({ buffer, callback: (bytes) => deliver(buffer.subarray(0, bytes), false) }));
}

/**
 * Gives an accepted, not yet read socket what `onread` gives a socket at its
 * construction: the three slots net.Socket keeps it in (the same on Node 20
 * and 24, found by their symbols' names) and the handle's user buffer.
 * Building a second Socket around the handle instead (the first way tried)
 * doubled the cost of an accept: 5000 clients connecting at once then
 * outran the accept queue, and a few waited a SYN retransmission (1 s).
 */
function readsInto(accepted: net.Socket, reads: (deliver: Deliver) => ReadsInto): net.Socket {
  const handle = (accepted as unknown as { _handle: { useUserBuffer?: (buffer: Uint8Array) => void } | null })._handle;
  if (handle === null || typeof handle.useUserBuffer !== 'function' || accepted.destroyed) return accepted;
  // Looked up once: they are the same symbols for every socket, and the lookup cost more than the rest of the accept.
  onreadSlots ??= findOnreadSlots(accepted);
  const slots = onreadSlots;
  if (slots === null) return accepted;
  const { buffer, callback } = reads((chunk, owned) => {
    if (!accepted.isPaused()) {
      accepted.emit('data', chunk);
      return true;
    }
    // A read that pause() did not stop: pause() in the same tick as the first resume(), whose deferred read(0)
    // starts reading again. The bytes wait in the stream, in order, for 'data' after the next resume(), as with
    // Node's own reads; a shared buffer's are copied, since the next read overwrites them.
    accepted.push(owned ? chunk : Buffer.from(chunk));
    return false;
  });
  const first = typeof buffer === 'function' ? buffer() : buffer;
  const socket = accepted as unknown as Record<symbol, unknown>;
  socket[slots.buffer] = first;
  socket[slots.callback] = callback;
  socket[slots.next] = typeof buffer === 'function' ? buffer : null;
  handle.useUserBuffer(first);
  return accepted;
}

interface OnreadSlots {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly next: symbol;
}

/** This Node's slots, once a socket was looked at (null: it has none). */
let onreadSlots: OnreadSlots | null | undefined;

/** net.Socket's own slots for `onread` (kBuffer, kBufferCb, kBufferGen), or null where this Node has none. */
function findOnreadSlots(socket: net.Socket): OnreadSlots | null {
  const byName = new Map(Object.getOwnPropertySymbols(socket).map((slot) => [slot.description, slot]));
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const next = byName.get('kBufferGen');
  return buffer === undefined || callback === undefined || next === undefined ? null : { buffer, callback, next };
}
