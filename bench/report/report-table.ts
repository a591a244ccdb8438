/**
 * The per-scenario table, one row per server: the same cells rendered as a
 * Markdown table (the report) or as aligned text (the terminal). On the
 * terminal the whole table is about 190 columns; narrower than that, it is
 * cut into tables that each fit (the server column repeated in each, headers
 * on two lines), so that nothing wraps and nothing is left out.
 */
import { formatBytes, formatMs, formatMsSeries, formatPercent, formatRate } from './format.js';
import type { ScenarioReport, TargetReport } from './report-model.js';

export interface Column {
  readonly header: string;
  /** The header on two lines, for the narrow terminal tables; absent: `header` alone, on the second. */
  readonly split?: readonly [string, string];
  readonly align: 'left' | 'right';
  /**
   * Narrow tables put the run's outcome (makespan, rates, how many at once)
   * in one table and what the clients waited and the server spent in the
   * next: the two halves fit 100 columns.
   */
  readonly part?: 'sessions';
  cell(target: TargetReport, ceiling: TargetReport | undefined): string;
  /** Shown only when this says so (a column that would be empty everywhere is left out). */
  shown?(report: ScenarioReport): boolean;
}

const COLUMNS: readonly Column[] = [
  { header: 'server', align: 'left', cell: (t) => t.label },
  { header: 'makespan', align: 'right', cell: makespanCell },
  { header: 'ideal', align: 'right', cell: (t) => (t.summary.idealMs === null ? '—' : formatMs(t.summary.idealMs)) },
  { header: '× ideal', split: ['×', 'ideal'], align: 'right', cell: (t) => (t.summary.idealRatio === null ? '—' : t.summary.idealRatio.toFixed(2)) },
  {
    header: '% of ceiling',
    split: ['% of', 'ceiling'],
    align: 'right',
    cell: (t, ceiling) => (ceiling === undefined ? '—' : formatPercent(ceiling.summary.makespanMs.mean / t.summary.makespanMs.mean)),
    shown: (report) => report.targets.some((t) => t.spec.kind === 'ceiling'),
  },
  {
    header: 'queue wait p50 / p95 / max',
    part: 'sessions',
    split: ['queue wait', 'p50 / p95 / max'],
    align: 'right',
    cell: ({ summary: { queueWaitMs: q } }) => formatMsSeries([q.p50, q.p95, q.max]),
  },
  {
    header: 'session p50 / p95 / p99 / max',
    part: 'sessions',
    split: ['session', 'p50 / p95 / p99 / max'],
    align: 'right',
    cell: ({ summary: { sessionTimeMs: s } }) => formatMsSeries([s.p50, s.p95, s.p99, s.max]),
  },
  { header: 'sessions/s', split: ['sessions', 'per s'], align: 'right', cell: (t) => formatRate(t.summary.sessionsPerSecond) },
  {
    header: 'MiB/s',
    align: 'right',
    cell: (t) => (t.summary.mibPerSecond === null ? '—' : formatRate(t.summary.mibPerSecond)),
    shown: (report) => report.targets.some((t) => t.summary.mibPerSecond !== null),
  },
  {
    header: 'PING/s',
    align: 'right',
    cell: (t) => (t.summary.pingsPerSecond === null ? '—' : formatRate(t.summary.pingsPerSecond)),
    shown: (report) => report.targets.some((t) => t.summary.pingsPerSecond !== null),
  },
  { header: 'most at once', split: ['most', 'at once'], align: 'right', cell: (t) => `${t.summary.maxServedAtOnce} of ${t.summary.clients}` },
  { header: 'server CPU s', split: ['server', 'CPU s'], part: 'sessions', align: 'right', cell: (t) => (t.resources === null ? '—' : t.resources.cpuSecondsPerRun.toFixed(2)) },
  { header: 'peak RSS', split: ['peak', 'RSS'], part: 'sessions', align: 'right', cell: (t) => (t.resources === null ? '—' : formatBytes(t.resources.peakRssBytes)) },
  { header: 'errors', part: 'sessions', align: 'right', cell: errorsCell },
];

