/**
 * `npm run torture -- --trials N [--models sequential,workers,async] [--seed S] [--max-upload BYTES] [--keep]
 *   [--large-file BYTES] [--large-appends N] [--hold-trials N] [--hold-crowd N]`
 *
 * The long crash campaign (see crash.ts): per model, N trials, each a client
 * SIGKILLed mid-upload and then the server SIGKILLed mid-upload or mid-commit
 * and restarted on the same root, every file checked against the recorded
 * history after each restart. Then the attack of large-append-attack.ts: four
 * clients appending small records at once to a large file. Then the attack of
 * hold-on-attack.ts: crowds of clients that never read, trickle uploads, or
 * queue and leave, with a fresh client that must still be served. Prints
 * every failure, a summary per model, and exits 1 if any trial failed.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { CrashCampaign, summarize, type TrialReport } from './crash.js';
import { describeLargeAppends, largeAppendAttack } from './large-append-attack.js';
import { describeHoldOn, holdOnAttack } from './hold-on-attack.js';
import { makeTempRoot } from '../helpers/server.js';

const args = await yargs(hideBin(process.argv))
  .scriptName('torture')
  .option('trials', { type: 'number', default: 40, describe: 'trials per model (each: one client kill, one server kill and restart)' })
  .option('models', { type: 'string', default: SERVER_MODELS.join(','), describe: 'comma-separated models' })
  .option('seed', { type: 'number', default: Date.now() % 1_000_000, describe: 'PRNG seed (printed, to replay a run)' })
  .option('max-upload', { type: 'number', default: 1024 * 1024, describe: 'largest upload in bytes' })
  .option('keep', { type: 'boolean', default: false, describe: 'keep the storage roots (for a post-mortem)' })
  .option('large-file', { type: 'number', default: 256 * 1024 * 1024, describe: 'append attack: bytes of the large file appended to' })
  .option('large-appends', { type: 'number', default: 100, describe: 'append attack: appends per client (4 clients)' })
  .option('hold-trials', { type: 'number', default: 5, describe: 'hold-on attack: trials per model (each a crowd of hostile clients, then a fresh one)' })
  .option('hold-crowd', { type: 'number', default: 2, describe: 'hold-on attack: most clients of each hostile kind per trial' })
  .strict()
  .parseAsync();

const models = args.models.split(',').filter((m): m is ServerModelName => (SERVER_MODELS as readonly string[]).includes(m));
const base = makeTempRoot('socklab-torture-');
process.stdout.write(`torture: ${args.trials} trials per model for ${models.join(', ')}, seed ${args.seed}, roots under ${base}\n`);
let failed = 0;
if (!args.keep) process.on('exit', () => fs.rmSync(base, { recursive: true, force: true }));
for (const [index, model] of models.entries()) {
  const root = path.join(base, model);
  const campaign = new CrashCampaign({ model, root, seed: args.seed + index, maxUploadBytes: args['max-upload'] });
  const reports: TrialReport[] = [];
  const started = performance.now();
  await campaign.start();
  try {
    for (let i = 0; i < args.trials; i++) {
      for (const report of [await campaign.clientKillTrial(), await campaign.serverKillTrial()]) {
        reports.push(report);
        for (const failure of report.failures) process.stdout.write(`  FAIL ${model} trial ${report.trial} (${report.what}): ${failure}\n`);
      }
    }
  } finally {
    await campaign.stop();
  }
  const failures = reports.filter((r) => r.failures.length > 0).length;
  failed += failures;
  process.stdout.write(`${model}: ${summarize(reports)} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);

  const attack = { model, root: path.join(base, `${model}-large-appends`), fileBytes: args['large-file'], clients: 4, appendsPerClient: args['large-appends'] };
  const appended = await largeAppendAttack(attack);
  for (const failure of appended.failures) process.stdout.write(`  FAIL ${model} append to a large file: ${failure}\n`);
  if (appended.failures.length > 0) failed++;
  process.stdout.write(`${model}: ${describeLargeAppends(attack, appended)}\n`);
  fs.rmSync(attack.root, { recursive: true, force: true });

  const holdRoot = path.join(base, `${model}-hold-on`);
  const held = await holdOnAttack({ model, root: holdRoot, trials: args['hold-trials'], seed: args.seed + index, maxPerKind: args['hold-crowd'] });
  for (const failure of held.failures) process.stdout.write(`  FAIL ${model} hold-on: ${failure}\n`);
  failed += held.failures.length;
  process.stdout.write(`${model}: ${describeHoldOn(held)}\n`);
  fs.rmSync(holdRoot, { recursive: true, force: true });
}
process.stdout.write(failed === 0 ? 'torture: no failures\n' : `torture: ${failed} failed trials\n`);
process.exit(failed === 0 ? 0 : 1);
