/** What `socklab check` prints: the promise about files first, a line per case as it ends, a summary. */
import type { CheckCase } from './cases.js';
import type { CaseResult, CheckReport } from './run.js';

/** How many lines of what was sent and what came back a failure shows. */
const SHOWN_LINES = 4;
/** How many names (failed cases, files left) a sentence gives: past that, a list no one reads (72 when every case times out). */
const SHOWN_NAMES = 10;

export function describeFiles(filePrefix: string, root: string | null): string {
  return root === null
    ? `It writes only files named ${filePrefix}*; protocol v1 has no command to delete a file, so they stay on the server ` +
        '(give --root with the folder the server stores its files in, on this machine, and the check removes them).'
    : `It writes only files named ${filePrefix}* and removes them from ${root} afterwards.`;
}

export function header(host: string, port: number, count: number, timeoutSeconds: number, filePrefix: string, root: string | null): string {
  return (
    `socklab check ${host}:${port}: protocol v1 (protocol/PROTOCOL.md), ${counted(count, 'case')}, each within ${timeoutSeconds} s.\n` +
    `${describeFiles(filePrefix, root)}\n`
  );
}

/**
 * Prints a case's line (and its failure) as it ends, with the section above
 * the first case of each. A case that was not run prints nothing: they are the
 * cases after a failed gate, and the summary says once why none of them ran.
 */
export function caseLines(cases: readonly CheckCase[]): (result: CaseResult) => string {
  const width = Math.max(...cases.map((c) => c.id.length));
  let section: string | null = null;
  return (result) => {
    if (result.notRun !== undefined) return '';
    const lines: string[] = [];
    if (result.section !== section) {
      section = result.section;
      lines.push(`\n${section}`);
    }
    lines.push(`  ${result.passed ? 'pass' : 'FAIL'}  ${result.id.padEnd(width)}  ${result.requirement}`);
    const failure = result.failure;
    if (failure !== undefined) {
      const indent = ' '.repeat(8);
      lines.push(`${indent}sent:     ${firstOf(failure.sent, SHOWN_LINES, ' | ')}`);
      lines.push(`${indent}expected: ${failure.expected}`);
      for (const [i, got] of failure.got.slice(0, SHOWN_LINES).entries()) lines.push(`${indent}${i === 0 ? 'got:     ' : '         '} ${got}`);
    }
    return `${lines.join('\n')}\n`;
  };
}

/** The first `count` items, then how many more there are (`… (N more)` after a separator, or `and N more` in a sentence). */
function firstOf(items: readonly string[], count: number, separator: string, more = (n: number) => `${separator}… (${n} more)`): string {
  const shown = items.slice(0, count).join(separator);
  return items.length > count ? `${shown}${more(items.length - count)}` : shown;
}

/** Names in a sentence: `a, b and 3 more`. */
function nameList(names: readonly string[]): string {
  return firstOf(names, SHOWN_NAMES, ', ', (n) => ` and ${n} more`);
}

function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export function summary(report: CheckReport, root: string | null): string {
  const total = report.results.length;
  const failedIds = report.results.filter((r) => !r.passed && r.notRun === undefined).map((r) => r.id);
  const reason = report.results.find((r) => r.notRun !== undefined)?.notRun;
  const verdict =
    report.passed === total
      ? `${total} cases: all passed. The server speaks protocol v1 as far as these cases go.`
      : `${total} cases: ${report.passed} passed, ${report.failed} failed (${nameList(failedIds)})` +
        (reason === undefined ? '.' : `, the remaining ${report.notRun} not run (${reason}).`);
  const files = filesLine(report, root);
  return `\n${verdict}\n${files === null ? '' : `${files}\n`}`;
}

/** A run cut short by Ctrl-C: how far it got, and where its files are. */
export function interruptedLine(report: CheckReport, planned: number, root: string | null): string {
  const files = filesLine(report, root) ?? 'It left no file on the server.';
  return `\nInterrupted (Ctrl-C) after ${report.results.length} of ${counted(planned, 'case')}. ${files}\n`;
}

/** A second Ctrl-C stops at once, before the files are removed: which ones to delete. */
export function stoppedAtOnceLine(filePrefix: string, root: string | null): string {
  const where = root === null ? 'on the server' : `in ${root}`;
  return `socklab check: stopped at once (a second Ctrl-C); files named ${filePrefix}* may be left ${where}: delete them yourself.\n`;
}

/** What became of the run's files, or null when no case wrote any (nor could have). */
function filesLine(report: CheckReport, root: string | null): string | null {
  const { filePrefix, removed, notRemoved } = report;
  if (removed === null) return report.sentPut ? `Files ${filePrefix}* are left on the server (no --root given).` : null;
  const folder = root ?? '?';
  if (notRemoved !== null) {
    const left = nameList(notRemoved.names);
    const done =
      removed.length > 0 ? `Removed ${counted(removed.length, 'file')} named ${filePrefix}* from ${folder}, but not ${left}` : `Could not remove ${left} from ${folder}`;
    return `${done} (${notRemoved.reason}): delete the files named ${filePrefix}* there yourself.`;
  }
  if (removed.length > 0) return `Removed ${counted(removed.length, 'file')} named ${filePrefix}* from ${folder}.`;
  return report.storedFile
    ? `No file named ${filePrefix}* was in ${folder}: is that the folder the server stores its files in? The check's files are still on the server.`
    : null;
}

export function asJson(report: CheckReport, timeoutSeconds: number): string {
  return `${JSON.stringify({ protocol: 1, timeoutSeconds, ...report }, null, 2)}\n`;
}

/** --list --json: the cases as data, for a program that picks some. */
export function caseListJson(cases: readonly CheckCase[]): string {
  return `${JSON.stringify(cases.map((c) => ({ id: c.id, section: c.section, requirement: c.requirement })), null, 2)}\n`;
}

export function caseList(cases: readonly CheckCase[]): string {
  const width = Math.max(...cases.map((c) => c.id.length));
  let section: string | null = null;
  const lines: string[] = [];
  for (const c of cases) {
    if (c.section !== section) {
      section = c.section;
      lines.push(`${lines.length === 0 ? '' : '\n'}${section}`);
    }
    lines.push(`  ${c.id.padEnd(width)}  ${c.requirement}`);
  }
  return `${lines.join('\n')}\n`;
}
