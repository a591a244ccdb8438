/**
 * `npm run fuzz -- [--cases N] [--seconds S] [--models a,b] [--seed S]`
 *
 * At least 100,000 hostile inputs (by default) against a live server process
 * of each model (see fuzz-runner.ts), bounded in time per model. Afterwards
 * each server must still answer PING, must have logged no session failure,
 * must have left no temporary file and nothing outside its root, and must
 * stop cleanly on SIGTERM. Exits 1 on any failure.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { checkAfterFuzzing, startFuzzTarget } from './fuzz-target.js';
import { fuzz } from './fuzz-runner.js';
import { makeTempRoot } from '../helpers/server.js';

const args = await yargs(hideBin(process.argv))
  .scriptName('fuzz')
  .option('cases', { type: 'number', default: 100_000, describe: 'hostile inputs per model' })
  .option('seconds', { type: 'number', default: 600, describe: 'time limit per model' })
  .option('models', { type: 'string', default: SERVER_MODELS.join(','), describe: 'comma-separated models' })
  .option('seed', { type: 'number', default: Date.now() % 1_000_000, describe: 'fast-check seed (printed, to replay a run)' })
  .strict()
  .parseAsync();

const models = args.models.split(',').filter((m): m is ServerModelName => (SERVER_MODELS as readonly string[]).includes(m));
const base = makeTempRoot('socklab-fuzz-');
process.stdout.write(`fuzz: up to ${args.cases} cases or ${args.seconds} s per model for ${models.join(', ')}, seed ${args.seed}\n`);
let failed = false;
process.on('exit', () => fs.rmSync(base, { recursive: true, force: true }));
for (const model of models) {
  const target = await startFuzzTarget(model, path.join(base, model));
  const report = await fuzz({ port: target.server.port, cases: args.cases, seconds: args.seconds, connections: model === 'sequential' ? 1 : 8, seed: args.seed });
  const problems = [...report.failures, ...(await checkAfterFuzzing(target))];
  failed ||= problems.length > 0;
  for (const problem of problems) process.stdout.write(`  FAIL ${model}: ${problem}\n`);
  process.stdout.write(
    `${model}: ${report.cases} cases (${(report.bytesSent / 1e6).toFixed(1)} MB of hostile input) in ${report.seconds.toFixed(1)} s over ${report.connections} connections, ` +
      `${report.closedByServer} closed by the server after a closing reply, ${problems.length} failures; PING afterwards: ${problems.some((p) => p.startsWith('PING') || p.startsWith('cannot connect')) ? 'no' : 'yes'}\n`,
  );
}
process.stdout.write(failed ? 'fuzz: FAILED\n' : 'fuzz: no failures\n');
process.exit(failed ? 1 : 0);
