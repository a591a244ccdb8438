/** One bare-relay connection in a worker thread: greet, then `200 PONG` per line until the client leaves. */
import { countLineFeeds } from '../load/ping-load.js';
import { BlockingRelayIO } from '../../transport/thread-relay.js';

const GREETING = Buffer.from('220 bare-relay ready\n');
const PONG = Buffer.from('200 PONG\n');

export default function relayLines(task: { channel: SharedArrayBuffer }): void {
  const io = new BlockingRelayIO(task.channel);
  try {
    io.write(GREETING);
    for (;;) {
      const input = io.read();
      if (!(input instanceof Uint8Array)) return;
      for (let lines = countLineFeeds(input); lines > 0; lines--) io.write(PONG);
    }
  } catch {
    // The client left: the connection is over.
  } finally {
    io.done();
  }
}
