/**
 * The shared memory between a thread that receives an upload and the thread
 * that computes its sha256 (upload-digest.ts, sha256-thread.ts): a ring of
 * bytes in a SharedArrayBuffer, two counters and a state word. One side only
 * ever writes `written`, the other only `consumed`, so neither needs a lock.
 *
 * The counters count bytes modulo 2^32 (Int32 wrap-around); the ring's
 * capacity is a power of two far below 2^31, so `(written - consumed) | 0` is
 * always the number of bytes waiting, even across the wrap.
 */

/** Indexes of the Int32 control words. */
export const Slot = {
  /** Bytes the producer has put in the ring (mod 2^32). */
  Written: 0,
  /** Bytes the hasher has taken out of it (mod 2^32). */
  Consumed: 1,
  /** One of HasherState. */
  State: 2,
  /** Bumped by the producer after each change, so the hasher can sleep on one word and miss nothing. */
  Doorbell: 3,
  /**
   * 1 while the hasher sleeps (or is about to) on Doorbell, 1 while the producer
   * sleeps on Consumed or State: each side wakes the other only when it may be
   * asleep (transport/shared-ring.ts says why no wake-up is lost).
   */
  HasherAsleep: 4,
  ProducerAsleep: 5,
} as const;

export const HasherState = {
  /** No job: the hasher sleeps on State until a producer starts one. */
  Idle: 0,
  /** A job is running: bytes may still come. */
  Hashing: 1,
  /** The producer has put its last byte in. */
  Finished: 2,
  /** The digest is in the digest bytes. */
  Digested: 3,
  /** The producer gave up (aborted upload); the hasher drops the job and goes back to Idle. */
  Abandoned: 4,
  /** The hasher failed (it cannot take jobs any more). */
  Broken: 5,
  /** Set by the creator before the thread runs; the thread's first act is Idle. Until then, nobody waits on it. */
  Starting: 6,
} as const;

const CONTROL_WORDS = 8;
const DIGEST_OFFSET = CONTROL_WORDS * 4;
export const DIGEST_BYTES = 32;
const DATA_OFFSET = DIGEST_OFFSET + 64;

export interface HashRing {
  readonly buffer: SharedArrayBuffer;
  readonly control: Int32Array;
  readonly digest: Uint8Array;
  readonly data: Uint8Array;
  /** capacity - 1 (the capacity is a power of two). */
  readonly mask: number;
}

export function createHashRing(capacity: number): SharedArrayBuffer {
  if (capacity <= 0 || (capacity & (capacity - 1)) !== 0 || capacity > 2 ** 30) {
    throw new RangeError(`a hash ring's capacity must be a power of two up to 1 GiB, not ${capacity}`);
  }
  return new SharedArrayBuffer(DATA_OFFSET + capacity);
}

export function viewHashRing(buffer: SharedArrayBuffer): HashRing {
  const data = new Uint8Array(buffer, DATA_OFFSET);
  return {
    buffer,
    control: new Int32Array(buffer, 0, CONTROL_WORDS),
    digest: new Uint8Array(buffer, DIGEST_OFFSET, DIGEST_BYTES),
    data,
    mask: data.length - 1,
  };
}
