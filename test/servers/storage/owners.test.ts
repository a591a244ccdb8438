/**
 * Who owns a temporary file or an append intent: a start-up removes what no
 * live server owns, so telling a live owner from a gone one decides between a
 * leaked file (its reservation held against the quota for good) and a live
 * server's upload deleted under it. Real processes, real /proc.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import t from 'tap';
import { isOwnerAlive, ownerOf, parseProcStat, SELF_OWNER } from '../../../servers/storage/owners.js';

const hasProc = fs.existsSync(`/proc/${process.pid}/stat`);

t.test('the fields of /proc/<pid>/stat, whatever the command name holds', async (t) => {
  const rest = Array.from({ length: 18 }, (_, i) => String(i + 1)).join(' ');
  t.same(parseProcStat(`42 (node) S ${rest} 987654 0 0\n`), { state: 'S', start: '987654' });
  t.same(parseProcStat(`42 (a) b (c) Z ${rest} 77 0`), { state: 'Z', start: '77' }, 'a name with spaces and parentheses');
  t.equal(parseProcStat(`42 (node) S ${rest}`), null, 'cut short before the start time');
  t.equal(parseProcStat(`42 (node) S ${rest} soon 0`), null, 'a start time that is not a number');
  t.equal(parseProcStat(`42 (node) S ${rest} 12ab 0`), null, 'nor one that only starts with digits');
  t.equal(parseProcStat(`42 (node) S ${rest} ab12 0`), null, 'nor one that only ends with them');
});

t.test('owners that name no running process', async (t) => {
  const dead = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
  t.equal(isOwnerAlive(`${dead}.1`), false, 'a process that exited');
  for (const owner of ['', 'junk', `${process.pid}`, `${process.pid}.`, `x${process.pid}.0`, `${process.pid}.0x`, '0.5', '99999999999999999999.1']) {
    t.equal(isOwnerAlive(owner), false, JSON.stringify(owner));
  }
});

t.test('a process that /proc says nothing of is named with start time 0, as every process is where there is no /proc', async (t) => {
  const dead = spawnSync(process.execPath, ['-e', '']).pid ?? 0;
  t.equal(ownerOf(dead), `${dead}.0`);
});

t.test('owners that name a running process', { skip: hasProc ? false : 'needs /proc' }, async (t) => {
  t.equal(isOwnerAlive(SELF_OWNER), true, 'this process');
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.teardown(() => live.kill('SIGKILL'));
  const pid = live.pid ?? 0;
  t.match(ownerOf(pid), new RegExp(`^${pid}\\.[1-9]\\d*$`), 'named by its pid and start time');
  t.equal(isOwnerAlive(ownerOf(pid)), true, 'a live process');
  t.equal(isOwnerAlive(`${pid}.1`), false, 'its pid with another start time: an earlier process that had the pid');
  t.equal(isOwnerAlive(`${pid}.0`), true, 'its pid with start time 0, as a server names itself where there is no /proc');
});

t.test('a zombie (exited, not reaped) owns nothing', { skip: hasProc ? false : 'needs /proc' }, async (t) => {
  // The shell starts a short sleep, then becomes a long one that never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => parent.kill('SIGKILL'));
  const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()))));
  const owner = ownerOf(pid);
  const deadline = Date.now() + 5000;
  while (parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state !== 'Z' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal(parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state, 'Z', 'the sleep is a zombie');
  t.equal(isOwnerAlive(owner), false, 'its files are nobody’s');
});
