/**
 * Headless Chromium for the report's browser test and for `npm run screenshot`,
 * driven by playwright-core, on a machine that has only Node.
 *
 * Which Chromium (SOCKLAB_CHROMIUM):
 * - unset: Debian's /usr/bin/chromium when it is installed, otherwise the one
 *   the devDependency @sparticuz/chromium ships inside its npm tarball;
 * - `npm`: always the npm one (to prove a machine without Debian's works);
 * - a path: that executable.
 *
 * The npm Chromium comes Brotli-compressed. Its executablePath() unpacks it
 * into os.tmpdir() itself (/tmp/chromium, /tmp/fonts, /tmp/lib*.so), and trusts
 * whatever /tmp/chromium it finds there, however stale or half-written. So it
 * runs here in a child whose TMPDIR is a fresh directory of ours, which is
 * removed when the browser closes: nothing is left in /tmp or shared between
 * runs. The child also claims to be Amazon Linux (AWS_LAMBDA_JS_RUNTIME), the
 * one way to have the package unpack the libraries the binary links against
 * (NSS, NSPR, expat), which a machine with only Node may not have; they go on
 * the browser's LD_LIBRARY_PATH. Fonts: the machine's, as for any program
 * (/etc/fonts/fonts.conf), plus the package's Open Sans (Latin and Cyrillic),
 * so that a machine with no fonts installed still draws every letter.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/** Flags for both Chromiums: no sandbox (tests may run as root), no GPU, nothing fetched in the background. */
const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** The npm build is chrome-headless-shell for serverless machines: no zygote, as its own args() ask. */
const NPM_LAUNCH_ARGS = ['--no-zygote'];

// ---------------------------------------------------------------------------
// The little of playwright-core used here. It is loaded at run time, so that
// the build does not depend on it and its absence fails in words.

export interface Route {
  request(): { url(): string };
  continue(): Promise<void>;
  abort(): Promise<void>;
}
export interface Page {
  route(url: string, handler: (route: Route) => Promise<void>): Promise<void>;
  goto(url: string, options?: { waitUntil?: 'load' }): Promise<unknown>;
  evaluate<R>(pageFunction: () => R): Promise<R>;
  screenshot(options: { path: string; fullPage: boolean; clip?: { x: number; y: number; width: number; height: number } }): Promise<Buffer>;
}
interface BrowserContext {
  pages(): Page[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface LaunchOptions {
  executablePath: string;
  headless: boolean;
  args: string[];
  env: NodeJS.ProcessEnv;
  viewport: { width: number; height: number };
  timeout: number;
}
interface Playwright {
  chromium: { launchPersistentContext(userDataDir: string, options: LaunchOptions): Promise<BrowserContext> };
}

async function importDevDependency<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    throw new Error(`${name} is not installed (it is a devDependency: npm install brings it): ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------

export interface OpenBrowser {
  readonly page: Page;
  /** Which Chromium this is, for the test's messages. */
  readonly description: string;
  /** Closes the browser and removes its profile and, for the npm one, the unpacked binary. */
  close(): Promise<void>;
}

interface Executable {
  readonly path: string;
  readonly description: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
}

/** Unpacks the npm Chromium into `dir` (see the header), returning how to launch it. */
function unpackNpmChromium(dir: string): Executable {
  let entry: string;
  try {
    entry = import.meta.resolve('@sparticuz/chromium');
  } catch (error) {
    throw new Error(`@sparticuz/chromium is not installed (it is a devDependency: npm install brings it): ${(error as Error).message}`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const unpack = `const { default: chromium } = await import(${JSON.stringify(entry)}); process.stdout.write(await chromium.executablePath());`;
  const executable = execFileSync(process.execPath, ['--input-type=module', '-e', unpack], {
    env: { ...process.env, TMPDIR: dir, AWS_LAMBDA_JS_RUNTIME: 'nodejs20.x' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (path.dirname(executable) !== dir) throw new Error(`@sparticuz/chromium unpacked to ${executable}, not into ${dir}`);
  const fontsConf = path.join(dir, 'socklab-fonts.conf');
  fs.writeFileSync(
    fontsConf,
    `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n` +
      `  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n` +
      `  <dir>${path.join(dir, 'fonts')}</dir>\n  <cachedir>${path.join(dir, 'fonts-cache')}</cachedir>\n</fontconfig>\n`,
  );
  const libraries = [path.join(dir, 'al2023', 'lib'), process.env.LD_LIBRARY_PATH].filter((p) => p !== undefined && p !== '').join(':');
  return {
    path: executable,
    description: `@sparticuz/chromium ${packageVersion(fileURLToPath(entry))} (npm)`,
    args: [...LAUNCH_ARGS, ...NPM_LAUNCH_ARGS],
    env: { ...process.env, LD_LIBRARY_PATH: libraries, FONTCONFIG_FILE: fontsConf },
  };
}

/** The version in the package.json nearest above `file`. */
function packageVersion(file: string): string {
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    const { name, version } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
    if (name !== undefined && version !== undefined) return version;
  }
  return 'of unknown version';
}

function chooseChromium(scratch: string): Executable {
  const wanted = process.env.SOCKLAB_CHROMIUM ?? '';
  const installed = (file: string): Executable => ({ path: file, description: file, args: LAUNCH_ARGS, env: process.env });
  if (wanted === 'npm') return unpackNpmChromium(scratch);
  if (wanted !== '') {
    if (!fs.existsSync(wanted)) throw new Error(`SOCKLAB_CHROMIUM=${wanted}: no such file (give a Chromium executable, or "npm" for the npm one)`);
    return installed(wanted);
  }
  return fs.existsSync(DEBIAN_CHROMIUM) ? installed(DEBIAN_CHROMIUM) : unpackNpmChromium(scratch);
}

/** Starts headless Chromium (the one SOCKLAB_CHROMIUM says, see the header) with one page of `viewport`. */
export async function openBrowser(viewport: { width: number; height: number }): Promise<OpenBrowser> {
  const { chromium } = await importDevDependency<Playwright>('playwright-core');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-chromium-'));
  const removeScratch = () => fs.rmSync(scratch, { recursive: true, force: true });
  try {
    const executable = chooseChromium(path.join(scratch, 'bin'));
    const context = await chromium.launchPersistentContext(path.join(scratch, 'profile'), {
      executablePath: executable.path,
      headless: true,
      args: executable.args,
      env: executable.env,
      viewport,
      timeout: 30_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    return {
      page,
      description: executable.description,
      close: async () => {
        try {
          await context.close();
        } finally {
          removeScratch();
        }
      },
    };
  } catch (error) {
    removeScratch();
    throw error;
  }
}

/** The viewport the report is looked at in: a wide projector screen. */
export const REPORT_VIEWPORT = { width: 1600, height: 1000 } as const;

/**
 * Saves a PNG of the top of the report open in `page`: the header, the legend
 * and the first scenario, which is what the projector shows first. Returns its
 * size in pixels.
 */
export async function screenshotReportTop(page: Page, file: string): Promise<{ width: number; height: number }> {
  const firstSectionBottom = await page.evaluate(() => {
    const page = globalThis as any;
    return (page.document.querySelector('section.scenario')?.getBoundingClientRect().bottom ?? 0) + page.scrollY;
  });
  if (!(firstSectionBottom > 0)) throw new Error('the report has no scenario section to show');
  const size = { width: REPORT_VIEWPORT.width, height: Math.ceil(firstSectionBottom) + 24 };
  await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: 0, ...size } });
  return size;
}
