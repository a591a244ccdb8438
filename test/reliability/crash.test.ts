/**
 * Crashes, bounded for `npm test` (the long campaign is `npm run torture`):
 * per model, a few clients SIGKILLed mid-upload at random byte offsets and a
 * few servers SIGKILLed mid-upload or mid-commit and restarted on the same
 * root. What each trial checks is in crash.ts; here every trial must pass.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { CrashCampaign, summarize, type TrialReport } from './crash.js';
import { makeTempRoot } from '../helpers/server.js';

/** Per model: this many server kills and as many client kills (about 1 s each). */
const TRIALS_PER_KIND = 3;
const seed = Number(process.env.SOCKLAB_CRASH_SEED ?? Date.now() % 1_000_000);

t.jobs = SERVER_MODELS.length;
t.comment(`seed ${seed} (replay with SOCKLAB_CRASH_SEED=${seed})`);

for (const [index, model] of SERVER_MODELS.entries()) {
  t.test(`${model}: SIGKILL the client mid-upload, and the server mid-upload and mid-commit`, async (t) => {
    const base = makeTempRoot(`socklab-crash-${model}-`);
    t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
    const campaign = new CrashCampaign({ model, root: path.join(base, 'root'), seed: seed + index, maxUploadBytes: 256 * 1024 });
    await campaign.start();
    t.teardown(() => campaign.stop());
    const reports: TrialReport[] = [];
    for (let i = 0; i < TRIALS_PER_KIND; i++) {
      for (const report of [await campaign.clientKillTrial(), await campaign.serverKillTrial()]) {
        reports.push(report);
        t.same(report.failures, [], `trial ${report.trial}: ${report.what}`);
      }
    }
    const serverKills = reports.filter((r) => r.kind === 'server-kill');
    t.ok(
      serverKills.some((r) => r.acknowledged > 0),
      'uploads were acknowledged before the kills, so the acknowledged-writes check had something to check',
    );
    t.comment(`${model}: ${summarize(reports)}`);
  });
}
