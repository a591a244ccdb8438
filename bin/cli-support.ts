/**
 * What every socklab command shares: byte-size parsing, the common connection
 * options, and turning any failure into one sentence on stderr with a non-zero
 * exit (a stack trace only with SOCKLAB_DEBUG=1).
 */
import type { Argv } from 'yargs';
import { DEFAULT_HOST, DEFAULT_PORT, SocklabError } from '../protocol/index.js';

/** Bad input on the command line: the message names the problem and the fix. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** `65536`, `64KiB`, `16M`, `1.5GiB` → bytes. */
export function parseByteSize(text: string | number, option: string): number {
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$/i.exec(String(text));
  const unit = UNITS[match?.[2]?.toLowerCase() ?? 'x'];
  if (match === null || unit === undefined) {
    throw new UsageError(`${option} takes a byte count such as 1048576, 64KiB or 16MiB, not "${text}"`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${option} ${text} is too large`);
  return bytes;
}

/** The inverse of parseByteSize for a default shown in --help: 67108864 → `64MiB`, 1000 → `1000`. */
export function byteSizeText(bytes: number): string {
  for (const [suffix, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return String(bytes);
}

export function checkInteger(value: number, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${option} must be a whole number from ${min} to ${max}, not ${value}`);
  }
  return value;
}

/**
 * Node's timers hold at most 2^31 - 1 ms: a longer delay fires at once (with a
 * warning each time), which would turn "wait 30 days" into "do not wait".
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/**
 * A number of seconds for a timer: above 0, or 0 or more when `zeroMeans` says
 * what 0 does ("never"); at most MAX_TIMER_SECONDS (24 days).
 */
export function checkSeconds(value: number, option: string, zeroMeans?: string): number {
  const lowest = zeroMeans === undefined ? 'above 0' : `0 (${zeroMeans}) or more`;
  if (!Number.isFinite(value) || value < 0 || (value === 0 && zeroMeans === undefined) || value > MAX_TIMER_SECONDS) {
    throw new UsageError(`${option} takes a number of seconds ${lowest}, at most ${MAX_TIMER_SECONDS} (24 days), not ${value}`);
  }
  return value;
}

/** Text for people fits this many columns unless --wide says otherwise: a projector, an 80×24 terminal. */
export const OUTPUT_COLUMNS = 100;

/** How wide a command's tables and sentences may be: its terminal when narrower than OUTPUT_COLUMNS; with --wide, unlimited. */
export function outputWidth(wide: boolean): number {
  if (wide) return Number.POSITIVE_INFINITY;
  const columns = process.stdout.isTTY === true ? process.stdout.columns || OUTPUT_COLUMNS : OUTPUT_COLUMNS;
  return Math.min(OUTPUT_COLUMNS, columns);
}

export function withConnectionOptions<T>(yargs: Argv<T>) {
  return yargs.option('host', hostOption('server address', DEFAULT_HOST)).option('port', portOption('server port'));
}

export function checkedPort(port: number): number {
  return checkInteger(port, '--port', 0, 65535);
}

/*
 * --host, --port and --root are read as text and checked here. yargs alone
 * would take "" as port 0 and 0x10 as port 16, a bare `--port` (a shell
 * variable that was not set) as the default, and an empty --host as "every
 * network": a server meant for this machine would listen on all of them.
 * `nargs: 1` makes the bare option an error instead.
 */

/** The one value of an option given more than once, or a usage error that says so. */
function single(raw: unknown, option: string): string {
  if (Array.isArray(raw)) throw new UsageError(`${option} is given ${raw.length} times (${raw.join(', ')}): give it once`);
  return String(raw);
}

export function parsePort(raw: unknown, option = '--port'): number {
  const text = single(raw, option);
  if (!/^[0-9]+$/.test(text.trim())) throw new UsageError(`${option} takes a port number from 0 to 65535, not "${text}"`);
  return checkInteger(Number(text), option, 0, 65535);
}

export function parseHost(raw: unknown, option = '--host'): string {
  const text = single(raw, option);
  if (text.trim() === '') {
    throw new UsageError(`${option} is empty: give a name or an address, such as 127.0.0.1 (this machine only) or 0.0.0.0 (every network)`);
  }
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/([^/:]*)/i.exec(text);
  if (scheme !== null) throw new UsageError(`${option} takes a name or an address, not a URL: ${scheme[1] || 'the host part'} for "${text}"`);
  if (/\s/.test(text)) throw new UsageError(`${option} "${text}" has a space in it: give the name or the address alone, such as 127.0.0.1`);
  return text;
}

export function parseDirectory(raw: unknown, option: string): string {
  const text = single(raw, option);
  if (text === '') throw new UsageError(`${option} is empty: name a directory, such as ./storage (. for this one)`);
  return text;
}

export function portOption(describe: string) {
  return { type: 'string', default: String(DEFAULT_PORT), nargs: 1, describe, coerce: (raw: unknown) => parsePort(raw) } as const;
}

/** Without a default, leaving --host out means something of its own (load: start a server here). */
export function hostOption(describe: string, defaultHost?: string) {
  const option = { type: 'string', nargs: 1, describe, coerce: (raw: unknown) => (raw === undefined ? undefined : parseHost(raw)) } as const;
  return defaultHost === undefined ? option : { ...option, default: defaultHost };
}

/** The one line a user sees for a failure. */
export function describeFailure(error: unknown): string {
  if (error instanceof UsageError || error instanceof SocklabError) return error.message;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && error instanceof Error) return error.message;
  return `internal error: ${error instanceof Error ? error.message : String(error)} (run with SOCKLAB_DEBUG=1 for details, and please report it)`;
}

export function exitWithFailure(error: unknown): never {
  process.stderr.write(`socklab: ${describeFailure(error)}\n`);
  if (process.env.SOCKLAB_DEBUG === '1' && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
}
