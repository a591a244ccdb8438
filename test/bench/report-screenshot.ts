/**
 * `npm run screenshot`: draws docs/report-screenshot.png, the picture of
 * results/index.html that the guides show. The report is the synthetic one of
 * the browser test (fixtureReport(): round numbers, not a measured run), so
 * the picture changes only when the report's look does. Run it after changing
 * bench/report/report-html.ts, and commit the PNG with that change. The browser
 * is the one SOCKLAB_CHROMIUM says (test/bench/browser.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeHtmlReport } from '../../bench/report/report-html.js';
import { openBrowser, REPORT_VIEWPORT, screenshotReportTop } from './browser.js';
import { fixtureReport } from './fixtures.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCREENSHOT = path.join(REPO, 'docs', 'report-screenshot.png');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-screenshot-'));
try {
  const browser = await openBrowser(REPORT_VIEWPORT);
  try {
    await browser.page.goto(pathToFileURL(writeHtmlReport(dir, fixtureReport())).href, { waitUntil: 'load' });
    const size = await screenshotReportTop(browser.page, SCREENSHOT);
    console.log(`${path.relative(REPO, SCREENSHOT)}: ${size.width}×${size.height}, drawn by ${browser.description}`);
  } finally {
    await browser.close();
  }
} catch (error) {
  console.error(`socklab screenshot: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
