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

/** Text for people fits this many columns unless --wide says otherwise: a projector, an 80×24 terminal. */
export const OUTPUT_COLUMNS = 100;

/** How wide a command's tables and sentences may be: its terminal when narrower than OUTPUT_COLUMNS; with --wide, unlimited. */
export function outputWidth(wide: boolean): number {
  if (wide) return Number.POSITIVE_INFINITY;
  const columns = process.stdout.isTTY === true ? process.stdout.columns || OUTPUT_COLUMNS : OUTPUT_COLUMNS;
  return Math.min(OUTPUT_COLUMNS, columns);
}

export function withConnectionOptions<T>(yargs: Argv<T>) {
  return yargs
    .option('host', { type: 'string', default: DEFAULT_HOST, describe: 'server address' })
    .option('port', { type: 'number', default: DEFAULT_PORT, describe: 'server port' });
}

export function checkedPort(port: number): number {
  return checkInteger(port, '--port', 0, 65535);
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
