/**
 * The live fuzzer, bounded for `npm test` (`npm run fuzz` runs 100,000 cases
 * per model): hostile byte streams against a server process of each model,
 * which must answer each as PROTOCOL.md allows, then still answer PING, have
 * no failed session in its log, leave no temporary file and nothing outside
 * its root, and exit 0 on SIGTERM.
 */
import fs from 'node:fs';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { fuzz } from './fuzz-runner.js';
import { checkAfterFuzzing, startFuzzTarget } from './fuzz-target.js';
import { makeTempRoot } from '../helpers/server.js';

const CASES = Number(process.env.SOCKLAB_FUZZ_CASES ?? 1000);
const seed = Number(process.env.SOCKLAB_FUZZ_SEED ?? Date.now() % 1_000_000);

t.jobs = SERVER_MODELS.length;
t.comment(`seed ${seed} (replay with SOCKLAB_FUZZ_SEED=${seed})`);

for (const model of SERVER_MODELS) {
  t.test(`${model}: ${CASES} hostile inputs over real sockets, then PING`, async (t) => {
    const outer = makeTempRoot(`socklab-fuzz-${model}-`);
    t.teardown(() => fs.rmSync(outer, { recursive: true, force: true }));
    const target = await startFuzzTarget(model, outer);
    t.teardown(() => target.server.crash());
    const report = await fuzz({ port: target.server.port, cases: CASES, seconds: 60, connections: model === 'sequential' ? 1 : 4, seed });
    t.same(report.failures, [], 'every case answered only as PROTOCOL.md allows, within its time');
    t.equal(report.cases, CASES, `all ${CASES} cases ran within the time limit`);
    t.same(await checkAfterFuzzing(target), [], 'still answers PING; no failed session; no temporary file; nothing outside the root; exit 0 on SIGTERM');
    t.comment(`${model}: ${report.cases} cases, ${report.connections} connections, ${report.closedByServer} closed by the server after a closing reply, ${report.seconds.toFixed(1)} s`);
  });
}
