/**
 * Where the CPU went during a load run: how busy the machine's cores were
 * (/proc/stat), and the CPU time a process used. A run on a machine whose
 * cores were all busy measured the machine, not the server's concurrency
 * model; the report says so with these figures (bench/report/causes.ts).
 */
import fs from 'node:fs';

/** One core's counters from /proc/stat, in clock ticks since boot. */
export interface CoreTicks {
  readonly busy: number;
  readonly total: number;
}

/** How busy the machine's cores were between two readings. */
export interface MachineBusy {
  readonly cores: number;
  /** All cores together: 1 − idle ÷ total over the interval (iowait counts as idle: the core could have run something). */
  readonly busyShare: number;
  /** The same per core, cpu0 first. */
  readonly coreBusyShares: readonly number[];
}

/** The per-core lines of /proc/stat (`cpu0 user nice system idle iowait irq softirq steal guest guest_nice`). */
export function parseProcStat(text: string): CoreTicks[] {
  const cores: CoreTicks[] = [];
  for (const line of text.split('\n')) {
    const match = /^cpu\d+\s+(.*)$/.exec(line);
    if (match === null) continue;
    // guest and guest_nice are already counted in user and nice: only the first eight add up to the total.
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = (match[1] ?? '').trim().split(/\s+/).map(Number);
    const total = user + nice + system + idle + iowait + irq + softirq + steal;
    cores.push({ busy: total - idle - iowait, total });
  }
  return cores;
}

/** This machine's cores now; null where /proc/stat cannot be read (not Linux). */
export function readCoreTicks(): CoreTicks[] | null {
  try {
    const cores = parseProcStat(fs.readFileSync('/proc/stat', 'utf8'));
    return cores.length === 0 ? null : cores;
  } catch {
    return null;
  }
}

/** Between two readings of the same machine; null if either is missing, or no time passed. */
export function machineBusy(before: readonly CoreTicks[] | null, after: readonly CoreTicks[] | null): MachineBusy | null {
  if (before === null || after === null || before.length !== after.length) return null;
  const deltas = after.map((core, i) => ({ busy: core.busy - (before[i]?.busy ?? 0), total: core.total - (before[i]?.total ?? 0) }));
  const total = deltas.reduce((sum, d) => sum + d.total, 0);
  if (total <= 0) return null;
  return {
    cores: deltas.length,
    busyShare: deltas.reduce((sum, d) => sum + d.busy, 0) / total,
    coreBusyShares: deltas.map((d) => (d.total <= 0 ? 0 : d.busy / d.total)),
  };
}

/** This process's user + system CPU seconds since `since` (a process.cpuUsage() reading): microsecond-exact. */
export function cpuSecondsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}
