/**
 * The "append to large files" attack of `npm run torture`: clients that append
 * small records, over and over and at the same time, to one large file, as a
 * log writer would, or as a hostile client would to make every append cost the
 * whole file. Against a real server process; it checks that
 *
 * - every append is acknowledged with the right size and sha256, and the file
 *   ends as the large start, untouched, followed by every record whole, once;
 * - the server's I/O stays in proportion to the appended bytes, not to the
 *   file (Linux: /proc/<pid>/io), and no append waits for a copy of the file;
 * - an append that would take the file past --max-file-size gets 552 before
 *   its 150, the file unchanged;
 * - the server still answers a PING from another client meanwhile (not for
 *   sequential, which serves one client at a time by design).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ServerModelName } from '../../servers/index.js';
import { WireClient } from '../helpers/wire.js';
import { ServerProcess } from './processes.js';

export interface LargeAppendOptions {
  readonly model: ServerModelName;
  /** A directory of its own; created. */
  readonly root: string;
  readonly fileBytes: number;
  readonly clients: number;
  readonly appendsPerClient: number;
}

export interface LargeAppendReport {
  readonly appends: number;
  readonly meanAppendMs: number;
  readonly maxAppendMs: number;
  /** Bytes the server process wrote during the attack, or null where /proc/<pid>/io is missing. */
  readonly serverWrittenBytes: number | null;
  readonly appendedBytes: number;
  readonly maxPingMs: number | null;
  readonly failures: readonly string[];
}

const NAME = 'large.log';
const STEP_TIMEOUT_MS = 60_000;
/** Server I/O allowed per appended byte (received into a temporary file, then written in place), plus a fixed margin per append. */
const IO_PER_BYTE = 4;
const IO_PER_APPEND = 16 * 1024;

function record(client: number, index: number): Buffer {
  return Buffer.from(`client ${client} append ${index} ${'.'.repeat((client * 7 + index * 13) % 50)}\n`);
}

