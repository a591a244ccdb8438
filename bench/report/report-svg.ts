/**
 * A scenario's timeline as an SVG picture: a column per server, a row per
 * client (in the order it was served), time across on one scale for all
 * columns; queued and served in two colours, an error as a red tick, and the
 * ideal makespan as a dashed line. Plain SVG 1.1, no script, no external font.
 */
import { durationUnit } from './format.js';
import type { ScenarioReport, TargetReport } from './report-model.js';
import { panelSubtitle, sharedTimeSpanMs, timelineRows } from './report-timeline.js';

/** Exported for the HTML report's legend, which must show the colours this draws. */
export const COLOURS = { queued: '#f0a030', served: '#2b6cb0', error: '#c53030', ideal: '#2f855a', axis: '#4a5568', panel: '#f4f6f8', text: '#1a202c' } as const;
const PANEL_WIDTH = 320;
const PANEL_GAP = 44;
const MARGIN = { left: 28, right: 16, top: 96, bottom: 56 };
/** Roughly how wide a character of the 12 px sans-serif is, to space the legend without measuring text. */
const CHAR_WIDTH = 6.3;
/** Few clients get comfortable rows; many share this plot height (a row may be thinner than a pixel). */
const ROW_HEIGHT_MAX = 16;
const PLOT_HEIGHT_FOR_MANY = 400;

/** Optional touches for another medium: the HTML report gives each server its colour. */
export interface SvgStyle {
  /** A colour per panel: its title, and a stripe down its left side. */
  readonly panelColour?: (target: TargetReport) => string | undefined;
  /** Panels side by side before the next row of them (default: all in one row); fewer make a narrower picture that scales up larger. */
  readonly panelsPerRow?: number;
}

/** Between two rows of panels: the axis labels of one and the titles of the next. */
const PANEL_ROW_GAP = 72;

