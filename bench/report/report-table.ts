/**
 * The per-scenario table, one row per server: the same cells rendered as a
 * Markdown table (the report) or as aligned text (the terminal).
 */
import { formatBytes, formatMs, formatMsSeries, formatPercent, formatRate } from './format.js';
import type { ScenarioReport, TargetReport } from './report-model.js';

export interface Column {
  readonly header: string;
  readonly align: 'left' | 'right';
  cell(target: TargetReport, ceiling: TargetReport | undefined): string;
  /** Shown only when this says so (a column that would be empty everywhere is left out). */
  shown?(report: ScenarioReport): boolean;
}

const COLUMNS: readonly Column[] = [
  { header: 'server', align: 'left', cell: (t) => t.label },
  { header: 'makespan', align: 'right', cell: makespanCell },
  { header: 'ideal', align: 'right', cell: (t) => (t.summary.idealMs === null ? '—' : formatMs(t.summary.idealMs)) },
  { header: '× ideal', align: 'right', cell: (t) => (t.summary.idealRatio === null ? '—' : t.summary.idealRatio.toFixed(2)) },
  {
    header: '% of ceiling',
    align: 'right',
    cell: (t, ceiling) => (ceiling === undefined ? '—' : formatPercent(ceiling.summary.makespanMs.mean / t.summary.makespanMs.mean)),
    shown: (report) => report.targets.some((t) => t.spec.kind === 'ceiling'),
  },
  {
    header: 'queue wait p50 / p95 / max',
    align: 'right',
    cell: ({ summary: { queueWaitMs: q } }) => formatMsSeries([q.p50, q.p95, q.max]),
  },
  {
    header: 'session p50 / p95 / p99 / max',
    align: 'right',
    cell: ({ summary: { sessionTimeMs: s } }) => formatMsSeries([s.p50, s.p95, s.p99, s.max]),
  },
  { header: 'sessions/s', align: 'right', cell: (t) => formatRate(t.summary.sessionsPerSecond) },
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
  { header: 'most at once', align: 'right', cell: (t) => `${t.summary.maxServedAtOnce} of ${t.summary.clients}` },
  { header: 'server CPU s', align: 'right', cell: (t) => (t.resources === null ? '—' : t.resources.cpuSecondsPerRun.toFixed(2)) },
  { header: 'peak RSS', align: 'right', cell: (t) => (t.resources === null ? '—' : formatBytes(t.resources.peakRssBytes)) },
  { header: 'errors', align: 'right', cell: errorsCell },
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

export function textTable(report: ScenarioReport): string {
  const { columns, rows } = tableCells(report);
  const widths = columns.map((column, i) => Math.max(column.header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `${cells
      .map((cell, i) => (columns[i]?.align === 'right' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()}\n`;
  return line(columns.map((c) => c.header)) + line(widths.map((w) => '-'.repeat(w))) + rows.map(line).join('');
}
