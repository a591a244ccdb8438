/**
 * Timelines: one row per client, time across, in the order the server
 * started serving them (so a sequential server draws a staircase). A row is
 * queued (connected, not yet greeted) then served (greeted until done). This
 * file lays the rows out and draws them as text for the terminal; report-svg.ts
 * draws the same rows as a picture.
 */
import { formatMs } from './format.js';
import type { RelativeSession, ScenarioReport, TargetReport } from './report-model.js';

export interface TimelineRow {
  readonly client: number;
  /** From connect start until the greeting (or the end, if it never came). */
  readonly queuedFrom: number;
  readonly servedFrom: number | null;
  readonly end: number;
  readonly error: string | null;
}

/** Rows in the order the clients were greeted; clients never greeted come last, in the order they gave up. */
export function timelineRows(sessions: readonly RelativeSession[]): TimelineRow[] {
  const order = (s: RelativeSession) => s.greeted ?? Number.POSITIVE_INFINITY;
  return [...sessions]
    .sort((a, b) => order(a) - order(b) || a.done - b.done || a.client - b.client)
    .map((s) => ({ client: s.client, queuedFrom: s.connectStart ?? s.scheduledStart, servedFrom: s.greeted, end: s.done, error: s.error }));
}

/** Every `count`-th row or so, when there are too many to draw one per line; the first and last always. */
export function sampleRows<T>(rows: readonly T[], most: number): T[] {
  if (rows.length <= most) return [...rows];
  return Array.from({ length: most }, (_, i) => rows[Math.round((i * (rows.length - 1)) / (most - 1))] as T);
}

/** The time axis every panel of a scenario shares: up to the latest end or ideal, so panels compare at a glance. */
export function sharedTimeSpanMs(report: ScenarioReport): number {
  let span = 0;
  for (const target of report.targets) {
    span = Math.max(span, target.summary.idealMs ?? 0);
    for (const session of target.timeline.sessions) span = Math.max(span, session.done);
  }
  return span > 0 ? span : 1;
}

/** One client's bar in text, as the report's text timeline and the live demo draw it. */
export const BAR = { queued: '.', served: '=', failed: 'x' } as const;

/**
 * `width` cells: BAR.queued from `queuedFrom` to `servedFrom` (or to `end`,
 * never served), BAR.served from `servedFrom` to `end`, BAR.failed at `end`
 * if it failed. `column` maps a time to its cell.
 */
export function barCells(width: number, column: (at: number) => number, bar: { queuedFrom: number; servedFrom: number | null; end: number; failed: boolean }): string {
  const cells = Array.from({ length: width }, () => ' ');
  for (let c = column(bar.queuedFrom); c <= column(bar.servedFrom ?? bar.end); c++) cells[c] = BAR.queued;
  if (bar.servedFrom !== null) for (let c = column(bar.servedFrom); c <= column(bar.end); c++) cells[c] = BAR.served;
  if (bar.failed) cells[column(bar.end)] = BAR.failed;
  return cells.join('');
}

const TEXT_COLUMNS = 60;
const TEXT_ROWS = 24;

/**
 * One panel per server, one line per client:
 *   client 3  |......=====                |
 * `.` queued, `=` served, `x` ended by an error.
 */
export function textTimeline(report: ScenarioReport): string {
  const span = sharedTimeSpanMs(report);
  const column = (ms: number) => Math.min(TEXT_COLUMNS - 1, Math.max(0, Math.floor((ms / span) * TEXT_COLUMNS)));
  const out: string[] = [];
  for (const target of report.targets) {
    const rows = timelineRows(target.timeline.sessions);
    const shown = sampleRows(rows, TEXT_ROWS);
    out.push(`${panelTitle(target)}${shown.length < rows.length ? ` (${shown.length} of ${rows.length} clients shown)` : ''}`);
    const labelWidth = `client ${Math.max(...rows.map((r) => r.client + 1))}`.length;
    for (const row of shown) {
      const cells = barCells(TEXT_COLUMNS, column, { queuedFrom: row.queuedFrom, servedFrom: row.servedFrom, end: row.end, failed: row.error !== null });
      out.push(`  ${`client ${row.client + 1}`.padEnd(labelWidth)} |${cells}|${row.error === null ? '' : ` ${row.error}`}`);
    }
  }
  out.push(`time across: ${formatMs(span)} in ${TEXT_COLUMNS} columns (${formatMs(span / TEXT_COLUMNS)} each); '${BAR.queued}' queued, '${BAR.served}' served, '${BAR.failed}' error`);
  return `${out.join('\n')}\n`;
}

export function panelTitle(target: TargetReport): string {
  return `${target.label}: ${panelSubtitle(target)}`;
}

/** `makespan 6.45 s, ideal 6.40 s, 1 of 8 at once`. */
export function panelSubtitle(target: TargetReport): string {
  const { makespanMs, idealMs, maxServedAtOnce, clients } = target.summary;
  return `makespan ${formatMs(makespanMs.mean)}${idealMs === null ? '' : `, ideal ${formatMs(idealMs)}`}, ${maxServedAtOnce} of ${clients} served at once`;
}