/** `6.45 s ±0.4% (n=5)` with iteration statistics, just `6.45 s` for a single run. */
function makespanCell(target: TargetReport): string {
  const { stats, summary } = target;
  if (stats === null || stats.samples < 2) return formatMs(summary.makespanMs.mean);
  return `${formatMs(stats.meanMs)} ±${stats.rmePercent.toFixed(1)}% (n=${stats.samples})`;
}

function errorsCell(target: TargetReport): string {
  const { errors, errorsByKind } = target.summary;
  if (errors === 0) return '0';
  return `${errors} (${Object.entries(errorsByKind)
    .map(([kind, count]) => `${count}× ${kind}`)
    .join(', ')})`;
}

/** The table's shown columns and a row of cells per target (the HTML report renders them too). */
export function tableCells(report: ScenarioReport): { columns: Column[]; rows: string[][] } {
  const columns = COLUMNS.filter((column) => column.shown?.(report) ?? true);
  const ceiling = report.targets.find((t) => t.spec.kind === 'ceiling');
  return { columns, rows: report.targets.map((target) => columns.map((column) => column.cell(target, ceiling))) };
}

export function markdownTable(report: ScenarioReport): string {
  const { columns, rows } = tableCells(report);
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |\n`;
  return line(columns.map((c) => c.header)) + line(columns.map((c) => (c.align === 'right' ? '---:' : '---'))) + rows.map(line).join('');
}

/**
 * The table as aligned text, at most `width` columns wide when it can be:
 * the one-line table if it fits, else tables of the columns that fit side
 * by side, each beginning with the server column. (Infinity: always one table.)
 */
export function textTable(report: ScenarioReport, width = Number.POSITIVE_INFINITY): string {
  const { columns, rows } = tableCells(report);
  const oneLine = alignedText(columns, rows, columns.map((_, i) => i), 'one line');
  if (Math.max(...oneLine.split('\n').map((line) => line.length)) <= width) return oneLine;
  return packColumns(columns, rows, width)
    .map((indexes) => alignedText(columns, rows, indexes, 'two lines'))
    .join('\n');
}

/**
 * Column indexes per table: the server column (the first) in each, then the
 * run's columns, then the sessions' (see Column.part), as many side by side
 * as fit in `width`.
 */
function packColumns(columns: readonly Column[], rows: readonly string[][], width: number): number[][] {
  const widths = columns.map((column, i) => columnWidth(column, rows, i, 'two lines'));
  const rest = columns.map((_, i) => i).slice(1);
  const parts = [rest.filter((i) => columns[i]?.part === undefined), rest.filter((i) => columns[i]?.part === 'sessions')];
  const tables: number[][] = [];
  for (const part of parts) {
    let current: number[] = [0];
    let used = widths[0] ?? 0;
    for (const i of part) {
      const needed = GAP.length + (widths[i] ?? 0);
      if (current.length > 1 && used + needed > width) {
        tables.push(current);
        current = [0];
        used = widths[0] ?? 0;
      }
      current.push(i);
      used += needed;
    }
    if (current.length > 1) tables.push(current);
  }
  return tables;
}

const GAP = '  ';

function headerLines(column: Column, headers: 'one line' | 'two lines'): readonly string[] {
  return headers === 'one line' ? [column.header] : (column.split ?? ['', column.header]);
}

function columnWidth(column: Column, rows: readonly string[][], index: number, headers: 'one line' | 'two lines'): number {
  return Math.max(...headerLines(column, headers).map((line) => line.length), ...rows.map((row) => (row[index] ?? '').length));
}

function alignedText(columns: readonly Column[], rows: readonly string[][], indexes: readonly number[], headers: 'one line' | 'two lines'): string {
  const widths = indexes.map((i) => columnWidth(columns[i] as Column, rows, i, headers));
  const line = (cells: readonly string[]) =>
    `${cells
      .map((cell, k) => (columns[indexes[k] ?? 0]?.align === 'right' ? cell.padStart(widths[k] ?? 0) : cell.padEnd(widths[k] ?? 0)))
      .join(GAP)
      .trimEnd()}\n`;
  const headerRows = headers === 'one line' ? 1 : 2;
  const header = Array.from({ length: headerRows }, (_, r) => line(indexes.map((i) => headerLines(columns[i] as Column, headers)[r] ?? '')));
  return header.join('') + line(widths.map((w) => '-'.repeat(w))) + rows.map((row) => line(indexes.map((i) => row[i] ?? ''))).join('');
}
