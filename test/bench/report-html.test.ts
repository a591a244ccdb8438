/**
 * results/index.html in a real browser: headless Chromium (driven by
 * playwright-core; Debian's when installed, else the one the devDependency
 * @sparticuz/chromium ships, see browser.ts) opens the report of a synthetic
 * run and the test checks what the class would see: every scenario's table and
 * timeline picture drawn with a size, the servers' colours the same in the
 * legend, the tables and the pictures, large type, and not one request beyond
 * the file itself. It takes the screenshot the docs show, into a temporary
 * directory: `npm run screenshot` is what rewrites docs/report-screenshot.png.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import { htmlReport, SERVER_COLOURS, writeHtmlReport } from '../../bench/report/report-html.js';
import type { BenchReport } from '../../bench/report/report-markdown.js';
import { openBrowser, REPORT_VIEWPORT, screenshotReportTop } from './browser.js';
import { fixtureReport } from './fixtures.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const REGENERATE = path.join(REPO, 'dist', 'bench', 'report', 'report-html.js');

/** Width and height from a PNG's header (its IHDR chunk), or null when the bytes are not a PNG. */
function pngSize(bytes: Buffer): { width: number; height: number } | null {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(signature) || bytes.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

// ---------------------------------------------------------------------------
// What the page shows, measured in the page. The function runs in the browser
// (serialized by playwright), so it reaches the DOM through globalThis.

interface Box {
  readonly width: number;
  readonly height: number;
}
interface ScenarioView {
  readonly name: string;
  readonly table: Box;
  readonly rowLabels: string[];
  readonly rowColours: string[];
  readonly picture: Box;
  /** "Being served" bars drawn in the picture's panels, each with a size of its own. */
  readonly servedBars: number;
  /** Panel titles in the picture, by their colour. */
  readonly panelTitles: Array<{ text: string; colour: string }>;
  readonly makespanBars: number;
}
interface PageView {
  readonly title: string;
  readonly bodyFontPx: number;
  readonly headingFontPx: number;
  readonly cellFontPx: number;
  readonly legend: Array<{ text: string; colour: string }>;
  readonly scenarios: ScenarioView[];
  /** Where the first scenario's section ends, from the top of the page. */
  readonly firstSectionBottom: number;
  /** The whole page's height. */
  readonly pageHeight: number;
}

function lookAtPage(): PageView {
  const page = globalThis as any;
  const doc = page.document;
  const box = (element: { getBoundingClientRect(): Box } | null): Box => {
    const rect = element?.getBoundingClientRect();
    return { width: rect?.width ?? 0, height: rect?.height ?? 0 };
  };
  const px = (selector: string) => parseFloat(page.getComputedStyle(doc.querySelector(selector)).fontSize);
  const all = (root: any, selector: string): any[] => Array.from(root.querySelectorAll(selector));
  return {
    title: doc.title,
    bodyFontPx: px('body'),
    headingFontPx: px('h2'),
    cellFontPx: px('table.results td'),
    legend: all(doc, '#legend .key').map((key) => ({
      text: key.textContent.trim(),
      colour: page.getComputedStyle(key.querySelector('.swatch')).backgroundColor,
    })),
    firstSectionBottom: (doc.querySelector('section.scenario')?.getBoundingClientRect().bottom ?? 0) + page.scrollY,
    pageHeight: doc.documentElement.scrollHeight,
    scenarios: all(doc, 'section.scenario').map((section) => {
      const svg = section.querySelector('figure.timeline svg');
      return {
        name: section.dataset.scenario,
        table: box(section.querySelector('table.results')),
        rowLabels: all(section, 'table.results tbody td.server').map((td) => td.textContent.trim()),
        rowColours: all(section, 'table.results tbody td.server').map((td) => page.getComputedStyle(td).borderLeftColor),
        picture: box(svg),
        servedBars: all(svg, 'g > rect[fill="#2b6cb0"]').filter((rect) => {
          const r = rect.getBoundingClientRect();
          return r.width > 0 && r.height > 0;
        }).length,
        panelTitles: all(svg, 'g > text[font-weight="bold"]').map((text) => ({ text: text.textContent, colour: page.getComputedStyle(text).fill })),
        makespanBars: all(section, '.makespan .bar').filter((bar) => bar.getBoundingClientRect().width > 0).length,
      };
    }),
  };
}

/** `#c2185b` → `rgb(194, 24, 91)`, as computed styles give colours. */
function rgb(hex: string): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}

