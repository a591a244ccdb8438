/**
 * Tests that need a program npm cannot bring (nc, strace, python3...).
 *
 * `npm install && npm test` must pass on a machine with only Node, so such a
 * test skips there, naming the tool and the Debian package that brings it.
 * In CI (`CI=true`, set by the CI runner; `.ci/run` installs every tool listed
 * in SYSTEM_TOOLS) a missing tool is a failure instead: a skip there would let
 * the guides and the durability checks go unproved.
 */
import { spawnSync } from 'node:child_process';

/** Every system tool a test may need, with the Debian package that brings it (.ci/run installs these). */
export const SYSTEM_TOOLS = {
  nc: 'netcat-openbsd',
  ss: 'iproute2',
  script: 'bsdutils',
  pkill: 'procps',
  pgrep: 'procps',
  ps: 'procps',
  strace: 'strace',
  python3: 'python3',
  seq: 'coreutils',
  sha256sum: 'coreutils',
  mkfifo: 'coreutils',
} as const;

export type SystemTool = keyof typeof SYSTEM_TOOLS;

const found = new Map<SystemTool, boolean>();

export function hasSystemTool(tool: SystemTool): boolean {
  let present = found.get(tool);
  if (present === undefined) {
    present = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
    found.set(tool, present);
  }
  return present;
}

export function inCI(): boolean {
  const value = process.env.CI;
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/** The tools of `tools` that are not installed. */
export function missingSystemTools(tools: readonly SystemTool[]): SystemTool[] {
  return tools.filter((tool) => !hasSystemTool(tool));
}

/** Why a test needing `tools` cannot run here, naming what to install; null when all are present. */
export function systemToolsProblem(tools: readonly SystemTool[]): string | null {
  const missing = missingSystemTools(tools);
  if (missing.length === 0) return null;
  const packages = [...new Set(missing.map((tool) => SYSTEM_TOOLS[tool]))].join(' ');
  return `needs ${missing.join(', ')}, not installed here (Debian: apt-get install ${packages})`;
}

/** What of a tap test the check uses: `plan(0, why)` is tap's way to skip a test from inside it. */
interface SkippableTest {
  plan(count: number, comment?: string): void;
  fail(message: string): boolean;
}

/**
 * True when every tool is present. Otherwise records a skip naming the missing
 * tools (outside CI) or a failure (in CI), and returns false: the caller returns.
 */
export function requireSystemTools(t: SkippableTest, ...tools: SystemTool[]): boolean {
  const problem = systemToolsProblem(tools);
  if (problem === null) return true;
  if (inCI()) t.fail(`${problem}: .ci/run installs it, so a missing tool in CI is a failure, not a skip`);
  else t.plan(0, problem);
  return false;
}
