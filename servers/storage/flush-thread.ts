/**
 * The thread of background-flush.ts: waits for a request, runs fdatasync on
 * its descriptor, says it is done, and waits again. Nothing else.
 */
import fs from 'node:fs';
import { workerData } from 'node:worker_threads';
import { FlusherState, FlushWord } from './background-flush.js';

const words = new Int32Array((workerData as { words: SharedArrayBuffer }).words);
Atomics.store(words, FlushWord.State, FlusherState.Ready);

try {
  for (;;) {
    const requested = Atomics.load(words, FlushWord.Requested);
    if (requested === Atomics.load(words, FlushWord.Done)) {
      Atomics.wait(words, FlushWord.Requested, requested);
      continue;
    }
    try {
      fs.fdatasyncSync(Atomics.load(words, FlushWord.Fd));
    } catch {
      // Only a head start: the commit's own fsync reports what went wrong (see background-flush.ts).
    }
    Atomics.store(words, FlushWord.Done, requested);
    Atomics.notify(words, FlushWord.Done);
  }
} catch {
  Atomics.store(words, FlushWord.State, FlusherState.Broken);
  Atomics.notify(words, FlushWord.Done);
}
