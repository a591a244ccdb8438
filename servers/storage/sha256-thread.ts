/**
 * A thread that computes the sha256 of uploads, one at a time, from the ring
 * that the receiving thread fills (hash-ring.ts, upload-digest.ts). Hashing a
 * large upload costs as much CPU as receiving and writing it; on its own
 * thread it runs on the other core, beside the receiving, instead of in its
 * way. The thread sleeps in Atomics.wait between jobs and between chunks:
 * it has nothing else to do, and it wakes within microseconds.
 */
import { createHash } from 'node:crypto';
import { workerData } from 'node:worker_threads';
import { sleepWhile, wakeSleeper } from '../../transport/shared-ring.js';
import { HasherState, Slot, viewHashRing, type HashRing } from './hash-ring.js';

const ring = viewHashRing((workerData as { ring: SharedArrayBuffer }).ring);
const { control } = ring;
// Up and running: from now on a producer may hand this thread a job.
Atomics.store(control, Slot.State, HasherState.Idle);
Atomics.notify(control, Slot.State);

try {
  for (;;) {
    // A job may have moved on before this thread woke to it: finished (its bytes wait in the ring), or
    // abandoned, then or during the job (nobody will ever change the state again: sleeping on it would
    // lose this thread for good). Here is the one place an abandoned job gives the hasher back.
    // Wait on the very value that was checked: reading the state a second time for the wait could see
    // Hashing, set in between, and sleep through the whole job (a producer's later changes ring the doorbell).
    let state = Atomics.load(control, Slot.State);
    while (state !== HasherState.Hashing && state !== HasherState.Finished) {
      if (state === HasherState.Abandoned) {
        Atomics.store(control, Slot.State, HasherState.Idle);
        Atomics.notify(control, Slot.State);
      } else {
        Atomics.wait(control, Slot.State, state);
      }
      state = Atomics.load(control, Slot.State);
    }
    hashOneJob(ring);
  }
} catch {
  // Nothing a producer sent can make hashing fail; if the thread still breaks, producers must not wait for it.
  Atomics.store(control, Slot.State, HasherState.Broken);
  Atomics.notify(control, Slot.State);
  Atomics.notify(control, Slot.Consumed);
}

function hashOneJob({ control, data, digest, mask }: HashRing): void {
  const hash = createHash('sha256');
  let consumed = Atomics.load(control, Slot.Consumed);
  for (;;) {
    // Read the doorbell first: any change after this read rings it again, so the wait below cannot miss one.
    const doorbell = Atomics.load(control, Slot.Doorbell);
    // State before Written: the producer stores its last bytes before Finished, so seeing Finished here means Written below is final.
    const state = Atomics.load(control, Slot.State);
    const waiting = (Atomics.load(control, Slot.Written) - consumed) | 0;
    if (waiting > 0) {
      const at = consumed & mask;
      const first = Math.min(waiting, data.length - at);
      hash.update(data.subarray(at, at + first));
      if (first < waiting) hash.update(data.subarray(0, waiting - first));
      consumed = (consumed + waiting) | 0;
      Atomics.store(control, Slot.Consumed, consumed);
      wakeSleeper(control, Slot.Consumed, Slot.ProducerAsleep);
      continue;
    }
    if (state === HasherState.Finished) {
      // Finished is set after the last byte was written, and nothing was waiting: the digest is complete.
      hash.digest().copy(digest);
      // The producer may have abandoned the job since the state was read: then it stays Abandoned (nobody
      // would take this digest, and a Digested left behind would keep the hasher from every later upload).
      if (Atomics.compareExchange(control, Slot.State, HasherState.Finished, HasherState.Digested) === HasherState.Finished) {
        Atomics.notify(control, Slot.State);
      }
      return;
    }
    // Dropped: the idle loop hands the hasher back.
    if (state === HasherState.Abandoned) return;
    // The wait returns at once if the doorbell rang since it was read above.
    sleepWhile(control, Slot.Doorbell, doorbell, Slot.HasherAsleep);
  }
}
