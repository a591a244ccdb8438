/**
 * A per-name lock that works across worker threads: the workers server's main
 * thread creates it, passes `.buffer` to each worker (a SharedArrayBuffer is
 * shared, not copied, by postMessage and workerData), and each worker wraps the
 * same buffer in its own SharedNameLock.
 *
 * Names hash onto a fixed table of slots, so two names may share a slot: they
 * then wait for each other needlessly, which is correct, only slower. Each slot
 * holds 0 when free, or the id of the thread holding it (threadId + 1, since the
 * main thread's threadId is 0), which lets a thread that takes a slot it already
 * holds fail loudly instead of deadlocking.
 *
 * Limits: blocking (Atomics.wait), so for SyncStorage only; a thread that dies
 * while holding a slot (terminated mid-commit) leaves it taken.
 */
import { threadId } from 'node:worker_threads';
import { ErrorCodes, InvalidStateError, SocklabError } from '../../protocol/errors.js';
import type { SyncNameLock } from './types.js';

export const DEFAULT_LOCK_SLOTS = 64;
const FREE = 0;
const utf8 = new TextEncoder();

export class SharedNameLock implements SyncNameLock {
  readonly buffer: SharedArrayBuffer;
  private readonly slots: Int32Array;
  private readonly self = threadId + 1;

  /**
   * With no buffer, creates a table of `slotCount` free slots; with one (from
   * another thread's `.buffer`), uses that table and its size.
   */
  constructor(buffer?: SharedArrayBuffer, slotCount = DEFAULT_LOCK_SLOTS) {
    if (buffer === undefined) {
      if (!Number.isSafeInteger(slotCount) || slotCount <= 0) {
        throw new SocklabError(ErrorCodes.INVALID_ARGUMENT, `slotCount must be a positive integer, not ${slotCount}`);
      }
      buffer = new SharedArrayBuffer(slotCount * Int32Array.BYTES_PER_ELEMENT);
    } else if (buffer.byteLength === 0 || buffer.byteLength % Int32Array.BYTES_PER_ELEMENT !== 0) {
      throw new SocklabError(ErrorCodes.INVALID_ARGUMENT, 'not the buffer of a SharedNameLock');
    }
    this.buffer = buffer;
    this.slots = new Int32Array(buffer);
  }

  get slotCount(): number {
    return this.slots.length;
  }

  withLock<T>(name: string, fn: () => T): T {
    const slot = this.slotOf(name);
    this.acquire(slot, name);
    try {
      return fn();
    } finally {
      this.release(slot);
    }
  }

  /** FNV-1a over the UTF-8 bytes: the same slot for the same name in every thread. */
  slotOf(name: string): number {
    let hash = 0x811c9dc5;
    for (const byte of utf8.encode(name)) {
      hash = Math.imul(hash ^ byte, 0x01000193);
    }
    return (hash >>> 0) % this.slots.length;
  }

  private acquire(slot: number, name: string): void {
    for (;;) {
      const holder = Atomics.compareExchange(this.slots, slot, FREE, this.self);
      if (holder === FREE) return;
      if (holder === this.self) {
        throw new InvalidStateError(`this thread already holds the lock slot of ${name} (a nested withLock)`);
      }
      // Sleeps only while the slot still holds that same holder, so a release between the exchange and here is not missed.
      Atomics.wait(this.slots, slot, holder);
    }
  }

  private release(slot: number): void {
    const holder = Atomics.compareExchange(this.slots, slot, this.self, FREE);
    if (holder !== this.self) throw new InvalidStateError('released a lock slot this thread does not hold');
    Atomics.notify(this.slots, slot, 1);
  }
}
