/**
 * One large upload per target, against what the machine itself can do:
 *   node dist/bench/put-throughput.js [--size 256MiB] [--rounds 3] [--targets native,copy-sink,hash-sink,async,workers,sequential] [--no-warm-up]
 *
 * - `native`: a native program copies the same bytes from loopback into a
 *   file (socat with 256 KiB buffers, or nc if socat is missing), then the
 *   file is fsynced: the machine's own figure, with no Node in it. Skipped,
 *   saying so, when neither tool is installed.
 * - `copy-sink`: the barest Node server that does the same (bench/targets/copy-sink.ts),
 *   the ceiling the bench's upload scenarios compare with.
 * - `hash-sink`: the copy-sink that also computes the sha256 of the bytes as
 *   they arrive, on its one thread, and sends it back (checked here): the
 *   least a checking server must do, so the bound of the servers' ratios.
 * - the socklab servers: a `PUT` with its sha256, which the server computes
 *   and checks, then an atomic, durable commit (fsync, rename, fsync of the directory).
 *
 * A socklab server (on more than two cores) starts a hasher thread at its
 * first large upload and hashes that one inline meanwhile
 * (servers/storage/upload-digest.ts), and each round starts a fresh server:
 * so each gets warm-up uploads first, one per thread that receives uploads,
 * and its hashers time to start. What is measured is a server that has
 * served a large upload before.
 *
 * Every target gets the same sender (this process, 1 MiB writes). Rounds
 * alternate the targets, so that drift in the machine's speed hits all alike;
 * the table gives the median of the rounds, and each ratio is the median of
 * the rounds' own ratios. The server's RSS is sampled every 50 ms: it must stay
 * flat (bytes are streamed to disk, never held whole).
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { parseByteSize } from '../bin/cli-support.js';
import { describeNativeCopy, median, nativeCopy, nativeCopyTool, UploadData, uploadTo, type NativeCopyTool, type UploadTiming } from './targets/native-copy.js';
import { isByteSink, startServerProcess, type BenchTarget, type ServerProcess } from './targets/server-process.js';
import { OFF_THREAD_MIN_BYTES, STARTS_HASHERS } from '../servers/storage/upload-digest.js';

const args = await yargs(hideBin(process.argv))
  .option('size', { type: 'string', default: '256MiB' })
  .option('rounds', { type: 'number', default: 3 })
  .option('targets', { type: 'string', default: 'native,copy-sink,hash-sink,async,workers,sequential' })
  .option('threads', { type: 'number', default: 2, describe: 'workers pool size' })
  .option('warm-up', {
    type: 'boolean',
    default: true,
    describe: 'start each server with an 8 MiB upload per receiving thread, which starts its hashers (--no-warm-up: measure its first large upload, hashed inline)',
  })
  .strict()
  .parseAsync();

type Target = BenchTarget | 'native';

const MiB = 1024 * 1024;
const data = new UploadData(parseByteSize(args.size, '--size'));
const size = data.size;

async function measure(target: Target, tool: NativeCopyTool | null): Promise<UploadTiming> {
  if (target === 'native') return nativeCopy(tool ?? 'socat', data);
  const server = await startServerProcess(target, { maxFileSize: '4GiB', threads: args.threads });
  try {
    if (args.warmUp && !isByteSink(target)) await warmUp(server, target === 'workers' ? args.threads : 1);
    return await uploadTo(server, data);
  } finally {
    await server.stop();
  }
}

/** A hasher thread starts in tens of ms, more on a busy machine: this leaves it ten times that. */
const HASHER_START_MS = 500;
const warmUpData = new UploadData(OFF_THREAD_MIN_BYTES);

/** One upload at once per receiving thread (a workers pool serves each connection on a thread of its own), then time for the hashers to start, if the servers start any here. */
async function warmUp(server: ServerProcess, receivingThreads: number): Promise<void> {
  await Promise.all(Array.from({ length: receivingThreads }, () => uploadTo(server, warmUpData)));
  if (STARTS_HASHERS) await delay(HASHER_START_MS);
}

