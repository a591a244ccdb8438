/**
 * results/index.html: the newest bench run for the projector. Every scenario
 * with its sentences, a makespan bar per server, the same table as the
 * Markdown report and the same SVG timeline, inline. Large type, each server
 * in one colour throughout (legend on top), and nothing from outside the file:
 * no script, no web font, no image or style sheet to fetch, so it opens
 * offline from a USB stick as well.
 *
 * `npm run bench` writes it with the rest of results/; to write it again from
 * a run's JSON: `node dist/bench/report/report-html.js [results-dir]` (reads
 * latest.json there).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuUseLines } from './cpu-use.js';
import { formatMs } from './format.js';
import { ceilingCheckSentence, runDate, runExtent, type BenchReport } from './report-markdown.js';
import type { ScenarioReport, TargetReport } from './report-model.js';
import { COLOURS as TIMELINE_COLOURS, escapeMarkup, timelineSvg } from './report-svg.js';
import { tableCells } from './report-table.js';
import { resultStamp } from './results-files.js';
import { SCENARIOS } from '../load/scenarios.js';
import type { TargetSpec } from '../targets/targets.js';

/** One colour per server, kept clear of the timeline's own (queued orange, served blue, error red, ideal green). */
export const SERVER_COLOURS = {
  sequential: '#c2185b',
  workers: '#6b46c1',
  async: '#00796b',
  ceiling: '#5f6b7a',
  remote: '#8d6e63',
} as const;

export function serverColour(spec: TargetSpec): string {
  return spec.kind === 'model' ? SERVER_COLOURS[spec.model] : SERVER_COLOURS[spec.kind];
}

/** Three timeline panels a row: a narrower picture, scaled up to the page's width, so its text reads from afar. */
const PANELS_PER_ROW = 3;

const STYLE = `
:root { color-scheme: light; --text: #1a202c; --muted: #4a5568; --line: #cbd5e0; --zebra: #f4f6f8; }
* { box-sizing: border-box; }
html { font-size: 20px; }
body { margin: 0; padding: 1.2rem 2vw 3rem; color: var(--text); background: #fff;
  font-family: system-ui, "DejaVu Sans", "Liberation Sans", "Segoe UI", Arial, sans-serif; line-height: 1.4; }
h1 { font-size: 2.2rem; margin: 0 0 .3rem; }
h1 .when { font-weight: normal; color: var(--muted); font-size: 1.4rem; }
h2 { font-size: 1.9rem; margin: 0 0 .4rem; }
h2 .what { display: block; font-size: 1.05rem; font-weight: normal; color: var(--muted); }
p { margin: .4rem 0; }
.meta { color: var(--muted); font-size: .9rem; }
code { font-family: "DejaVu Sans Mono", "Liberation Mono", Consolas, monospace; font-size: .9em; }
header.run { border-bottom: 3px solid var(--text); padding-bottom: .6rem; margin-bottom: 1rem; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1.6rem; align-items: center; margin: .7rem 0 .3rem; font-size: 1.15rem; }
.legend .title { font-weight: bold; }
.key { display: inline-flex; align-items: center; gap: .45rem; white-space: nowrap; }
.swatch { display: inline-block; width: 1.3rem; height: 1.3rem; border-radius: .2rem; flex: none; }
.swatch.dashed { height: 0; border-top: .22rem dashed; border-radius: 0; }
nav { font-size: 1.05rem; margin-top: .4rem; }
nav a { margin-right: 1.2rem; color: var(--text); }
section.scenario { margin: 1.6rem 0 0; padding-top: 1rem; }
section.scenario + section.scenario { margin-top: 2.4rem; border-top: 1px solid var(--line); }
.story { font-size: 1.2rem; max-width: 75em; }
.makespan { display: grid; grid-template-columns: max-content 1fr max-content; gap: .35rem 1rem; align-items: center; margin: 1rem 0; font-size: 1.15rem; }
.makespan .who { display: inline-flex; align-items: center; gap: .5rem; font-weight: bold; white-space: nowrap; }
.makespan .track { position: relative; height: 1.6rem; background: var(--zebra); }
.makespan .bar { position: absolute; left: 0; top: 0; bottom: 0; }
.makespan .ideal { position: absolute; top: -.25rem; bottom: -.25rem; border-left: .2rem dashed ${TIMELINE_COLOURS.ideal}; }
.makespan .value { font-variant-numeric: tabular-nums; white-space: nowrap; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table.results { border-collapse: collapse; font-size: .92rem; width: 100%; }
table.results th, table.results td { padding: .35rem .45rem; border-bottom: 1px solid var(--line); vertical-align: top; }
/* A 1024 px projector: the cells break where breakCells() lets them, so that every column fits without scrolling. */
table.results .nw { white-space: nowrap; }
@media (max-width: 1280px) {
  html { font-size: 18px; }
  table.results { font-size: .85rem; }
  table.results th, table.results td { padding: .3rem .3rem; }
}
table.results th { text-align: left; font-size: .85rem; color: var(--muted); border-bottom: 2px solid var(--text); }
table.results td.num, table.results th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.results tbody tr:nth-child(even) { background: var(--zebra); }
table.results td.server { font-weight: bold; border-left: .6rem solid var(--server); }
ul.cpu { margin: .2rem 0 1rem; padding-left: 1.2rem; }
figure.timeline { margin: 1rem 0 0; }
figure.timeline svg { display: block; width: 100%; height: auto; max-width: 100%; }
figure.timeline figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
`;

