/**
 * The live fuzzer, bounded for `npm test` (`npm run fuzz` runs 100,000 cases
 * per model, with a larger crowd): hostile byte streams against a server
 * process of each model, which must answer each as PROTOCOL.md allows, while
 * a small crowd beside them (fuzz-crowd.ts) holds on (never reads; queues and
 * leaves; trickling uploads take the 10 s grace of the minimum rate, so they
 * are left to `npm run fuzz` and slowloris.test.ts) and appends to a large
 * file, some leaving mid-append. Then a fresh client must be served at once,
 * the log must have no failed session, no temporary file and nothing outside
 * the root may be left, SIGTERM must exit 0, and the large file must be its
 * start then whole records only.
 */
import fs from 'node:fs';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { CASE_TIMEOUT_MS, fuzz } from './fuzz-runner.js';
import { crowdWaitMs, describeCrowd, startCrowd } from './fuzz-crowd.js';
import { checkAfterFuzzing, CROWD_APPENDERS, startFuzzTarget } from './fuzz-target.js';
import type { HostileKind } from './hostile-clients.js';
import { makeTempRoot } from '../helpers/server.js';

const CASES = Number(process.env.SOCKLAB_FUZZ_CASES ?? 1000);
const seed = Number(process.env.SOCKLAB_FUZZ_SEED ?? Date.now() % 1_000_000);
const CROWD_KINDS: readonly HostileKind[] = ['never-reads-get', 'never-reads-echo', 'queues-and-leaves'];
const MAX_APPENDS = 20;

t.jobs = SERVER_MODELS.length;
t.comment(`seed ${seed} (replay with SOCKLAB_FUZZ_SEED=${seed})`);

for (const model of SERVER_MODELS) {
  t.test(`${model}: ${CASES} hostile inputs over real sockets beside clients that hold on and append, then a fresh client`, async (t) => {
    const outer = makeTempRoot(`socklab-fuzz-${model}-`);
    t.teardown(() => fs.rmSync(outer, { recursive: true, force: true }));
    const connections = model === 'sequential' ? 1 : 4;
    const target = await startFuzzTarget(model, outer, { connections, largeFileBytes: 4 * 1024 * 1024, maxAppends: MAX_APPENDS });
    t.teardown(() => target.server.crash());
    const crowd = startCrowd({
      server: target.server,
      seed,
      maxPerKind: 1,
      restBetweenWaves: model === 'sequential',
      kinds: CROWD_KINDS,
      limits: target.limits,
      appenders: CROWD_APPENDERS,
      appendsPerSession: 5,
      maxAppends: MAX_APPENDS,
      ledger: target.ledger,
      maxFileSize: target.maxFileSize,
    });
    const caseTimeoutMs = CASE_TIMEOUT_MS + crowdWaitMs(model, target.limits, 1, CROWD_KINDS);
    const report = await fuzz({ port: target.server.port, cases: CASES, seconds: 60, connections, seed, caseTimeoutMs });
    const crowdReport = await crowd.stop();
    t.same(report.failures, [], 'every case answered only as PROTOCOL.md allows, within its time');
    t.equal(report.cases, CASES, `all ${CASES} cases ran within the time limit`);
    t.same(crowdReport.failures, [], 'each wave: a fresh client served within its bound, each hostile connection ended for its reason; each append acknowledged; an append past the limit got 552');
    t.ok(crowdReport.waves >= 1 && crowdReport.appends >= 1, 'the crowd ran beside the fuzzer: at least one wave and one append');
    const after = await checkAfterFuzzing(target);
    t.same(after.problems, [], 'a fresh client served; no failed session; no temporary file; nothing outside the root; exit 0 on SIGTERM; the large file is its start and whole records');
    t.comment(`${model}: ${report.cases} cases, ${report.connections} connections, ${report.closedByServer} closed by the server after a closing reply, ${report.seconds.toFixed(1)} s; ${describeCrowd(crowdReport)}`);
  });
}
