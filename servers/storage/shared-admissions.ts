/**
 * The bytes the threads of a workers server have admitted, in one counter
 * they all share: the main thread creates it, passes `.buffer` to each worker
 * (a SharedArrayBuffer is shared, not copied), and each wraps the same buffer
 * in its own SharedAdmissions, as with SharedNameLock. Each thread's
 * free-space estimate (common.ts FreeSpaceEstimate) reads it to count the
 * uploads the other threads began since its own last reading.
 *
 * A 64-bit integer added to atomically: bytes, summed over the server's life,
 * stay exact far past any disk (a number, not a BigInt, in and out: 2^53
 * bytes is 8 PiB).
 */
import { ErrorCodes, SocklabError } from '../../protocol/errors.js';
import type { AdmissionLedger } from './types.js';

export class SharedAdmissions implements AdmissionLedger {
  readonly buffer: SharedArrayBuffer;
  private readonly counter: BigInt64Array;

  /** With no buffer, a new counter at 0; with one (another thread's `.buffer`), that counter. */
  constructor(buffer?: SharedArrayBuffer) {
    if (buffer === undefined) {
      buffer = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT);
    } else if (buffer.byteLength !== BigInt64Array.BYTES_PER_ELEMENT) {
      throw new SocklabError(ErrorCodes.INVALID_ARGUMENT, 'not the buffer of a SharedAdmissions');
    }
    this.buffer = buffer;
    this.counter = new BigInt64Array(buffer);
  }

  add(bytes: number): void {
    if (bytes > 0) Atomics.add(this.counter, 0, BigInt(bytes));
  }

  total(): number {
    return Number(Atomics.load(this.counter, 0));
  }
}