function swatch(colour: string, dashed = false): string {
  return dashed ? `<span class="swatch dashed" style="border-color:${colour}"></span>` : `<span class="swatch" style="background:${colour}"></span>`;
}

function key(colour: string, label: string, dashed = false): string {
  return `<span class="key">${swatch(colour, dashed)}${escapeMarkup(label)}</span>`;
}

/** The servers that appear in this run, each once, in the order they first appear. */
function serversOf(report: BenchReport): Array<{ name: string; colour: string }> {
  const seen = new Map<string, string>();
  for (const scenario of report.scenarios) {
    for (const target of scenario.targets) {
      const name = target.spec.kind === 'model' ? target.spec.model : target.spec.kind === 'remote' ? 'remote server' : 'ceiling';
      if (!seen.has(name)) seen.set(name, serverColour(target.spec));
    }
  }
  return [...seen].map(([name, colour]) => ({ name, colour }));
}

function legend(report: BenchReport): string {
  return [
    '<div class="legend" id="legend">',
    '<span class="title">Servers:</span>',
    ...serversOf(report).map(({ name, colour }) => key(colour, name)),
    '</div>',
    '<div class="legend">',
    '<span class="title">Timelines:</span>',
    key(TIMELINE_COLOURS.queued, 'waiting in the queue'),
    key(TIMELINE_COLOURS.served, 'being served'),
    key(TIMELINE_COLOURS.error, 'error'),
    key(TIMELINE_COLOURS.ideal, 'ideal makespan', true),
    '</div>',
  ].join('\n');
}

function header(report: BenchReport): string {
  const { run, machine } = report;
  const stamp = resultStamp(run.createdAt);
  const when = runDate(run);
  return [
    '<header class="run">',
    `<h1>socklab bench <span class="when">${escapeMarkup(when)}</span></h1>`,
    `<p class="meta">${escapeMarkup(`${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}; socklab commit ${machine.gitCommit}`)}</p>`,
    `<p class="meta"><code>${escapeMarkup(run.command)}</code>: ${runExtent(report)}. ` +
      `The same run as <a href="${escapeMarkup(stamp)}.md">Markdown</a> and <a href="${escapeMarkup(stamp)}.json">JSON</a>.</p>`,
    ...(report.ceilingCheck === undefined ? [] : [`<p class="meta">${escapeMarkup(ceilingCheckSentence(report.ceilingCheck))}</p>`]),
    legend(report),
    `<nav>${report.scenarios.map((s) => `<a href="#scenario-${escapeMarkup(s.scenario)}">${escapeMarkup(s.scenario)}</a>`).join('')}</nav>`,
    '</header>',
  ].join('\n');
}

/** A bar per server: its mean makespan, the ideal dashed across it; one scale per scenario. */
function makespanBars(scenario: ScenarioReport): string {
  const longest = Math.max(1, ...scenario.targets.map((t) => Math.max(t.summary.makespanMs.mean, t.summary.idealMs ?? 0)));
  const percent = (ms: number) => `${((ms / longest) * 100).toFixed(2)}%`;
  const rows = scenario.targets.map((target: TargetReport) => {
    const { makespanMs, idealMs, idealRatio } = target.summary;
    const colour = serverColour(target.spec);
    const ideal = idealMs === null ? '' : `<span class="ideal" style="left:${percent(idealMs)}" title="ideal ${escapeMarkup(formatMs(idealMs))}"></span>`;
    return [
      `<span class="who">${swatch(colour)}${escapeMarkup(target.label)}</span>`,
      `<span class="track"><span class="bar" style="width:${percent(makespanMs.mean)};background:${colour}"></span>${ideal}</span>`,
      `<span class="value">${escapeMarkup(formatMs(makespanMs.mean))}${idealRatio === null ? '' : ` (${idealRatio.toFixed(2)}× ideal)`}</span>`,
    ].join('');
  });
  return `<div class="makespan" role="img" aria-label="makespan per server">\n${rows.join('\n')}\n</div>`;
}

