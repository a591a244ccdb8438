/**
 * The worker half of test/transport/thread-relay.test.ts: runs BlockingRelayIO
 * in a real worker thread, following a small script, and reports what its
 * reads and writes saw. Not a test file itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConnectionError } from '../../protocol/index.js';
import { BlockingRelayIO } from '../../transport/thread-relay.js';

export interface RelayWorkerScript {
  readonly channel: SharedArrayBuffer;
  readonly idleTimeoutMs: number;
  /** Sleep this long after announcing itself and before the first read (the main thread meanwhile relays, then pauses). */
  readonly sleepBeforeReadingMs: number;
  /** Sleep this long after each read that brought bytes (a session busy with them). */
  readonly sleepAfterBytesMs: number;
  /** Write every chunk read straight back. */
  readonly echo: boolean;
  /** Before reading, write this many bytes (in 64 KiB chunks). */
  readonly writeFirstBytes: number;
  /** Written after the read loop ends, before done(): what a session says when it is stopped (a 421). */
  readonly lastWords: string;
}

export interface RelayWorkerReport {
  readonly received: number;
  /** Every signal read, in order (the last one ended the loop unless it was 'shutdown'). */
  readonly signals: readonly string[];
  /** Bytes written before a write failed, and the failure's code, if one did. */
  readonly written: number;
  readonly writeErrorCode: string | null;
}

const script = workerData as RelayWorkerScript;
const io = new BlockingRelayIO(script.channel);
const report = { received: 0, signals: [] as string[], written: 0, writeErrorCode: null as string | null };

function write(bytes: Uint8Array): boolean {
  const length = bytes.length;
  try {
    io.write(bytes);
    io.flush();
    report.written += length;
    return true;
  } catch (error) {
    if (!(error instanceof ConnectionError)) throw error;
    report.writeErrorCode = error.code;
    return false;
  }
}

let writable = true;
const CHUNK = 64 * 1024;
for (let sent = 0; writable && sent < script.writeFirstBytes; sent += CHUNK) writable = write(new Uint8Array(Math.min(CHUNK, script.writeFirstBytes - sent)).fill(0x61));
function sleep(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

sleep(script.sleepBeforeReadingMs);
for (;;) {
  const got = io.read();
  if (got instanceof Uint8Array) {
    report.received += got.length;
    sleep(script.sleepAfterBytesMs);
    if (script.echo && writable) writable = write(got);
    continue;
  }
  report.signals.push(got);
  if (got !== 'shutdown') break;
}
if (script.lastWords !== '' && writable) write(Buffer.from(script.lastWords));
io.done();
parentPort?.postMessage(report satisfies RelayWorkerReport);
