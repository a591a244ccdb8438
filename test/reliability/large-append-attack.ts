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
import fs from 'node:fs';
import path from 'node:path';
import type { ServerModelName } from '../../servers/index.js';
import { WireClient } from '../helpers/wire.js';
import { ServerProcess } from './processes.js';
import { sha256 } from '../protocol/fixtures.js';

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

export const LARGE_FILE_NAME = 'large.log';
const STEP_TIMEOUT_MS = 60_000;
/** Server I/O allowed per appended byte (received into a temporary file, then written in place), plus a fixed margin per append. */
const IO_PER_BYTE = 4;
const IO_PER_APPEND = 16 * 1024;

/** Record `index` of appender `client`: one line, its length varying with both. */
export function appendRecord(client: number, index: number): Buffer {
  return Buffer.from(`client ${client} append ${index} ${'.'.repeat((client * 7 + index * 13) % 50)}\n`);
}

function writtenBytes(pid: number): number | null {
  try {
    return Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1]);
  } catch {
    return null;
  }
}

/** A client past the greeting. */
export async function greetedClient(port: number, timeoutMs = STEP_TIMEOUT_MS): Promise<WireClient> {
  const c = await WireClient.connect(port, { timeoutMs });
  await c.readLine(timeoutMs);
  return c;
}

/**
 * The large start of a file to append to, written by the test (fast), with
 * content that shows any corruption. Returns what the check needs.
 */
export function writeLargeStart(file: string, bytes: number): LargeStart {
  const start = Buffer.alloc(bytes);
  for (let at = 0; at < start.length; at += 4) start.writeUInt32LE(at >>> 2, at);
  fs.writeFileSync(file, start);
  return { file, bytes, sha256: sha256(start) };
}

export interface LargeStart {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * What was appended to a large file, and the check that its content is what
 * the issue asks of an append, even one cut off: the large start untouched,
 * then whole records only, each once, every acknowledged one present, and a
 * record whose `226` never came (its client left) either whole or absent.
 */
export class AppendLedger {
  private readonly acknowledged = new Set<string>();
  private readonly unacknowledged = new Set<string>();

  constructor(readonly start: LargeStart) {}

  get acknowledgedCount(): number {
    return this.acknowledged.size;
  }

  /** Its `226` came, with the right size and sha256: it must be in the file. */
  landed(record: Buffer): void {
    this.acknowledged.add(record.toString());
  }

  /** Its client left before the `226` (with all of it sent or not): whole or absent. */
  leftBeforeReply(record: Buffer): void {
    this.unacknowledged.add(record.toString());
  }

  /** What is wrong with the file now (empty: nothing). */
  check(): string[] {
    const failures: string[] = [];
    const content = fs.readFileSync(this.start.file);
    if (content.length < this.start.bytes || sha256(content.subarray(0, this.start.bytes)) !== this.start.sha256) failures.push('the large start of the file changed');
    const missing = new Set(this.acknowledged);
    const maybe = new Set(this.unacknowledged);
    const tail = content.subarray(this.start.bytes).toString();
    for (const line of tail === '' ? [] : tail.split(/(?<=\n)/)) {
      if (!missing.delete(line) && !maybe.delete(line)) failures.push(`a record that was not sent whole, or twice: ${JSON.stringify(line.slice(0, 60))}`);
    }
    if (missing.size > 0) failures.push(`${missing.size} acknowledged records are missing`);
    return failures;
  }
}

/**
 * One append of `data` to `name` on a greeted connection: `150`, the data,
 * then a `226` with the data's sha256. Returns how long it took and the size
 * the server reported, or throws saying what came instead.
 */
export async function appendOnce(c: WireClient, name: string, data: Buffer, timeoutMs = STEP_TIMEOUT_MS): Promise<{ tookMs: number; fileBytes: number }> {
  const began = performance.now();
  const first = await c.request(`PUT ${name} ${data.length} mode=append`, timeoutMs);
  if (first !== `150 send ${data.length} bytes`) throw new Error(`PUT ${name} ${data.length} mode=append got ${first}`);
  await c.send(data);
  const done = await c.readLine(timeoutMs);
  const match = /^226 \S+ (\d+) ([0-9a-f]{64})$/.exec(done);
  if (match === null || match[2] !== sha256(data)) throw new Error(`an append of ${data.length} bytes got ${done}`);
  return { tookMs: performance.now() - began, fileBytes: Number(match[1]) };
}

/** Returns what is wrong (null: nothing) with an append of `bytes` to `name`, which would take it past --max-file-size: it must get 552 before its 150. */
export async function appendPastLimitRefused(port: number, name: string, bytes: number): Promise<string | null> {
  const c = await greetedClient(port);
  try {
    const over = await c.request(`PUT ${name} ${bytes} mode=append`, STEP_TIMEOUT_MS);
    await c.request('QUIT', STEP_TIMEOUT_MS);
    return over.startsWith('552 ') ? null : `an append past --max-file-size got ${over}, not 552`;
  } finally {
    c.destroy();
  }
}

export async function largeAppendAttack(options: LargeAppendOptions): Promise<LargeAppendReport> {
  const failures: string[] = [];
  fs.mkdirSync(options.root, { recursive: true });
  const ledger = new AppendLedger(writeLargeStart(path.join(options.root, LARGE_FILE_NAME), options.fileBytes));
  const appendedBytes = Array.from({ length: options.clients }, (_, c) => Array.from({ length: options.appendsPerClient }, (_, i) => appendRecord(c, i).length)).flat().reduce((a, b) => a + b, 0);
  const limit = options.fileBytes + appendedBytes;
  const server = await ServerProcess.start(options.model, { root: options.root, args: ['--threads', String(options.clients + 2), '--quiet', '--max-file-size', String(limit)] });
  const durations: number[] = [];
  let maxPingMs: number | null = null;
  try {
    const writtenBefore = writtenBytes(server.pid);
    let appending = true;
    const pinger = async (): Promise<void> => {
      if (options.model === 'sequential') return;
      const c = await greetedClient(server.port);
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
      const c = await greetedClient(server.port);
      try {
        for (let i = 0; i < options.appendsPerClient; i++) {
          const data = appendRecord(client, i);
          try {
            const appended = await appendOnce(c, LARGE_FILE_NAME, data);
            durations.push(appended.tookMs);
            ledger.landed(data);
            if (appended.fileBytes <= options.fileBytes) failures.push(`client ${client} append ${i}: the file is now ${appended.fileBytes} bytes, less than its start`);
          } catch (error) {
            failures.push(`client ${client} append ${i}: ${(error as Error).message}`);
            return;
          }
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
    const refused = await appendPastLimitRefused(server.port, LARGE_FILE_NAME, 1);
    if (refused !== null) failures.push(refused);

    failures.push(...ledger.check());
    const size = fs.statSync(ledger.start.file).size;
    if (size !== limit) failures.push(`the file is ${size} bytes, expected ${limit}`);
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
