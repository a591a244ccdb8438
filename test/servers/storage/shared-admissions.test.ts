/**
 * SharedAdmissions across real worker threads, as the workers server uses it:
 * every thread adds the bytes it admits to one counter, and no addition is
 * lost when threads add at the same time (a plain read-modify-write would
 * lose some), so each thread's free-space estimate sees all the others'.
 */
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { ErrorCodes } from '../../../protocol/errors.js';
import { SharedAdmissions } from '../../../servers/storage/shared-admissions.js';

const THREADS = 4;
const ADDS = 100_000;

const workerSource = `
  const { workerData, parentPort } = require('node:worker_threads');
  (async () => {
    const { SharedAdmissions } = await import(workerData.url);
    const ledger = new SharedAdmissions(workerData.buffer);
    for (let i = 0; i < ${ADDS}; i++) ledger.add(workerData.bytes);
    parentPort.postMessage('done');
  })();
`;

t.test('threads adding at once: every addition counts', async (t) => {
  const ledger = new SharedAdmissions();
  const url = new URL('../../../servers/storage/shared-admissions.js', import.meta.url).href;
  await Promise.all(
    Array.from({ length: THREADS }, (_, i) => {
      const worker = new Worker(workerSource, { eval: true, workerData: { url, buffer: ledger.buffer, bytes: i + 1 } });
      return new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      }).finally(() => worker.terminate());
    }),
  );
  t.equal(ledger.total(), ADDS * (1 + 2 + 3 + 4), `${THREADS} threads × ${ADDS} additions of 1, 2, 3 and 4 bytes`);
});

t.test('one counter, any number of views; sizes past 32 bits stay exact; nothing to add adds nothing', async (t) => {
  const ledger = new SharedAdmissions();
  const view = new SharedAdmissions(ledger.buffer);
  t.equal(ledger.total(), 0, 'starts at 0');
  ledger.add(2 ** 40 + 1);
  view.add(5);
  view.add(0);
  view.add(-3);
  t.equal(view.total(), 2 ** 40 + 6);
  t.equal(ledger.total(), view.total(), 'both views read the same counter');
});

t.test('a buffer that is not a counter is refused with a typed error', async (t) => {
  t.throws(() => new SharedAdmissions(new SharedArrayBuffer(4)), { code: ErrorCodes.INVALID_ARGUMENT, message: 'not the buffer of a SharedAdmissions' });
});
