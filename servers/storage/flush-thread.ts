/**
 * The thread of background-flush.ts: waits for a job, runs fdatasync on its
 * descriptor, records how that went, closes the descriptor if the owner
 * handed it over meanwhile, and waits again. Nothing else.
 */
import fs from 'node:fs';
import os from 'node:os';
import { workerData } from 'node:worker_threads';
import { FlusherState, FlushJob, FlushWord } from './background-flush.js';

/** What a failure without an errno is reported as (errnos are negative here, as in Node's errors). */
const EIO = -os.constants.errno.EIO;

const words = new Int32Array((workerData as { words: SharedArrayBuffer }).words);
Atomics.store(words, FlushWord.State, FlusherState.Ready);

try {
  for (;;) {
    const job = Atomics.load(words, FlushWord.Job);
    if ((job & FlushJob.Running) === 0) {
      Atomics.wait(words, FlushWord.Job, job);
      continue;
    }
    const fd = Atomics.load(words, FlushWord.Fd);
    let errno = 0;
    try {
      fs.fdatasyncSync(fd);
    } catch (error) {
      errno = (error as NodeJS.ErrnoException).errno ?? EIO;
    }
    Atomics.store(words, FlushWord.Errno, errno);
    // Counted before the job is let go: whoever waited for the job (a commit) finds it counted.
    Atomics.add(words, FlushWord.Done, 1);
    // One atomic step: a hand-over either came before it (then this thread closes) or finds the job done.
    const finished = Atomics.exchange(words, FlushWord.Job, 0);
    if ((finished & FlushJob.CloseAfter) !== 0) {
      try {
        fs.closeSync(fd);
      } catch {
        // Nothing to do about a descriptor that will not close.
      }
    }
    Atomics.notify(words, FlushWord.Job);
  }
} catch {
  Atomics.store(words, FlushWord.State, FlusherState.Broken);
  Atomics.notify(words, FlushWord.Job);
}
