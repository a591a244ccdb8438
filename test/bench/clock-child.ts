/** Child of shared-clock.test.ts: adopts the parent's clock anchor, then answers each ping with its shared-clock time. */
import { adoptClockAnchor, sharedNow } from '../../bench/load/shared-clock.js';

process.on('message', (message: { anchor?: number; ping?: true; exit?: true }) => {
  if (message.anchor !== undefined) adoptClockAnchor(message.anchor);
  if (message.ping === true) process.send?.({ now: sharedNow() });
  if (message.exit === true) process.disconnect();
});
process.send?.({ ready: true });
