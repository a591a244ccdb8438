/** What `socklab check` prints: the promise about files first, a line per case as it ends, a summary. */
import type { CheckCase } from './cases.js';
import type { CaseResult, CheckReport } from './run.js';

/** How many lines of what was sent and what came back a failure shows. */
const SHOWN_LINES = 4;

export function describeFiles(filePrefix: string, root: string | null): string {
  return root === null
    ? `It writes only files named ${filePrefix}*; protocol v1 has no command to delete a file, so they stay on the server ` +
        '(give --root with the folder the server stores its files in, on this machine, and the check removes them).'
    : `It writes only files named ${filePrefix}* and removes them from ${root} afterwards.`;
}

export function header(host: string, port: number, count: number, timeoutSeconds: number, filePrefix: string, root: string | null): string {
  return (
    `socklab check ${host}:${port}: protocol v1 (protocol/PROTOCOL.md), ${count} case${count === 1 ? '' : 's'}, each within ${timeoutSeconds} s.\n` +
    `${describeFiles(filePrefix, root)}\n`
  );
}

/** Prints a case's line (and its failure) as it ends, with the section above the first case of each. */
export function caseLines(width: number): (result: CaseResult) => string {
  let section: string | null = null;
  return (result) => {
    const lines: string[] = [];
    if (result.section !== section) {
      section = result.section;
      lines.push(`\n${section}`);
    }
    const status = result.passed ? 'pass' : result.notRun !== undefined ? 'skip' : 'FAIL';
    lines.push(`  ${status}  ${result.id.padEnd(width)}  ${result.requirement}`);
    const failure = result.failure;
    if (failure !== undefined) {
      const indent = ' '.repeat(8);
      lines.push(`${indent}sent:     ${firstLines(failure.sent, ' | ')}`);
      lines.push(`${indent}expected: ${failure.expected}`);
      for (const [i, got] of failure.got.slice(0, SHOWN_LINES).entries()) lines.push(`${indent}${i === 0 ? 'got:     ' : '         '} ${got}`);
    }
    return `${lines.join('\n')}\n`;
  };
}

function firstLines(lines: readonly string[], separator: string): string {
  const shown = lines.slice(0, SHOWN_LINES).join(separator);
  return lines.length > SHOWN_LINES ? `${shown}${separator}… (${lines.length - SHOWN_LINES} more)` : shown;
}

export function summary(report: CheckReport, root: string | null): string {
  const total = report.results.length;
  const failedIds = report.results.filter((r) => !r.passed && r.notRun === undefined).map((r) => r.id);
  const reason = report.results.find((r) => r.notRun !== undefined)?.notRun;
  const verdict =
    report.passed === total
      ? `${total} cases: all passed. The server speaks protocol v1 as far as these cases go.`
      : `${total} cases: ${report.passed} passed, ${report.failed} failed (${failedIds.join(', ')})` +
        (reason === undefined ? '.' : `, ${report.notRun} not run (${reason}).`);
  const files =
    report.removed === null
      ? `Files ${report.filePrefix}* are left on the server (no --root given).`
      : report.removed.length === 0 && report.passed > 0
        ? `No file named ${report.filePrefix}* was in ${root ?? '?'}: is that the folder the server stores its files in? The check's files are still on the server.`
        : `Removed ${report.removed.length} file${report.removed.length === 1 ? '' : 's'} named ${report.filePrefix}* from ${root ?? '?'}.`;
  return `\n${verdict}\n${files}\n`;
}

export function asJson(report: CheckReport, timeoutSeconds: number): string {
  return `${JSON.stringify({ protocol: 1, timeoutSeconds, ...report }, null, 2)}\n`;
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
