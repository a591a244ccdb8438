/** How client output looks: the file table of LIST, digests. */
import type { FileDigest, RemoteFile } from '../protocol/index.js';

/** mtime as `2024-05-01 12:34:56Z`: ISO 8601 UTC, to the second, easy to read. */
export function formatTime(date: Date): string {
  return Number.isNaN(date.getTime()) ? '?' : date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/**
 * A small table: size, mtime, name. The name comes last, so names in any
 * script (and of any display width) do not push the other columns around.
 */
export function formatFileTable(files: readonly RemoteFile[]): string {
  if (files.length === 0) return '(no files on the server)\n';
  const rows = files.map((f) => [String(f.size), formatTime(f.mtime), f.name] as const);
  const sizeWidth = Math.max('SIZE'.length, ...rows.map((r) => r[0].length));
  const timeWidth = Math.max('MODIFIED (UTC)'.length, ...rows.map((r) => r[1].length));
  const line = (size: string, time: string, name: string) => `${size.padStart(sizeWidth)}  ${time.padEnd(timeWidth)}  ${name}\n`;
  const total = files.reduce((sum, f) => sum + f.size, 0);
  return (
    line('SIZE', 'MODIFIED (UTC)', 'NAME') +
    rows.map((r) => line(...r)).join('') +
    `${files.length} ${files.length === 1 ? 'file' : 'files'}, ${total} bytes\n`
  );
}

export function filesAsJson(files: readonly RemoteFile[]): string {
  return `${JSON.stringify(
    files.map((f) => ({ name: f.name, size: f.size, mtime: Number.isNaN(f.mtime.getTime()) ? null : f.mtime.toISOString() })),
    null,
    2,
  )}\n`;
}

export function formatDigest(name: string, digest: FileDigest): string {
  return `name    ${name}\nsize    ${digest.size}\nsha256  ${digest.sha256}\n`;
}
