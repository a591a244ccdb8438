/**
 * servers/storage/hash-ring.ts: a ring's capacity must let a wrapping counter
 * map to a position with a mask, so anything but a power of two up to 1 GiB
 * is refused when the ring is made, not found later as a wrong digest.
 */
import t from 'tap';
import { createHashRing, DIGEST_BYTES, viewHashRing } from '../../../servers/storage/hash-ring.js';

t.test('a power of two up to 1 GiB makes a ring of that capacity', async (t) => {
  for (const capacity of [1, 4096, 4 * 1024 * 1024]) {
    const ring = viewHashRing(createHashRing(capacity));
    t.equal(ring.data.length, capacity);
    t.equal(ring.mask, capacity - 1);
    t.equal(ring.digest.length, DIGEST_BYTES);
  }
  // Zero pages until touched: the 1 GiB costs address space, not memory.
  t.equal(createHashRing(2 ** 30).byteLength > 2 ** 30, true, 'exactly 1 GiB is allowed');
});

t.test('anything else is refused with a RangeError that names it', async (t) => {
  for (const capacity of [0, -4096, 3, 4095, 6 * 1024, 2 ** 31]) {
    t.throws(() => createHashRing(capacity), { name: 'RangeError', message: new RegExp(`power of two up to 1 GiB, not ${capacity}$`) }, `${capacity}`);
  }
});