/** A word that belongs to the number before it: `6.44 s`, `73.1 MiB`, `12.6 %`. */
const UNIT = /^(s|ms|B|KiB|MiB|GiB|%)$/;

/**
 * A table cell as HTML that breaks only between its parts: after each ` / `
 * of a series, before `±` and `(n=…)`, between words; never inside `6.44 s`,
 * `73.1 MiB` or `--threads 4`. A narrow screen (a 1024 px projector) then gets
 * cells of two or three lines instead of a table to scroll sideways. The
 * text itself is unchanged (copied, it reads as in the Markdown report).
 */
export function breakableCell(cell: string): string {
  const pieces: string[] = [];
  for (const word of cell.split(' ')) {
    const previous = pieces.at(-1);
    const joinsPrevious = previous !== undefined && (word === '/' || (UNIT.test(word) && /\d$/.test(previous)) || /^--\S+$/.test(previous));
    if (joinsPrevious) pieces[pieces.length - 1] = `${previous} ${word}`;
    else pieces.push(word);
  }
  return pieces.map((piece) => `<span class="nw">${escapeMarkup(piece)}</span>`).join(' ');
}

function table(scenario: ScenarioReport): string {
  const { columns, rows } = tableCells(scenario);
  // Headers in their two-line form (`sessions per s`), which can break, so that a narrow value column stays narrow.
  const head = columns.map((c) => `<th${c.align === 'right' ? ' class="num"' : ''}>${escapeMarkup(c.split?.join(' ').trim() ?? c.header)}</th>`).join('');
  const body = rows.map((cells, index) => {
    const target = scenario.targets[index];
    const colour = target === undefined ? SERVER_COLOURS.remote : serverColour(target.spec);
    const tds = cells.map((cell, i) => {
      if (i === 0) return `<td class="server">${breakableCell(cell)}</td>`;
      return `<td${columns[i]?.align === 'right' ? ' class="num"' : ''}>${breakableCell(cell)}</td>`;
    });
    return `<tr style="--server:${colour}">${tds.join('')}</tr>`;
  });
  return `<div class="table-wrap"><table class="results">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body.join('\n')}\n</tbody>\n</table></div>`;
}

/** Under the table: where the CPU went in each target's runs (nothing for a report recorded before these figures). */
function cpuUse(scenario: ScenarioReport): string {
  const use = cpuUseLines(scenario);
  if (use === null) return '';
  const items = use.lines.map((line) => `<li><b>${escapeMarkup(line.label)}</b>: ${escapeMarkup(line.figures)}</li>`);
  return `<p class="meta">${escapeMarkup(use.heading)}:</p>\n<ul class="cpu meta">\n${items.join('\n')}\n</ul>`;
}

function section(scenario: ScenarioReport): string {
  const name = escapeMarkup(scenario.scenario);
  const svg = timelineSvg(scenario, { panelColour: (target) => serverColour(target.spec), panelsPerRow: PANELS_PER_ROW }).trimEnd();
  return [
    `<section class="scenario" id="scenario-${name}" data-scenario="${name}">`,
    `<h2>${name}<span class="what">${escapeMarkup(SCENARIOS[scenario.scenario].summary)}</span></h2>`,
    `<p class="story">${escapeMarkup(scenario.sentences.join(' '))}</p>`,
    makespanBars(scenario),
    table(scenario),
    cpuUse(scenario),
    '<figure class="timeline">',
    svg,
    `<figcaption><code>socklab load ${name} ${escapeMarkup(scenario.flags)}</code>. Ideal makespan: ${escapeMarkup(scenario.idealDefinition)}.</figcaption>`,
    '</figure>',
    '</section>',
  ].join('\n');
}

/** The whole page, one self-contained file. */
export function htmlReport(report: BenchReport): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>socklab bench ${escapeMarkup(resultStamp(report.run.createdAt))}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    header(report),
    '<main>',
    ...report.scenarios.map(section),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** Writes `dir`/index.html for this run; returns its path. */
export function writeHtmlReport(dir: string, report: BenchReport): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'index.html');
  fs.writeFileSync(file, htmlReport(report));
  return file;
}

/** `node dist/bench/report/report-html.js [dir]`: index.html again from dir/latest.json (default: results/). */
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../results'));
  const latest = path.join(dir, 'latest.json');
  if (!fs.existsSync(latest)) {
    process.stderr.write(`socklab: no ${latest}: run "npm run bench" first\n`);
    process.exit(1);
  }
  const written = writeHtmlReport(dir, JSON.parse(fs.readFileSync(latest, 'utf8')) as BenchReport);
  process.stdout.write(`wrote ${path.relative(process.cwd(), written) || written}\n`);
}