function writtenBytes(pid: number): number | null {
  try {
    return Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1]);
  } catch {
    return null;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function connect(port: number): Promise<WireClient> {
  const c = await WireClient.connect(port, { timeoutMs: STEP_TIMEOUT_MS });
  await c.readLine(STEP_TIMEOUT_MS);
  return c;
}

export async function largeAppendAttack(options: LargeAppendOptions): Promise<LargeAppendReport> {
  const failures: string[] = [];
  fs.mkdirSync(options.root, { recursive: true });
  const file = path.join(options.root, NAME);
  // The large start, written by the test (fast), with content that shows any corruption.
  const start = Buffer.alloc(options.fileBytes);
  for (let at = 0; at < start.length; at += 4) start.writeUInt32LE(at >>> 2, at);
  fs.writeFileSync(file, start);
  const startSha = sha256(start);
  const appendedBytes = Array.from({ length: options.clients }, (_, c) => Array.from({ length: options.appendsPerClient }, (_, i) => record(c, i).length)).flat().reduce((a, b) => a + b, 0);
  const limit = options.fileBytes + appendedBytes;
  const server = await ServerProcess.start(options.model, { root: options.root, args: ['--threads', String(options.clients + 2), '--quiet', '--max-file-size', String(limit)] });
  const durations: number[] = [];
  let maxPingMs: number | null = null;
  try {
    const writtenBefore = writtenBytes(server.pid);
    let appending = true;
    const pinger = async (): Promise<void> => {
      if (options.model === 'sequential') return;
      const c = await connect(server.port);
      try {
        while (appending) {
          const sent = performance.now();
          const reply = await c.request('PING', STEP_TIMEOUT_MS);
          if (reply !== '200 PONG') failures.push(`PING during the appends got ${reply}`);
          maxPingMs = Math.max(maxPingMs ?? 0, performance.now() - sent);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        c.destroy();
      }
    };
    const appender = async (client: number): Promise<void> => {
      const c = await connect(server.port);
      try {
        for (let i = 0; i < options.appendsPerClient; i++) {
          const data = record(client, i);
          const began = performance.now();
          const first = await c.request(`PUT ${NAME} ${data.length} mode=append`, STEP_TIMEOUT_MS);
          if (first !== `150 send ${data.length} bytes`) {
            failures.push(`client ${client} append ${i}: ${first}`);
            return;
          }
          await c.send(data);
          const done = await c.readLine(STEP_TIMEOUT_MS);
          durations.push(performance.now() - began);
          const match = /^226 \S+ (\d+) ([0-9a-f]{64})$/.exec(done);
          if (match === null || match[2] !== sha256(data) || Number(match[1]) <= options.fileBytes) failures.push(`client ${client} append ${i}: ${done}`);
        }
        await c.request('QUIT', STEP_TIMEOUT_MS);
      } finally {
        c.destroy();
      }
    };
    const ping = pinger();
    await Promise.all(Array.from({ length: options.clients }, (_, c) => appender(c)));
    appending = false;
    await ping;
    const writtenAfter = writtenBytes(server.pid);
    const serverWrittenBytes = writtenBefore === null || writtenAfter === null ? null : writtenAfter - writtenBefore;
    const allowed = IO_PER_BYTE * appendedBytes + IO_PER_APPEND * durations.length;
    if (serverWrittenBytes !== null && serverWrittenBytes > allowed) {
      failures.push(`the server wrote ${serverWrittenBytes} bytes for ${appendedBytes} appended bytes (allowed ${allowed}): appends cost the file, not their bytes`);
    }

    // The file is full now: one byte more must be refused before its 150.
    const c = await connect(server.port);
    try {
      const over = await c.request(`PUT ${NAME} 1 mode=append`, STEP_TIMEOUT_MS);
      if (!over.startsWith('552 ')) failures.push(`an append past --max-file-size got ${over}, not 552`);
      await c.request('QUIT', STEP_TIMEOUT_MS);
    } finally {
      c.destroy();
    }

    const content = fs.readFileSync(file);
    if (sha256(content.subarray(0, options.fileBytes)) !== startSha) failures.push('the large start of the file changed');
    const expected = new Set<string>();
    for (let client = 0; client < options.clients; client++) for (let i = 0; i < options.appendsPerClient; i++) expected.add(record(client, i).toString());
    const lines = content.subarray(options.fileBytes).toString().split(/(?<=\n)/);
    for (const line of lines) if (!expected.delete(line)) failures.push(`a record that was not sent, or twice: ${JSON.stringify(line.slice(0, 60))}`);
    if (expected.size > 0) failures.push(`${expected.size} acknowledged records are missing`);
    if (content.length !== limit) failures.push(`the file is ${content.length} bytes, expected ${limit}`);
    const mean = durations.reduce((a, b) => a + b, 0) / Math.max(1, durations.length);
    return { appends: durations.length, meanAppendMs: mean, maxAppendMs: Math.max(0, ...durations), serverWrittenBytes, appendedBytes, maxPingMs, failures: failures.slice(0, 20) };
  } finally {
    await server.stop();
  }
}

export function describeLargeAppends(options: LargeAppendOptions, report: LargeAppendReport): string {
  const written = report.serverWrittenBytes === null ? 'server I/O not measurable here' : `the server wrote ${report.serverWrittenBytes} bytes for ${report.appendedBytes} appended`;
  const ping = report.maxPingMs === null ? '' : `, slowest PING meanwhile ${report.maxPingMs.toFixed(1)} ms`;
  return (
    `${report.appends} appends to a ${(options.fileBytes / 1024 / 1024).toFixed(0)} MiB file by ${options.clients} clients: ` +
    `mean ${report.meanAppendMs.toFixed(1)} ms, max ${report.maxAppendMs.toFixed(1)} ms, ${written}${ping}; ${report.failures.length === 0 ? 'held' : `${report.failures.length} failures`}`
  );
}
