/**
 * PING requests per second over N connections, for each server model and
 * for the bare programs they are measured against, in the same run:
 *   node dist/bench/ping-rate.js [--connections 10] [--seconds 5] [--warm-up 3] [--rounds 3]
 *
 * - `line-server`: the barest Node server (one read, one write per request);
 *   `async` and `sequential` are measured against it.
 * - `bare-relay`: the workers server's thread-per-connection relay with no
 *   session behind it (same rings, same pool); `workers` is measured against it.
 * - `python-threads`: the lecture's Python ThreadingTCPServer, whose threads
 *   own their sockets, which a Node worker cannot (skipped without python3).
 *
 * Rounds interleave the targets so that drift in the machine's speed hits all
 * alike; the table gives medians of the rounds, and each ratio's median over
 * the rounds' own ratios. Absolute rates swing ±30% between runs here; the
 * ratios within one run are the figures to compare. Server CPU per request
 * (from /proc) says where a gap comes from, whatever else the machine does.
 *
 * Each round starts every server afresh, so each is loaded for --warm-up
 * seconds before the counting starts: the workers server's threads are
 * separate V8 isolates that each compile the session code from their own
 * share of the requests, so its rate still climbs for about 2 s.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { spawnSync } from 'node:child_process';
import { pingLoad } from './load/ping-load.js';
import { startServerProcess, type BenchTarget } from './targets/server-process.js';

const args = await yargs(hideBin(process.argv))
  .option('connections', { type: 'number', default: 10 })
  .option('seconds', { type: 'number', default: 5, describe: 'how long each measurement counts' })
  .option('warm-up', { type: 'number', default: 3, describe: 'seconds of the same load before the counting starts' })
  .option('rounds', { type: 'number', default: 3 })
  .option('threads', { type: 'number', default: 10, describe: 'pool size of workers and bare-relay' })
  .option('targets', { type: 'string', default: 'line-server,async,bare-relay,workers,python-threads,sequential' })
  .strict()
  .parseAsync();

/** Which bare program each target is compared with. */
const BASELINE: Partial<Record<BenchTarget, BenchTarget>> = {
  async: 'line-server',
  sequential: 'line-server',
  workers: 'bare-relay',
  'bare-relay': 'line-server',
  'python-threads': 'line-server',
};

let targets = args.targets.split(',') as BenchTarget[];
if (targets.includes('python-threads') && spawnSync('python3', ['--version'], { stdio: 'ignore' }).status !== 0) {
  process.stderr.write('python3 is not installed: skipping the python-threads target (Debian: apt-get install python3)\n');
  targets = targets.filter((target) => target !== 'python-threads');
}

interface Round {
  readonly perSecond: number;
  readonly cpuMicrosPerRequest: number;
}
const rounds = new Map<BenchTarget, Round[]>(targets.map((target) => [target, []]));
for (let round = 1; round <= args.rounds; round++) {
  for (const target of targets) {
    const server = await startServerProcess(target, { threads: args.threads });
    const result = await pingLoad(server.port, args.connections, args.seconds * 1000, args.warmUp * 1000, '127.0.0.1', () => server.cpuSeconds());
    await server.stop();
    const cpuMicrosPerRequest = ((result.serverCpuSeconds ?? 0) * 1e6) / Math.max(1, result.requests);
    rounds.get(target)?.push({ perSecond: result.perSecond, cpuMicrosPerRequest });
    process.stderr.write(
      `round ${round} ${target}: ${Math.round(result.perSecond)} req/s, server CPU ${cpuMicrosPerRequest.toFixed(1)} µs/req ` +
        `(${result.greeted} of ${args.connections} connections greeted)\n`,
    );
  }
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const ratio = (target: BenchTarget, baseline: BenchTarget | undefined): string => {
  const mine = rounds.get(target);
  const theirs = baseline === undefined ? undefined : rounds.get(baseline);
  if (mine === undefined || theirs === undefined || theirs.length !== mine.length) return '—';
  const perRound = mine.map((r, i) => r.perSecond / (theirs[i]?.perSecond ?? Number.NaN));
  return `${median(perRound).toFixed(2)} × ${baseline} (rounds: ${perRound.map((r) => r.toFixed(2)).join(', ')})`;
};
process.stdout.write(`\nPING over ${args.connections} connections, median of ${args.rounds} rounds of ${args.seconds} s (threads: ${args.threads})\n`);
process.stdout.write(`| server | req/s | server CPU µs/req | against its baseline |\n|---|---:|---:|---|\n`);
for (const target of targets) {
  const list = rounds.get(target) ?? [];
  process.stdout.write(
    `| ${target} | ${Math.round(median(list.map((r) => r.perSecond)))} | ${median(list.map((r) => r.cpuMicrosPerRequest)).toFixed(1)} | ${ratio(target, BASELINE[target])} |\n`,
  );
}
process.stdout.write('(sequential serves one connection at a time: its rate is one connection\'s round trip, not a crowd\'s.)\n');