const tool = nativeCopyTool();
let targets = args.targets.split(',') as Target[];
if (targets.includes('native') && tool === null) {
  process.stderr.write('no native copy tool here (neither socat nor nc): the table compares with the Node copy-sink only (Debian: apt-get install socat)\n');
  targets = targets.filter((target) => target !== 'native');
}

const results = new Map<Target, UploadTiming[]>(targets.map((target) => [target, []]));
for (let round = 1; round <= args.rounds; round++) {
  for (const target of targets) {
    const result = await measure(target, tool);
    results.get(target)?.push(result);
    const rss = target === 'native' ? '' : `, RSS ${(result.rssBefore / MiB).toFixed(0)} → max ${(result.rssMax / MiB).toFixed(0)} MiB`;
    process.stderr.write(`round ${round} ${target}: ${(size / MiB / result.seconds).toFixed(0)} MiB/s${rss}\n`);
  }
}

const rate = (r: UploadTiming) => size / MiB / r.seconds;
/** Median of per-round ratios; '—' when the baseline was not measured. */
const against = (target: Target, baseline: Target): string => {
  const mine = results.get(target);
  const theirs = results.get(baseline);
  if (mine === undefined || theirs === undefined) return '—';
  return median(mine.map((r, i) => rate(r) / rate(theirs[i] ?? r))).toFixed(2);
};
const nativeName = tool === null ? null : describeNativeCopy(tool);
process.stdout.write(`\nOne upload of ${args.size}, median of ${args.rounds} rounds${nativeName === null ? '' : `; native copy: ${nativeName}`}\n`);
process.stdout.write(
  '| target | MiB/s | × native copy | × copy-sink | × hash-sink | server CPU s per GiB | cores busy | RSS before → max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n',
);
const GiB = 1024 * MiB;
for (const [target, list] of results) {
  const rss = target === 'native' ? '—' : `${(median(list.map((r) => r.rssBefore)) / MiB).toFixed(0)} → ${(median(list.map((r) => r.rssMax)) / MiB).toFixed(0)} MiB`;
  const cpu = list.flatMap((r) => (r.serverCpuSeconds === null ? [] : [r.serverCpuSeconds / (size / GiB)]));
  const busy = list.flatMap((r) => (r.machineBusy === null ? [] : [r.machineBusy]));
  process.stdout.write(
    `| ${target} | ${median(list.map(rate)).toFixed(0)} | ${against(target, 'native')} | ${against(target, 'copy-sink')} | ${against(target, 'hash-sink')} | ` +
      `${cpu.length === 0 ? '—' : median(cpu).toFixed(2)} | ${busy.length === 0 ? '—' : `${(median(busy) * 100).toFixed(0)}%`} | ${rss} |\n`,
  );
}
process.stdout.write(
  '\n× columns: the median of the rounds\' ratios (each round runs every target once, in turn), so they can differ from the ratio of the MiB/s medians. ' +
    `server CPU: all the server's threads together (${hashingNote()}); ` +
    'cores busy: the whole machine during the upload, this sender included. When the cores are nearly all busy, the upload was CPU-bound: ' +
    `the sha256 alone takes ${sha256CpuSecondsPerGiB().toFixed(2)} CPU s per GiB on this machine (measured now), on top of the copy.\n`,
);

/** Where the servers of this run computed the sha256 of the measured upload. */
function hashingNote(): string {
  if (!STARTS_HASHERS) return `the socklab servers hash inline: with ${os.availableParallelism()} cores they start no hasher thread, see servers/storage/upload-digest.ts`;
  const onThread = `the socklab servers hash an upload of ${OFF_THREAD_MIN_BYTES / MiB} MiB or more on a thread of their own`;
  return args.warmUp ? `${onThread}, started by a warm-up upload before the measured one` : `${onThread}, but this run measured each fresh server's first upload, hashed inline while that thread starts`;
}

/** CPU seconds Node's sha256 takes per GiB here: 64 MiB hashed, best of three. */
function sha256CpuSecondsPerGiB(): number {
  const block = Buffer.alloc(MiB, 1);
  let best = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = process.cpuUsage();
    const hash = createHash('sha256');
    for (let i = 0; i < 64; i++) hash.update(block);
    hash.digest();
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  return best * 16;
}