export function timelineSvg(report: ScenarioReport, style: SvgStyle = {}): string {
  const span = niceCeiling(sharedTimeSpanMs(report));
  const clients = Math.max(1, ...report.targets.map((t) => t.timeline.sessions.length));
  const rowHeight = Math.min(ROW_HEIGHT_MAX, PLOT_HEIGHT_FOR_MANY / clients);
  const plotHeight = rowHeight * clients;
  const perRow = Math.max(1, Math.min(report.targets.length, style.panelsPerRow ?? report.targets.length));
  const panelRows = Math.ceil(report.targets.length / perRow);
  const width = MARGIN.left + perRow * (PANEL_WIDTH + PANEL_GAP) - PANEL_GAP + MARGIN.right;
  const height = MARGIN.top + panelRows * (plotHeight + PANEL_ROW_GAP) - PANEL_ROW_GAP + MARGIN.bottom;
  const x = (ms: number) => (ms / span) * PANEL_WIDTH;
  const ticks = tickValues(span);
  const out: string[] = [];

  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${round(height)}" viewBox="0 0 ${width} ${round(height)}" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="${COLOURS.text}">`,
    `<title>socklab ${escapeMarkup(report.scenario)}: one row per client, time across</title>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="22" font-size="16" font-weight="bold">${escapeMarkup(report.scenario)}: one row per client (in the order served), time across</text>`,
    `<text x="${MARGIN.left}" y="40" font-size="11" fill="${COLOURS.axis}">socklab load ${escapeMarkup(report.scenario)} ${escapeMarkup(report.flags)}</text>`,
    legend(MARGIN.left, 56),
  );

  report.targets.forEach((target, index) => {
    const left = MARGIN.left + (index % perRow) * (PANEL_WIDTH + PANEL_GAP);
    const top = MARGIN.top + Math.floor(index / perRow) * (plotHeight + PANEL_ROW_GAP);
    out.push(`<g transform="translate(${left},${top})">`);
    const accent = style.panelColour?.(target);
    out.push(`<text x="0" y="-24" font-weight="bold"${accent === undefined ? '' : ` fill="${escapeMarkup(accent)}"`}>${escapeMarkup(target.label)}</text>`);
    if (accent !== undefined) out.push(`<rect x="-7" y="0" width="4" height="${round(plotHeight)}" fill="${escapeMarkup(accent)}"/>`);
    out.push(`<text x="0" y="-8" font-size="11">${escapeMarkup(panelSubtitle(target))}</text>`);
    out.push(`<rect x="0" y="0" width="${PANEL_WIDTH}" height="${round(plotHeight)}" fill="${COLOURS.panel}"/>`);
    const rows = timelineRows(target.timeline.sessions);
    const barHeight = rowHeight > 4 ? rowHeight - 2 : rowHeight;
    rows.forEach((row, i) => {
      const y = round(i * rowHeight + (rowHeight - barHeight) / 2);
      const queuedTo = row.servedFrom ?? row.end;
      if (queuedTo > row.queuedFrom) out.push(bar(x(row.queuedFrom), y, x(queuedTo) - x(row.queuedFrom), barHeight, COLOURS.queued));
      if (row.servedFrom !== null) out.push(bar(x(row.servedFrom), y, x(row.end) - x(row.servedFrom), barHeight, COLOURS.served));
      if (row.error !== null) out.push(bar(x(row.end) - 1, y, 3, Math.max(barHeight, 2), COLOURS.error, `client ${row.client + 1}: ${row.error}`));
    });
    const ideal = target.summary.idealMs;
    if (ideal !== null) {
      out.push(
        `<line x1="${round(x(ideal))}" y1="0" x2="${round(x(ideal))}" y2="${round(plotHeight)}" stroke="${COLOURS.ideal}" stroke-width="1.5" stroke-dasharray="4 3"/>`,
      );
    }
    out.push(axis(ticks, x, plotHeight));
    out.push('</g>');
  });

  out.push(
    `<text x="${MARGIN.left}" y="${round(height - 10)}" font-size="11" fill="${COLOURS.axis}">time since the common start instant; rows top to bottom: clients in the order the server greeted them (${clients} clients)</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

function legend(left: number, y: number): string {
  const items: Array<{ colour: string; label: string; dashed?: boolean }> = [
    { colour: COLOURS.queued, label: 'waiting in the queue (connected, not yet greeted)' },
    { colour: COLOURS.served, label: 'being served (greeted until done)' },
    { colour: COLOURS.error, label: 'error' },
    { colour: COLOURS.ideal, label: 'ideal makespan', dashed: true },
  ];
  let x = left;
  return items
    .map(({ colour, label, dashed }) => {
      const swatch = dashed
        ? `<line x1="${x}" y1="${y - 4}" x2="${x + 14}" y2="${y - 4}" stroke="${colour}" stroke-width="1.5" stroke-dasharray="4 3"/>`
        : `<rect x="${x}" y="${y - 10}" width="14" height="10" fill="${colour}"/>`;
      const text = `<text x="${x + 20}" y="${y}">${escapeMarkup(label)}</text>`;
      x += 20 + label.length * CHAR_WIDTH + 24;
      return swatch + text;
    })
    .join('');
}

function axis(ticks: readonly number[], x: (ms: number) => number, plotHeight: number): string {
  const y = round(plotHeight);
  const unit = durationUnit(ticks[ticks.length - 1] ?? 0);
  const parts = [`<line x1="0" y1="${y}" x2="${PANEL_WIDTH}" y2="${y}" stroke="${COLOURS.axis}"/>`];
  for (const tick of ticks) {
    const tx = round(x(tick));
    parts.push(
      `<line x1="${tx}" y1="${y}" x2="${tx}" y2="${y + 4}" stroke="${COLOURS.axis}"/>`,
      `<text x="${tx}" y="${y + 16}" text-anchor="middle" font-size="11" fill="${COLOURS.axis}">${tickLabel(tick, unit)}</text>`,
    );
  }
  return parts.join('');
}

/** `2 s`, `0.5 s`, `250 ms`: as few digits as the tick needs. */
function tickLabel(ms: number, unit: 's' | 'ms'): string {
  return `${Number((unit === 's' ? ms / 1000 : ms).toFixed(3))} ${unit}`;
}

function bar(x: number, y: number, width: number, height: number, colour: string, title?: string): string {
  const rect = `<rect x="${round(x)}" y="${y}" width="${round(Math.max(0.5, width))}" height="${round(height)}" fill="${colour}"`;
  return title === undefined ? `${rect}/>` : `${rect}><title>${escapeMarkup(title)}</title></rect>`;
}

/** A round number of ms at or above `ms` (1, 2 or 5 × a power of ten), so the axis ends on a tick. */
export function niceCeiling(ms: number): number {
  const step = niceStep(ms / 5);
  return Math.ceil(ms / step) * step;
}

function niceStep(rough: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(rough, 1e-3)));
  const fraction = rough / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

export function tickValues(span: number): number[] {
  const step = niceStep(span / 5);
  const ticks: number[] = [];
  for (let tick = 0; tick <= span + step / 1000; tick += step) ticks.push(Math.round(tick * 1000) / 1000);
  return ticks;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Text for SVG and HTML alike, in element content and in quoted attributes. */
export function escapeMarkup(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}
