/**
 * How the user can run socklab from where they are, for the commands the
 * tool itself suggests ("start one with `… server async`", the demo's `… load
 * chat`, --help's examples), so that a hint can be copied and pasted as it is:
 *
 * - `socklab` when that name on the PATH is this very program (after `npm
 *   link` or `npm install -g .` in the clone);
 * - `npx socklab` inside the clone: npx runs the bin of the package whose
 *   folder it is in. Anywhere else it would look the name up in the npm
 *   registry instead (and run whatever package of that name it found there);
 * - otherwise `node /path/to/clone/dist/bin/socklab.js`, which works anywhere.
 *
 * A program that runs socklab in the user's stead under another name says
 * what the user typed in SOCKLAB_COMMAND (the guides' test runs their `npx
 * socklab` as `node …/socklab.js`, in a folder outside the clone).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This program: dist/bin/socklab.js in the clone. */
export const SOCKLAB_PROGRAM = path.join(path.dirname(fileURLToPath(import.meta.url)), 'socklab.js');
/** The clone: the folder holding package.json, two levels above dist/bin/. */
const PACKAGE_ROOT = path.resolve(path.dirname(SOCKLAB_PROGRAM), '../..');

function realPath(file: string): string | null {
  try {
    return fs.realpathSync(file);
  } catch {
    return null;
  }
}

/**
 * Folders npm puts first on the PATH of what it runs (`npx`'s own cache,
 * node_modules/.bin for `npm run`): the user's shell has none of them.
 */
function addedByNpm(dir: string): boolean {
  const parts = path.resolve(dir).split(path.sep);
  return parts.includes('_npx') || (parts.at(-1) === '.bin' && parts.at(-2) === 'node_modules');
}

/** Whether `socklab` on the user's PATH, the first one their shell would find, is this program. */
function onPath(pathVariable: string): boolean {
  const program = realPath(SOCKLAB_PROGRAM);
  for (const dir of pathVariable.split(path.delimiter)) {
    if (dir === '' || addedByNpm(dir)) continue;
    const found = realPath(path.join(dir, 'socklab'));
    if (found !== null) return found === program;
  }
  return false;
}

function isInside(dir: string, root: string): boolean {
  const relative = path.relative(root, dir);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** A path as a shell word: quoted only when it needs to be. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** The words that run socklab from `cwd`: `socklab`, `npx socklab` or `node /…/dist/bin/socklab.js`. */
export function socklabCommand(cwd = process.cwd(), pathVariable = process.env.PATH ?? ''): string {
  const given = process.env.SOCKLAB_COMMAND?.trim();
  if (given !== undefined && given !== '') return given;
  if (onPath(pathVariable)) return 'socklab';
  if (isInside(realPath(cwd) ?? cwd, realPath(PACKAGE_ROOT) ?? PACKAGE_ROOT)) return 'npx socklab';
  return `node ${shellWord(SOCKLAB_PROGRAM)}`;
}
