/** Reading where the CPU went: /proc/stat's per-core counters, busy shares between two readings, a process's own CPU time. */
import os from 'node:os';
import t from 'tap';
import { cpuSecondsSince, machineBusy, parseProcStat, readCoreTicks } from '../../bench/load/cpu-time.js';

const PROC_STAT = `cpu  600 10 300 8000 100 0 20 0 0 0
cpu0 400 10 200 3000 50 0 10 0 40 0
cpu1 200 0 100 5000 50 0 10 0 0 0
intr 12345 0 0
ctxt 999
`;

t.test('per-core counters: busy is everything but idle and iowait; guest time is already in user', async (t) => {
  t.same(parseProcStat(PROC_STAT), [
    { busy: 400 + 10 + 200 + 10, total: 400 + 10 + 200 + 3000 + 50 + 10 },
    { busy: 200 + 100 + 10, total: 200 + 100 + 5000 + 50 + 10 },
  ]);
  t.same(parseProcStat('cpu  1 2 3 4\nintr 5\n'), [], 'the all-cores line is not a core');
});

t.test('busy share between two readings: all cores together, then each', async (t) => {
  const before = [
    { busy: 100, total: 1000 },
    { busy: 100, total: 1000 },
  ];
  const after = [
    { busy: 190, total: 1100 },
    { busy: 150, total: 1100 },
  ];
  t.same(machineBusy(before, after), { cores: 2, busyShare: (90 + 50) / 200, coreBusyShares: [0.9, 0.5] });
  t.equal(machineBusy(before, before), null, 'no time passed: no share');
  t.equal(machineBusy(null, after), null, 'a reading missing: no share');
  t.equal(machineBusy(before, after.slice(0, 1)), null, 'a core went offline between the readings: no share');
});

t.test("this machine's cores, read from /proc/stat (Linux), one per CPU", async (t) => {
  const cores = readCoreTicks();
  if (process.platform !== 'linux') {
    t.equal(cores, null, 'no /proc/stat: no reading, and no claim about the machine');
    return;
  }
  t.equal(cores?.length, os.cpus().length);
  for (const core of cores ?? []) t.ok(core.total >= core.busy && core.busy >= 0);
});

t.test("a process's own CPU time since a reading, to the microsecond", async (t) => {
  const since = process.cpuUsage();
  const until = performance.now() + 30;
  let spins = 0;
  while (performance.now() < until) spins++;
  const used = cpuSecondsSince(since);
  t.ok(spins > 0);
  // 30 ms of spinning is at most 30 ms of this thread's CPU, plus what Node's own threads did meanwhile.
  t.ok(used > 0 && used < 1, `used ${used} s`);
});
