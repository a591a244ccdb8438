/**
 * One large PUT per server model, against a raw loopback copy of the same
 * bytes into a file plus fsync (the ceiling), with the server's RSS sampled
 * every 50 ms during the upload: it must stay flat (bytes are streamed to disk,
 * never held whole).
 *   node dist/bench/put-throughput.js [--size 256MiB] [--targets copy-sink,async,workers,sequential]
 */
import net from 'node:net';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { parseByteSize } from '../bin/cli-support.js';
import { startServerProcess, type BenchTarget, type ServerProcess } from './targets/server-process.js';

const args = await yargs(hideBin(process.argv))
  .option('size', { type: 'string', default: '256MiB' })
  .option('rounds', { type: 'number', default: 2 })
  .option('targets', { type: 'string', default: 'copy-sink,async,workers,sequential' })
  .strict()
  .parseAsync();

const size = parseByteSize(args.size, '--size');
const MiB = 1024 * 1024;
const block = Buffer.alloc(MiB);
for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;

interface UploadResult {
  readonly seconds: number;
  readonly rssBefore: number;
  readonly rssMax: number;
}

/** Sends the header line, waits for `wantReady` (if any), streams size bytes, waits for the final reply. */
async function upload(server: ServerProcess, header: string, wantReady: RegExp | null, done: RegExp): Promise<UploadResult> {
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  let text = '';
  let waiter: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    waiter?.();
  });
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (pattern.test(text) ? resolve() : /^[45]\d\d /m.test(text) ? reject(new Error(text)) : undefined);
      waiter = check;
      check();
    });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  if (server.target !== 'copy-sink') await until(/^220 /m);
  const rssBefore = server.rss();
  let rssMax = rssBefore;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, server.rss())), 50);
  const started = performance.now();
  socket.write(header);
  if (wantReady !== null) await until(wantReady);
  for (let sent = 0; sent < size; sent += MiB) {
    const part = size - sent >= MiB ? block : block.subarray(0, size - sent);
    if (!socket.write(part)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  await until(done);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  rssMax = Math.max(rssMax, server.rss());
  socket.destroy();
  return { seconds, rssBefore, rssMax };
}

const results = new Map<BenchTarget, UploadResult[]>();
for (let round = 1; round <= args.rounds; round++) {
  for (const target of args.targets.split(',') as BenchTarget[]) {
    const server = await startServerProcess(target, { maxFileSize: '4GiB', threads: 2 });
    const result =
      target === 'copy-sink'
        ? await upload(server, `${size}\n`, null, /^226/m)
        : await upload(server, `PUT big.bin ${size} mode=overwrite\n`, /^150 /m, /^226 /m);
    await server.stop();
    results.set(target, [...(results.get(target) ?? []), result]);
    process.stderr.write(`round ${round} ${target}: ${(size / MiB / result.seconds).toFixed(0)} MiB/s, RSS ${(result.rssBefore / MiB).toFixed(0)} → max ${(result.rssMax / MiB).toFixed(0)} MiB\n`);
  }
}

const best = (list: UploadResult[]) => list.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
const ceiling = best(results.get('copy-sink') ?? []);
process.stdout.write(`\nOne PUT of ${args.size}, best of ${args.rounds}\n| server | MiB/s | × raw copy | RSS before | RSS max |\n|---|---:|---:|---:|---:|\n`);
for (const [target, list] of results) {
  const r = best(list);
  process.stdout.write(
    `| ${target} | ${(size / MiB / r.seconds).toFixed(0)} | ${(ceiling.seconds / r.seconds).toFixed(2)} | ${(r.rssBefore / MiB).toFixed(0)} MiB | ${(r.rssMax / MiB).toFixed(0)} MiB |\n`,
  );
}