const report = fixtureReport();

t.test('the page is one self-contained file: no script, no link, nothing fetched', async (t) => {
  const html = htmlReport(report);
  t.match(html, /^<!doctype html>\n<html lang="en">/);
  t.notMatch(html, /<script|<link|<img|<iframe|@import|url\(/i, 'no script, style sheet, image or font to load');
  t.notMatch(html, /\ssrc=/i, 'no src attribute');
  const addresses = html.match(/https?:\/\/[^\s"'<>)]+/g) ?? [];
  t.same([...new Set(addresses)], ['http://www.w3.org/2000/svg'], 'the only address is the SVG namespace, which is never fetched');
  for (const scenario of report.scenarios) {
    t.match(html, new RegExp(`<section class="scenario" id="scenario-${scenario.scenario}" data-scenario="${scenario.scenario}">`));
  }
  t.equal(html.split('<svg xmlns').length - 1, report.scenarios.length, 'an inline SVG timeline per scenario');
});

t.test('index.html is written again from a run\'s latest.json', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-html-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(report));
  const run = spawnSync(process.execPath, [REGENERATE, dir], { encoding: 'utf8', timeout: 20_000 });
  t.equal(run.status, 0, run.stderr);
  t.equal(fs.readFileSync(path.join(dir, 'index.html'), 'utf8'), htmlReport(report), 'the same page as the bench writes');
  const missing = spawnSync(process.execPath, [REGENERATE, path.join(dir, 'nowhere')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(missing.status, 1);
  t.match(missing.stderr, /^socklab: no .*latest\.json: run "npm run bench" first\n$/);
});

t.test('headless Chromium draws every scenario: tables, pictures, legend, colours, large type', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-html-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = writeHtmlReport(dir, report);
  const pageUrl = pathToFileURL(file).href;

  const browser = await openBrowser(REPORT_VIEWPORT);
  t.comment(`browser: ${browser.description}`);
  try {
    const page = browser.page;
    const requests: string[] = [];
    await page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url === pageUrl) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(pageUrl, { waitUntil: 'load' });
    const view = await page.evaluate(lookAtPage);

    t.same(requests, [], 'the page asked for nothing beyond itself');
    t.equal(view.title, 'socklab bench 2025-03-04T09-15-00Z');
    t.ok(view.bodyFontPx >= 18, `body text is large: ${view.bodyFontPx}px`);
    t.ok(view.headingFontPx >= 32, `scenario headings are larger: ${view.headingFontPx}px`);
    t.ok(view.cellFontPx >= 16, `table cells read from afar: ${view.cellFontPx}px`);
    t.same(
      view.legend.map((key) => key.text),
      ['sequential', 'workers', 'async', 'ceiling'],
      'the legend names every server once',
    );
    for (const key of view.legend) t.equal(key.colour, rgb(SERVER_COLOURS[key.text as keyof typeof SERVER_COLOURS]), `legend: ${key.text} in its colour`);

    t.same(
      view.scenarios.map((s) => s.name),
      report.scenarios.map((s) => s.scenario),
      'a section per scenario, in the run\'s order',
    );
    for (const [index, scenario] of report.scenarios.entries()) {
      const seen = view.scenarios[index];
      if (seen === undefined) continue;
      const labels = scenario.targets.map((target) => target.label);
      const greeted = scenario.targets.reduce((sum, target) => sum + target.timeline.sessions.filter((s) => s.greeted !== null).length, 0);
      t.ok(seen.table.width > 0 && seen.table.height > 0, `${scenario.scenario}: the table is drawn (${Math.round(seen.table.width)}×${Math.round(seen.table.height)})`);
      t.same(seen.rowLabels, labels, `${scenario.scenario}: a row per server`);
      t.ok(seen.picture.width > 600 && seen.picture.height > 200, `${scenario.scenario}: the timeline is drawn (${Math.round(seen.picture.width)}×${Math.round(seen.picture.height)})`);
      t.equal(seen.servedBars, greeted, `${scenario.scenario}: every client's "being served" bar is drawn with a size`);
      t.equal(seen.makespanBars, labels.length, `${scenario.scenario}: a makespan bar per server`);
      t.same(
        seen.panelTitles.map((title) => title.text),
        labels,
        `${scenario.scenario}: a timeline panel per server`,
      );
      scenario.targets.forEach((target, i) => {
        const colour = rgb(target.spec.kind === 'model' ? SERVER_COLOURS[target.spec.model] : SERVER_COLOURS.ceiling);
        t.equal(seen.rowColours[i], colour, `${scenario.scenario}: ${target.label}'s table row in its colour`);
        t.equal(seen.panelTitles[i]?.colour, colour, `${scenario.scenario}: ${target.label}'s panel in the same colour`);
      });
    }

    // The picture the docs show (npm run screenshot draws it the same way into docs/).
    const screenshot = path.join(dir, 'report-screenshot.png');
    await screenshotReportTop(page, screenshot);
    const bytes = fs.readFileSync(screenshot);
    const size = pngSize(bytes);
    t.same(size, { width: REPORT_VIEWPORT.width, height: Math.ceil(view.firstSectionBottom) + 24 }, 'the screenshot is a PNG of the header, the legend and the first scenario, the width of the screen');
    t.ok(size !== null && size.height < view.pageHeight, `the top of the page, not all of it (${size?.height} of ${view.pageHeight} px)`);
    t.ok(bytes.length > 10_000, `and shows something (${bytes.length} bytes)`);
  } finally {
    await browser.close();
  }
});

t.test('on a 1024 px projector the reference run\'s tables fit: every column, errors included, without scrolling sideways', async (t) => {
  const reference = JSON.parse(fs.readFileSync(path.join(REPO, 'results', 'latest.json'), 'utf8')) as BenchReport;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-html-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pageUrl = pathToFileURL(writeHtmlReport(dir, reference)).href;
  const browser = await openBrowser({ width: 1024, height: 768 });
  try {
    const page = browser.page;
    await page.goto(pageUrl, { waitUntil: 'load' });
    const tables = await page.evaluate(() => {
      const doc = (globalThis as any).document;
      const viewport: number = doc.documentElement.clientWidth;
      return Array.from(doc.querySelectorAll('section.scenario')).map((section: any) => {
        const wrap = section.querySelector('.table-wrap');
        const lastHeader = Array.from(section.querySelectorAll('table.results th')).at(-1) as any;
        return {
          name: section.dataset.scenario as string,
          viewport,
          scrollWidth: wrap.scrollWidth as number,
          clientWidth: wrap.clientWidth as number,
          lastHeader: (lastHeader?.textContent ?? '') as string,
          lastHeaderRight: (lastHeader?.getBoundingClientRect().right ?? Infinity) as number,
        };
      });
    });
    t.equal(tables.length, reference.scenarios.length, 'a table per scenario');
    for (const table of tables) {
      t.ok(table.scrollWidth <= table.clientWidth, `${table.name}: the table needs no sideways scrolling (${table.scrollWidth} px in ${table.clientWidth})`);
      t.equal(table.lastHeader, 'errors', `${table.name}: its last column is errors`);
      t.ok(table.lastHeaderRight <= table.viewport, `${table.name}: and it is on the screen (right edge ${Math.round(table.lastHeaderRight)} of ${table.viewport} px)`);
    }
  } finally {
    await browser.close();
  }
});
