/**
 * What two threads need to pass bytes through a SharedArrayBuffer, used by
 * both places socklab does so: the socket relay (thread-relay.ts) and an
 * upload's hasher (servers/storage/hash-ring.ts).
 *
 * A ring is a Buffer whose length is a power of two, addressed by counters
 * that wrap at 2^32: `counter & (length - 1)` is the position.
 *
 * A wake-up (Atomics.notify) is a system call, and a busy reader would be
 * woken by a writer every few microseconds for nothing. So each sleeper
 * raises a flag word while it sleeps, and the other side wakes it only when
 * the flag is up. The sleeper raises its flag, then its wait compares the word
 * with the value it read before deciding to sleep; the waker changes the word,
 * then reads the flag (all sequentially consistent): one of them sees the
 * other, and no wake-up is lost.
 */
import { Buffer } from 'node:buffer';

/** A Buffer over the same memory. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Copies `count` bytes of `bytes`, from offset `from`, into the ring at counter `at`. */
export function copyIntoRing(ring: Buffer, at: number, bytes: Uint8Array, from: number, count: number): void {
  const source = asBuffer(bytes);
  const position = at & (ring.length - 1);
  const first = Math.min(count, ring.length - position);
  copyBytes(source, from, ring, position, first);
  copyBytes(source, from + first, ring, 0, count - first); // the part that wrapped, if any
}

/** Copies `count` bytes out of the ring at counter `at` into a new buffer. */
export function copyOutOfRing(ring: Buffer, at: number, count: number): Buffer {
  const out = Buffer.allocUnsafeSlow(count);
  const position = at & (ring.length - 1);
  const first = Math.min(count, ring.length - position);
  copyBytes(ring, position, out, 0, first);
  copyBytes(ring, 0, out, first, count - first); // the part that wrapped, if any
  return out;
}

/**
 * One memcpy of `count` bytes. Not Buffer#copy or TypedArray#set: when either
 * side is shared memory, V8 copies with relaxed atomic loads and stores, a
 * word at a time only if both addresses have the same alignment, otherwise a
 * byte at a time, and socket chunks land at any offset. Measured on Node 20
 * and 24, 64 KiB into a ring at an odd offset: 3.8 GiB/s, against about 90
 * for Buffer#fill with a value exactly as long as the range, which Node's
 * C++ copies with one memcpy (each side's part of the memory belongs to one
 * thread at a time, so nothing else touches these bytes meanwhile). Copying
 * into and out of the relay's rings was a quarter of a workers server's CPU
 * during a large upload.
 */
function copyBytes(source: Buffer, from: number, target: Buffer, at: number, count: number): void {
  if (count > 0) target.fill(source.subarray(from, from + count), at, at + count);
}

/** Wakes a thread sleeping on `slot`, if its `sleeperFlag` says it may be asleep. */
export function wakeSleeper(words: Int32Array, slot: number, sleeperFlag: number): void {
  if (Atomics.load(words, sleeperFlag) === 1) Atomics.notify(words, slot);
}

/** Bumps the bell word `slot`, then (if `wake`) wakes a sleeper on it. */
export function ringBell(words: Int32Array, slot: number, sleeperFlag: number, wake = true): void {
  Atomics.add(words, slot, 1);
  if (wake) wakeSleeper(words, slot, sleeperFlag);
}

/** Blocks while the word at `slot` is `seen` (or until `timeoutMs`), with `sleeperFlag` raised meanwhile. */
export function sleepWhile(words: Int32Array, slot: number, seen: number, sleeperFlag: number, timeoutMs?: number): 'ok' | 'not-equal' | 'timed-out' {
  Atomics.store(words, sleeperFlag, 1);
  try {
    return Atomics.wait(words, slot, seen, timeoutMs);
  } finally {
    Atomics.store(words, sleeperFlag, 0);
  }
}

/** The event loop's sleepWhile: `waiting` is the Atomics.waitAsync on the word, made after the flag is raised. */
export async function sleepWhileAsync<Result>(words: Int32Array, sleeperFlag: number, waiting: () => Promise<Result>): Promise<Result> {
  Atomics.store(words, sleeperFlag, 1);
  try {
    return await waiting();
  } finally {
    Atomics.store(words, sleeperFlag, 0);
  }
}
