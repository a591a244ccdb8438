/**
 * Who owns a temporary file or an append intent in the storage root: a server
 * process, named `<pid>.<start time>`. During a rolling restart two servers
 * share a root (the old one finishing its uploads in its grace time), so a
 * start-up must remove only what no *live* process owns. The pid alone is not
 * enough: after a crash and restart in a container the new server often gets
 * the very pid of the old one, so the process's start time (Linux:
 * /proc/<pid>/stat, in clock ticks since boot) is part of the name. Where
 * there is no /proc, the start time is 0 and a live pid counts as the owner.
 *
 * Reads of /proc are not disk I/O and happen at start-up and when meeting
 * another process's intent record, so both storage flavours use these
 * synchronous calls.
 */
import fs from 'node:fs';

/** Fields 3 (state) and 22 (start time) of /proc/<pid>/stat, after the command name (which may hold spaces and parentheses). */
export function parseProcStat(statText: string): { state: string; start: string } | null {
  const afterName = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  const [state, start] = [afterName[0], afterName[19]];
  return state !== undefined && start !== undefined && /^\d+$/.test(start) ? { state, start } : null;
}

function procStatOf(pid: number): { state: string; start: string } | null {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

function startTimeOf(pid: number): string | null {
  return procStatOf(pid)?.start ?? null;
}

/** A running process as its files name it. */
export function ownerOf(pid: number): string {
  return `${pid}.${startTimeOf(pid) ?? '0'}`;
}

/** This process, as its files name it (the same in every worker thread). */
export const SELF_OWNER = ownerOf(process.pid);

/** Whether the process an owner names is still running (the same process, not a later one with its pid). */
export function isOwnerAlive(owner: string): boolean {
  if (owner === SELF_OWNER) return true;
  const match = /^(\d+)\.(\d+)$/.exec(owner);
  if (match === null) return false;
  const pid = Number(match[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStatOf(pid);
  // A zombie (exited, not yet reaped by its parent) is gone: it finishes nothing.
  if (stat !== null && (stat.state === 'Z' || stat.state === 'X')) return false;
  if (match[2] === '0') return true;
  return stat === null || stat.start === match[2];
}
