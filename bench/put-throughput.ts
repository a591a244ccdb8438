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
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { parseByteSize } from '../bin/cli-support.js';
import { describeNativeCopy, median, nativeCopy, nativeCopyTool, UploadData, uploadTo, type NativeCopyTool, type UploadTiming } from './targets/native-copy.js';
import { startServerProcess, type BenchTarget } from './targets/server-process.js';

const args = await yargs(hideBin(process.argv))
  .option('size', { type: 'string', default: '256MiB' })
  .option('rounds', { type: 'number', default: 3 })
  .option('targets', { type: 'string', default: 'native,copy-sink,async,workers,sequential' })
  .option('threads', { type: 'number', default: 2, describe: 'workers pool size' })
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
    return await uploadTo(server, data);
  } finally {
    await server.stop();
  }
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
const against = (target: Target, baseline: Target): string => {
  const mine = results.get(target);
  const theirs = results.get(baseline);
  if (mine === undefined || theirs === undefined) return '—';
  return median(mine.map((r, i) => rate(r) / rate(theirs[i] ?? r))).toFixed(2);
};
const nativeName = tool === null ? null : describeNativeCopy(tool);
process.stdout.write(`\nOne upload of ${args.size}, median of ${args.rounds} rounds${nativeName === null ? '' : `; native copy: ${nativeName}`}\n`);
process.stdout.write('| target | MiB/s | × native copy | × copy-sink | RSS before → max |\n|---|---:|---:|---:|---:|\n');
for (const [target, list] of results) {
  const rss = target === 'native' ? '—' : `${(median(list.map((r) => r.rssBefore)) / MiB).toFixed(0)} → ${(median(list.map((r) => r.rssMax)) / MiB).toFixed(0)} MiB`;
  process.stdout.write(
    `| ${target} | ${median(list.map(rate)).toFixed(0)} | ${results.has('native') ? against(target, 'native') : '—'} | ${results.has('copy-sink') ? against(target, 'copy-sink') : '—'} | ${rss} |\n`,
  );
}
