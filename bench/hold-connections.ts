/**
 * Many connections held open at once (all greeted), then each does a 1 KiB
 * PUT: all must succeed, and the server's memory per held connection is
 * reported (RSS with them held minus RSS before, divided by their number).
 *   node dist/bench/hold-connections.js [--connections 10000] [--targets async]
 */
import net from 'node:net';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startServerProcess, type BenchTarget } from './targets/server-process.js';

const args = await yargs(hideBin(process.argv))
  .option('connections', { type: 'number', default: 10_000 })
  .option('targets', { type: 'string', default: 'async' })
  .option('threads', { type: 'number', describe: 'workers pool size (default: one per connection would be absurd; the server default)' })
  .strict()
  .parseAsync();

const payload = Buffer.alloc(1024, 'x');

interface Held {
  readonly socket: net.Socket;
  text: string;
  waiter: (() => void) | null;
}

function until(held: Held, pattern: RegExp, timeoutMs = 120_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${JSON.stringify(held.text.slice(-200))}`)), timeoutMs);
    const check = () => {
      if (pattern.test(held.text)) {
        clearTimeout(timer);
        held.waiter = null;
        resolve();
      } else if (/^4\d\d /m.test(held.text)) {
        clearTimeout(timer);
        reject(new Error(held.text.trim()));
      }
    };
    held.waiter = check;
    check();
  });
}

function open(port: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const held: Held = { socket, text: '', waiter: null };
    socket.on('data', (chunk: Buffer) => {
      held.text += chunk.toString('latin1');
      held.waiter?.();
    });
    socket.once('connect', () => resolve(held));
    socket.once('error', reject);
  });
}

const MiB = 1024 * 1024;
for (const target of args.targets.split(',') as BenchTarget[]) {
  const server = await startServerProcess(target, { maxConnections: args.connections + 100, ...(args.threads === undefined ? {} : { threads: args.threads }) });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rssBefore = server.rss();
  const started = performance.now();
  const held: Held[] = [];
  // Open in batches: a burst of 10,000 SYNs at once only measures the listen backlog.
  for (let i = 0; i < args.connections; i += 500) {
    const batch = await Promise.all(Array.from({ length: Math.min(500, args.connections - i) }, () => open(server.port)));
    held.push(...batch);
  }
  await Promise.all(held.map((h) => until(h, /^220 /m)));
  const greetedAfter = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const rssHeld = server.rss();
  const putStarted = performance.now();
  let committed = 0;
  await Promise.all(
    held.map(async (h, i) => {
      h.text = '';
      h.socket.write(`PUT f${i}.txt 1024 mode=overwrite\n`);
      await until(h, /^150 /m);
      h.socket.write(payload);
      await until(h, /^226 /m);
      committed++;
    }),
  );
  const putSeconds = (performance.now() - putStarted) / 1000;
  const peak = server.peakRss();
  for (const h of held) h.socket.destroy();
  await server.stop();
  const perConnection = (rssHeld - rssBefore) / args.connections;
  process.stdout.write(
    `${target}: ${args.connections} connections greeted in ${greetedAfter.toFixed(2)} s; RSS ${(rssBefore / MiB).toFixed(1)} → ${(rssHeld / MiB).toFixed(1)} MiB held ` +
      `= ${(perConnection / 1024).toFixed(2)} KiB per connection; ${committed}/${args.connections} PUTs committed in ${putSeconds.toFixed(2)} s; peak RSS ${(peak / MiB).toFixed(0)} MiB\n`,
  );
}
