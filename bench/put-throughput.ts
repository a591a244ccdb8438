/**
 * One large upload per target, against what the machine itself can do:
 *   node dist/bench/put-throughput.js [--size 256MiB] [--rounds 3] [--targets native,copy-sink,async,workers,sequential]
 *
 * - `native`: a native program copies the same bytes from loopback into a
 *   file (socat with 256 KiB buffers, or nc if socat is missing), then the
 *   file is fsynced: the machine's own figure, with no Node in it. Skipped,
 *   saying so, when neither tool is installed.
 * - `copy-sink`: the barest Node server that does the same (bench/targets/copy-sink.ts),
 *   the ceiling the bench's upload scenarios compare with.
 * - the socklab servers: a `PUT` with its sha256, which the server computes
 *   and checks, then an atomic, durable commit (fsync, rename, fsync of the directory).
 *
 * Every target gets the same sender (this process, 1 MiB writes). Rounds
 * alternate the targets, so that drift in the machine's speed hits all alike;
 * the table gives the median of the rounds, and each ratio is the median of
 * the rounds' own ratios. The server's RSS is sampled every 50 ms: it must stay
 * flat (bytes are streamed to disk, never held whole).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { parseByteSize } from '../bin/cli-support.js';
import { startServerProcess, type BenchTarget, type ServerProcess } from './targets/server-process.js';

const args = await yargs(hideBin(process.argv))
  .option('size', { type: 'string', default: '256MiB' })
  .option('rounds', { type: 'number', default: 3 })
  .option('targets', { type: 'string', default: 'native,copy-sink,async,workers,sequential' })
  .option('threads', { type: 'number', default: 2, describe: 'workers pool size' })
  .strict()
  .parseAsync();

type Target = BenchTarget | 'native';

const size = parseByteSize(args.size, '--size');
const MiB = 1024 * 1024;
const block = Buffer.alloc(MiB);
for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
const sha256 = (() => {
  const hash = createHash('sha256');
  for (let sent = 0; sent < size; sent += MiB) hash.update(size - sent >= MiB ? block : block.subarray(0, size - sent));
  return hash.digest('hex');
})();

interface UploadResult {
  readonly seconds: number;
  readonly rssBefore: number;
  readonly rssMax: number;
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

async function sendData(socket: net.Socket): Promise<void> {
  for (let sent = 0; sent < size; sent += MiB) {
    const part = size - sent >= MiB ? block : block.subarray(0, size - sent);
    if (!socket.write(part)) await new Promise((resolve) => socket.once('drain', resolve));
  }
}

/** Sends the header line, waits for `wantReady` (if any), streams size bytes, waits for the final reply. */
async function upload(server: ServerProcess, header: string, wantReady: RegExp | null, done: RegExp): Promise<UploadResult> {
  const socket = await connect(server.port);
  let text = '';
  let waiter: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    waiter?.();
  });
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (pattern.test(text) ? resolve() : /^[45]\d\d /m.test(text) ? reject(new Error(`${server.target}: ${text.trim()}`)) : undefined);
      waiter = check;
      check();
    });
  if (server.target !== 'copy-sink') await until(/^220 /m);
  const rssBefore = server.rss();
  let rssMax = rssBefore;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, server.rss())), 50);
  const started = performance.now();
  socket.write(header);
  if (wantReady !== null) await until(wantReady);
  await sendData(socket);
  await until(done);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  rssMax = Math.max(rssMax, server.rss());
  socket.destroy();
  return { seconds, rssBefore, rssMax };
}

/** The native copy this machine has: socat (preferred: 256 KiB buffers), else nc, else none. */
function nativeTool(): 'socat' | 'nc' | null {
  for (const tool of ['socat', 'nc'] as const) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0) return tool;
  }
  return null;
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Loopback → file by a native program, then fsync of the file: the time from the first byte sent to the fsync's end. */
async function nativeCopy(tool: 'socat' | 'nc'): Promise<UploadResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-native-copy-'));
  const file = path.join(dir, 'copy.bin');
  try {
    const port = await freePort();
    const child =
      tool === 'socat'
        ? spawn('socat', ['-u', '-b', '262144', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, `OPEN:${file},creat,trunc`], { stdio: 'ignore' })
        : spawn('sh', ['-c', `exec nc -l 127.0.0.1 ${port} > "$0"`, file], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let socket: net.Socket | null = null;
    for (let attempt = 0; socket === null; attempt++) {
      try {
        socket = await connect(port);
      } catch (error) {
        if (attempt > 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const started = performance.now();
    await sendData(socket);
    socket.end();
    await exited;
    const fd = fs.openSync(file, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const seconds = (performance.now() - started) / 1000;
    const copied = fs.statSync(file).size;
    if (copied !== size) throw new Error(`the native copy (${tool}) wrote ${copied} bytes of ${size}`);
    return { seconds, rssBefore: 0, rssMax: 0 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(target: Target, tool: 'socat' | 'nc' | null): Promise<UploadResult> {
  if (target === 'native') return nativeCopy(tool ?? 'socat');
  const server = await startServerProcess(target, { maxFileSize: '4GiB', threads: args.threads });
  try {
    return target === 'copy-sink'
      ? await upload(server, `${size}\n`, null, /^226/m)
      : await upload(server, `PUT big.bin ${size} mode=overwrite sha256=${sha256}\n`, /^150 /m, /^226 /m);
  } finally {
    await server.stop();
  }
}

const tool = nativeTool();
let targets = args.targets.split(',') as Target[];
if (targets.includes('native') && tool === null) {
  process.stderr.write('no native copy tool here (neither socat nor nc): the table compares with the Node copy-sink only (Debian: apt-get install socat)\n');
  targets = targets.filter((target) => target !== 'native');
}

const results = new Map<Target, UploadResult[]>(targets.map((target) => [target, []]));
for (let round = 1; round <= args.rounds; round++) {
  for (const target of targets) {
    const result = await measure(target, tool);
    results.get(target)?.push(result);
    const rss = target === 'native' ? '' : `, RSS ${(result.rssBefore / MiB).toFixed(0)} → max ${(result.rssMax / MiB).toFixed(0)} MiB`;
    process.stderr.write(`round ${round} ${target}: ${(size / MiB / result.seconds).toFixed(0)} MiB/s${rss}\n`);
  }
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const rate = (r: UploadResult) => size / MiB / r.seconds;
const against = (target: Target, baseline: Target): string => {
  const mine = results.get(target);
  const theirs = results.get(baseline);
  if (mine === undefined || theirs === undefined) return '—';
  return median(mine.map((r, i) => rate(r) / rate(theirs[i] ?? r))).toFixed(2);
};
const nativeName = tool === null ? null : tool === 'socat' ? 'socat -u -b 262144, then fsync' : 'nc, then fsync';
process.stdout.write(`\nOne upload of ${args.size}, median of ${args.rounds} rounds${nativeName === null ? '' : `; native copy: ${nativeName}`}\n`);
process.stdout.write('| target | MiB/s | × native copy | × copy-sink | RSS before → max |\n|---|---:|---:|---:|---:|\n');
for (const [target, list] of results) {
  const rss = target === 'native' ? '—' : `${(median(list.map((r) => r.rssBefore)) / MiB).toFixed(0)} → ${(median(list.map((r) => r.rssMax)) / MiB).toFixed(0)} MiB`;
  process.stdout.write(
    `| ${target} | ${median(list.map(rate)).toFixed(0)} | ${results.has('native') ? against(target, 'native') : '—'} | ${results.has('copy-sink') ? against(target, 'copy-sink') : '—'} | ${rss} |\n`,
  );
}
