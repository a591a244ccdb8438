/**
 * PING requests per second over N connections, for each server model and
 * for the bare Node line server (the ceiling), measured in the same run.
 *   node dist/bench/ping-rate.js [--connections 10] [--seconds 5] [--warm-up 3] [--rounds 3]
 *
 * Each round starts every server afresh, so each is loaded for --warm-up
 * seconds before the counting starts. The warm-up must be long enough for the
 * slowest to warm: the workers server's threads are separate V8 isolates that
 * each compile the session code for themselves from their own share of the
 * requests, so with 10 threads its rate still climbs for about 2 s (measured:
 * 2.5 s windows from a cold start went 10.7k, 14.3k, 13.4k, 17.5k req/s),
 * while the async server's one isolate is warm within 0.5 s.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { pingLoad } from './load/ping-load.js';
import { startServerProcess, type BenchTarget } from './targets/server-process.js';

const args = await yargs(hideBin(process.argv))
  .option('connections', { type: 'number', default: 10 })
  .option('seconds', { type: 'number', default: 5, describe: 'how long each measurement counts' })
  .option('warm-up', { type: 'number', default: 3, describe: 'seconds of the same load before the counting starts' })
  .option('rounds', { type: 'number', default: 3 })
  .option('threads', { type: 'number', default: 10, describe: 'workers pool size' })
  .option('targets', { type: 'string', default: 'line-server,async,workers,sequential' })
  .strict()
  .parseAsync();

const targets = args.targets.split(',') as BenchTarget[];
const rates = new Map<BenchTarget, number[]>();
// Rounds interleave the targets so that drift in the machine's speed hits all alike.
for (let round = 1; round <= args.rounds; round++) {
  for (const target of targets) {
    const server = await startServerProcess(target, { threads: args.threads });
    const result = await pingLoad(server.port, args.connections, args.seconds * 1000, args.warmUp * 1000);
    await server.stop();
    rates.set(target, [...(rates.get(target) ?? []), result.perSecond]);
    process.stderr.write(`round ${round} ${target}: ${Math.round(result.perSecond)} req/s (${result.greeted} of ${args.connections} connections greeted)\n`);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const ceiling = median(rates.get('line-server') ?? [0]);
process.stdout.write(`\nPING over ${args.connections} connections, median of ${args.rounds} rounds of ${args.seconds} s\n`);
process.stdout.write(`| server | req/s | × line server |\n|---|---:|---:|\n`);
for (const target of targets) {
  const rate = median(rates.get(target) ?? [0]);
  process.stdout.write(`| ${target} | ${Math.round(rate)} | ${ceiling > 0 ? (rate / ceiling).toFixed(2) : '-'} |\n`);
}
