/**
 * How long a client waits for its `220` when nobody else is being served:
 * connect, time until the greeting, close; one connection after another. For
 * workers this is the warm pool's hand-off (main thread → idle thread), and
 * the memory a worker thread costs, idle and busy, is measured alongside.
 *   node dist/bench/greeting-latency.js [--connections 500] [--threads 8]
 */
import net from 'node:net';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startServerProcess, type BenchTarget } from './targets/server-process.js';

const args = await yargs(hideBin(process.argv))
  .option('connections', { type: 'number', default: 500 })
  .option('threads', { type: 'number', default: 8 })
  .option('targets', { type: 'string', default: 'sequential,workers,async' })
  .strict()
  .parseAsync();

const MiB = 1024 * 1024;

function connectAndGreet(port: number): Promise<{ socket: net.Socket; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    socket.once('data', () => resolve({ socket, ms: performance.now() - started }));
    socket.once('error', reject);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

for (const target of args.targets.split(',') as BenchTarget[]) {
  const server = await startServerProcess(target, { threads: args.threads });
  for (let i = 0; i < 50; i++) (await connectAndGreet(server.port)).socket.destroy(); // warm-up
  const latencies: number[] = [];
  for (let i = 0; i < args.connections; i++) {
    const { socket, ms } = await connectAndGreet(server.port);
    latencies.push(ms);
    socket.end('QUIT\n');
    await new Promise((resolve) => socket.once('close', resolve));
  }
  latencies.sort((a, b) => a - b);
  let memory = '';
  if (target === 'workers') {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const idle = server.rss();
    // Every thread busy with a session that has just done a LIST and a STAT.
    const held = await Promise.all(Array.from({ length: args.threads }, () => connectAndGreet(server.port)));
    for (const { socket } of held) socket.write('LIST\nPING\n');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const busy = server.rss();
    for (const { socket } of held) socket.destroy();
    const single = await startServerProcess('workers', { threads: 1 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const perThread = (idle - single.rss()) / (args.threads - 1);
    await single.stop();
    memory =
      `; RSS idle with ${args.threads} threads ${(idle / MiB).toFixed(1)} MiB, all busy ${(busy / MiB).toFixed(1)} MiB ` +
      `(+${((busy - idle) / args.threads / 1024).toFixed(0)} KiB per busy worker); one more pool thread costs ${(perThread / MiB).toFixed(1)} MiB`;
  }
  await server.stop();
  process.stdout.write(
    `${target}: greeting latency over ${args.connections} sequential connections: p50 ${percentile(latencies, 50).toFixed(2)} ms, ` +
      `p95 ${percentile(latencies, 95).toFixed(2)} ms, max ${(latencies.at(-1) ?? 0).toFixed(2)} ms${memory}\n`,
  );
}
