/**
 * `npm run fuzz -- [--cases N] [--seconds S] [--models a,b] [--seed S] [--hold-crowd N] [--large-file BYTES] [--large-appends N]`
 *
 * At least 100,000 hostile inputs (by default) against a live server process
 * of each model (see fuzz-runner.ts), bounded in time per model, with a crowd
 * beside them on the same server for as long (fuzz-crowd.ts): waves of
 * clients that never read, trickle uploads, or queue and leave, each wave
 * followed by a fresh client that must be served within the model's bound,
 * and appenders to a large file, some leaving mid-append. Afterwards a fresh
 * client must be served at once, the server must have logged no session
 * failure, must have left no temporary file and nothing outside its root,
 * must stop cleanly on SIGTERM, and the large file must be its start then
 * whole records only. Exits 1 on any failure.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { checkAfterFuzzing, CROWD_APPENDERS, startFuzzTarget } from './fuzz-target.js';
import { CASE_TIMEOUT_MS, fuzz } from './fuzz-runner.js';
import { crowdWaitMs, describeCrowd, startCrowd } from './fuzz-crowd.js';
import { makeTempRoot } from '../helpers/server.js';

const args = await yargs(hideBin(process.argv))
  .scriptName('fuzz')
  .option('cases', { type: 'number', default: 100_000, describe: 'hostile inputs per model' })
  .option('seconds', { type: 'number', default: 600, describe: 'time limit per model' })
  .option('models', { type: 'string', default: SERVER_MODELS.join(','), describe: 'comma-separated models' })
  .option('seed', { type: 'number', default: Date.now() % 1_000_000, describe: 'fast-check seed (printed, to replay a run)' })
  .option('hold-crowd', { type: 'number', default: 2, describe: 'crowd alongside: most clients of each hostile kind per wave (0: no waves)' })
  .option('large-file', { type: 'number', default: 64 * 1024 * 1024, describe: 'crowd alongside: bytes of the large file appended to' })
  .option('large-appends', { type: 'number', default: 2000, describe: `crowd alongside: most appends to the large file per model (${CROWD_APPENDERS} appenders; 0: none)` })
  .strict()
  .parseAsync();

const models = args.models.split(',').filter((m): m is ServerModelName => (SERVER_MODELS as readonly string[]).includes(m));
const base = makeTempRoot('socklab-fuzz-');
process.stdout.write(
  `fuzz: up to ${args.cases} cases or ${args.seconds} s per model for ${models.join(', ')}, seed ${args.seed}; alongside, waves of up to ${args['hold-crowd']} clients of each hostile kind and up to ${args['large-appends']} appends to a ${(args['large-file'] / 1024 / 1024).toFixed(0)} MiB file\n`,
);
let failed = false;
process.on('exit', () => fs.rmSync(base, { recursive: true, force: true }));
for (const model of models) {
  const outer = path.join(base, model);
  const connections = model === 'sequential' ? 1 : 8;
  const target = await startFuzzTarget(model, outer, { connections, largeFileBytes: args['large-file'], maxAppends: args['large-appends'] });
  const crowd = startCrowd({
    server: target.server,
    seed: args.seed,
    maxPerKind: args['hold-crowd'],
    restBetweenWaves: model === 'sequential',
    limits: target.limits,
    appenders: args['large-appends'] > 0 ? CROWD_APPENDERS : 0,
    appendsPerSession: 5,
    maxAppends: args['large-appends'],
    ledger: target.ledger,
    maxFileSize: target.maxFileSize,
  });
  const caseTimeoutMs = CASE_TIMEOUT_MS + crowdWaitMs(model, target.limits, args['hold-crowd']);
  const report = await fuzz({ port: target.server.port, cases: args.cases, seconds: args.seconds, connections, seed: args.seed, caseTimeoutMs });
  const crowdReport = await crowd.stop();
  const after = await checkAfterFuzzing(target);
  const problems = [...report.failures, ...crowdReport.failures, ...after.problems];
  failed ||= problems.length > 0;
  for (const problem of problems) process.stdout.write(`  FAIL ${model}: ${problem}\n`);
  process.stdout.write(
    `${model}: ${report.cases} cases (${(report.bytesSent / 1e6).toFixed(1)} MB of hostile input, ${report.toppedUp} quiet 150s topped up with LFs) in ${report.seconds.toFixed(1)} s over ${report.connections} connections, ` +
      `${report.closedByServer} closed by the server after a closing reply; ${describeCrowd(crowdReport)}; ` +
      `${problems.length} failures; a fresh client afterwards: ${after.freshMs === null ? 'not served' : `served in ${(after.freshMs / 1000).toFixed(2)} s`}\n`,
  );
  fs.rmSync(outer, { recursive: true, force: true });
}
process.stdout.write(failed ? 'fuzz: FAILED\n' : 'fuzz: no failures\n');
process.exit(failed ? 1 : 0);
