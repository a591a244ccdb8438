/**
 * The crash harness behind crash.test.ts (a few trials per model) and
 * torture.ts (as many as you like). Two kinds of trial, both on a real server
 * process over one storage root that lives for the whole campaign:
 *
 * - Client killed: a child process starts an upload, sends a random number of
 *   its bytes (from none, before even reading `150`, to all but one) and is
 *   SIGKILLed. Then: the target is unchanged, no temporary file remains once
 *   the session is gone, and the server serves the next client.
 *
 * - Server killed: a few clients upload (new / overwrite / append to names of
 *   their own, and appends of self-describing blocks to one shared log) while
 *   the server is SIGKILLed at a random instant once some upload has been
 *   acknowledged: at a random time, in the middle of some upload's data, or 0
 *   to 8 ms after some upload's last byte, which is when the server fsyncs,
 *   renames and replies (mid-commit). Then the
 *   server is restarted on the same root and, as Jepsen checks acknowledged
 *   writes, every file is checked against the history the clients recorded:
 *   each is exactly its last acknowledged state, or that state with the one
 *   upload that was in flight applied whole; every upload that got `226` is
 *   there; the shared log is whole blocks, each once, every acknowledged one
 *   present, none lost from before (it starts large, so its appends are
 *   appends in place to a large file, undone at the restart when cut short);
 *   and no temporary file survives the restart (a planted one included).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerModelName } from '../../servers/index.js';
import { childEnv } from '../helpers/child-env.js';
import { WireClient } from '../helpers/wire.js';
import { delay, eventually, readOrNull, sha256, TEMP_FILE_PREFIX, tempFilesIn } from '../helpers/wire-fixture.js';
import { pick, randomBytesFrom, randomInt, rng, ServerProcess } from './processes.js';

const UPLOAD_CHILD = fileURLToPath(new URL('./upload-child.js', import.meta.url));
const CLIENTS = 3;
const NAMES_PER_CLIENT = 3;
const SHARED_LOG = 'shared.log';
/** Shared-log blocks: a 32-byte header naming the block, then bytes derived from that name. */
const BLOCK_BYTES = 8 * 1024;
const BLOCK_HEADER_BYTES = 32;
const CHUNK_BYTES = 32 * 1024;
/** No wait in a trial may take longer than this: a hung server fails the trial, it does not hang it. */
const STEP_TIMEOUT_MS = 15_000;

type Mode = 'new' | 'overwrite' | 'append';

interface Op {
  readonly mode: Mode;
  readonly data: Buffer;
}

export interface TrialReport {
  readonly trial: number;
  readonly kind: 'client-kill' | 'server-kill';
  /** What was killed when, for people. */
  readonly what: string;
  readonly uploadsStarted: number;
  readonly acknowledged: number;
  /** Uploads in flight when the server died: each may have committed, whole, or not at all. */
  readonly inFlight: number;
  /** Of those, how many had committed (found applied after the restart). */
  readonly inFlightCommitted: number;
  /** Temporary files the crash left behind, before the restart removed them. */
  readonly leftoverTempFiles: number;
  readonly failures: readonly string[];
}

function apply(before: Buffer | null, op: Op): Buffer | null {
  if (op.mode === 'new') return before ?? op.data;
  if (op.mode === 'append' && before !== null) return Buffer.concat([before, op.data]);
  return op.data;
}

function describe(content: Buffer | null): string {
  return content === null ? 'absent' : `${content.length} bytes sha256 ${sha256(content).slice(0, 12)}`;
}

function blockFor(tag: string): Buffer {
  const header = Buffer.alloc(BLOCK_HEADER_BYTES, 0x20);
  header.write(`LOGBLOCK ${tag}`, 'latin1');
  header[BLOCK_HEADER_BYTES - 1] = 0x0a;
  let seed = 0;
  for (const c of tag) seed = (Math.imul(seed, 31) + c.charCodeAt(0)) >>> 0;
  return Buffer.concat([header, randomBytesFrom(rng(seed), BLOCK_BYTES - BLOCK_HEADER_BYTES)]);
}

/** The tags of a shared log's blocks, or why it is not a sequence of whole blocks. */
function parseLog(content: Buffer): { tags: string[] } | { problem: string } {
  if (content.length % BLOCK_BYTES !== 0) return { problem: `${content.length} bytes is not a whole number of ${BLOCK_BYTES}-byte blocks (a partial append)` };
  const tags: string[] = [];
  for (let at = 0; at < content.length; at += BLOCK_BYTES) {
    const block = content.subarray(at, at + BLOCK_BYTES);
    const tag = /^LOGBLOCK (\S+)/.exec(block.subarray(0, BLOCK_HEADER_BYTES).toString('latin1'))?.[1];
    if (tag === undefined || !block.equals(blockFor(tag))) return { problem: `block ${at / BLOCK_BYTES} is not a whole block (mixed or partial bytes)` };
    tags.push(tag);
  }
  return { tags };
}

/** The server-side state of one client's own name, as far as the client knows. */
interface NameHistory {
  /** Content after the last acknowledged upload (or as verified after the last restart). */
  confirmed: Buffer | null;
  /** The upload sent and not answered: it may have committed or not. */
  pending: Op | null;
}

interface Trigger {
  /**
   * Called at each acknowledged upload; the first one arms the plan, so that
   * every trial has acknowledged uploads for the check to look for.
   */
  arm(uploadsSoFar: number): void;
  /** Called as uploads progress; kills the server when the plan says so. */
  progress(upload: number, sent: number, size: number): void;
  readonly description: string;
}

export interface CampaignOptions {
  readonly model: ServerModelName;
  readonly root: string;
  readonly seed: number;
  /** Largest upload in the workload (default 1 MiB). */
  readonly maxUploadBytes?: number;
  /**
   * Bytes of whole blocks the shared log starts with (default 4 MiB), so that
   * every append to it is an append to a large file, written in place: a kill
   * mid-commit must still leave whole blocks only.
   */
  readonly largeLogBytes?: number;
}

export class CrashCampaign {
  private server: ServerProcess | null = null;
  private readonly names = new Map<string, NameHistory>();
  /** Shared-log tags verified at the last restart, in file order. */
  private logTags: string[] = [];
  private nextBlock = 0;
  private readonly random: () => number;
  private readonly maxUpload: number;
  private trials = 0;

  constructor(private readonly options: CampaignOptions) {
    this.random = rng(options.seed);
    this.maxUpload = options.maxUploadBytes ?? 1024 * 1024;
    for (let c = 0; c < CLIENTS; c++) {
      for (let k = 0; k < NAMES_PER_CLIENT; k++) this.names.set(`c${c}-f${k}`, { confirmed: null, pending: null });
    }
  }

  get model(): ServerModelName {
    return this.options.model;
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.options.root, { recursive: true });
    this.server = await this.startServer();
    await this.seedLargeLog(this.server.port);
  }

  /** The shared log's first blocks, in one upload, before any trial. */
  private async seedLargeLog(port: number): Promise<void> {
    const blocks = Math.ceil((this.options.largeLogBytes ?? 4 * 1024 * 1024) / BLOCK_BYTES);
    const tags = Array.from({ length: blocks }, (_, i) => `seed${i}`);
    const data = Buffer.concat(tags.map(blockFor));
    const c = await this.connect(port);
    try {
      const first = await c.request(`PUT ${SHARED_LOG} ${data.length} mode=overwrite`, STEP_TIMEOUT_MS);
      if (!first.startsWith('150')) throw new Error(`seeding ${SHARED_LOG}: ${first}`);
      await c.send(data);
      const done = await c.readLine(STEP_TIMEOUT_MS);
      if (!done.startsWith('226')) throw new Error(`seeding ${SHARED_LOG}: ${done}`);
      await c.request('QUIT', STEP_TIMEOUT_MS);
    } finally {
      c.destroy();
    }
    this.logTags = tags;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = null;
  }

  private startServer(): Promise<ServerProcess> {
    // Enough threads for every client at once, so workers see concurrent commits too.
    return ServerProcess.start(this.options.model, { root: this.options.root, args: ['--threads', String(CLIENTS + 1), '--quiet', '--grace', '2'] });
  }

  private get live(): ServerProcess {
    if (this.server === null) throw new Error('the campaign has not started');
    return this.server;
  }

  // -------------------------------------------------------------------------
  // Client killed mid-upload

  async clientKillTrial(): Promise<TrialReport> {
    const trial = ++this.trials;
    const failures: string[] = [];
    const server = this.live;
    const mode = pick(this.random, ['overwrite', 'append', 'new'] as const);
    const name = mode === 'new' ? `fresh-${trial}` : 'victim';
    const before = readOrNull(this.options.root, name);
    if (mode !== 'new' && before === null) await this.seedVictim(server.port);
    const original = readOrNull(this.options.root, name);
    const size = randomInt(this.random, 1, this.maxUpload);
    // -1: killed after the PUT line, before reading 150; else after `offset` data bytes (never all of them).
    const offset = this.random() < 0.15 ? -1 : randomInt(this.random, 0, size - 1);
    const child = spawn(process.execPath, [UPLOAD_CHILD, String(server.port), name, mode, String(size), String(offset), String(trial)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv(),
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let output = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), STEP_TIMEOUT_MS);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', () => resolve(false));
    });
    child.kill('SIGKILL');
    await exited;
    const what = `client killed after ${offset < 0 ? 'the PUT line' : `${offset} of ${size} bytes`} (mode ${mode})`;
    if (!ready) failures.push(`the uploading child never got to its offset: ${output.trim()}`);
    try {
      await eventually(() => tempFilesIn(this.options.root).length === 0, 'no temporary file once the session is gone', STEP_TIMEOUT_MS);
    } catch {
      failures.push(`temporary files remain after the killed client's session: ${tempFilesIn(this.options.root).join(', ')}`);
    }
    const after = readOrNull(this.options.root, name);
    if (!(after === null ? original === null : original !== null && after.equals(original))) {
      failures.push(`${name} changed: was ${describe(original)}, is ${describe(after)}`);
    }
    try {
      await this.ping(server.port);
    } catch (error) {
      failures.push(`the server does not serve the next client: ${(error as Error).message}`);
    }
    return { trial, kind: 'client-kill', what, uploadsStarted: 1, acknowledged: 0, inFlight: 0, inFlightCommitted: 0, leftoverTempFiles: 0, failures };
  }

  private async seedVictim(port: number): Promise<void> {
    const c = await this.connect(port);
    try {
      const data = randomBytesFrom(this.random, randomInt(this.random, 0, 64 * 1024));
      const first = await c.request(`PUT victim ${data.length} mode=overwrite`, STEP_TIMEOUT_MS);
      if (!first.startsWith('150')) throw new Error(`seeding victim: ${first}`);
      await c.send(data);
      const done = await c.readLine(STEP_TIMEOUT_MS);
      if (!done.startsWith('226')) throw new Error(`seeding victim: ${done}`);
      await c.request('QUIT', STEP_TIMEOUT_MS);
    } finally {
      c.destroy();
    }
  }

  private async connect(port: number): Promise<WireClient> {
    const c = await WireClient.connect(port, { timeoutMs: STEP_TIMEOUT_MS });
    const greeting = await c.readLine(STEP_TIMEOUT_MS).catch((error: unknown) => {
      c.destroy();
      throw error;
    });
    if (!greeting.startsWith('220 ')) {
      c.destroy();
      throw new Error(`greeting: ${greeting}`);
    }
    return c;
  }

  private async ping(port: number): Promise<void> {
    const c = await this.connect(port);
    try {
      const pong = await c.request('PING', STEP_TIMEOUT_MS);
      if (pong !== '200 PONG') throw new Error(`PING got ${pong}`);
      await c.request('QUIT', STEP_TIMEOUT_MS);
    } finally {
      c.destroy();
    }
  }

  // -------------------------------------------------------------------------
  // Server killed mid-upload or mid-commit

  async serverKillTrial(): Promise<TrialReport> {
    const trial = ++this.trials;
    const failures: string[] = [];
    const server = this.live;
    let uploads = 0;
    let acknowledged = 0;
    const trigger = this.makeTrigger(server);
    const stopAt = Date.now() + 6000; // the trigger's fallback timer fires before, unless nothing is ever acknowledged
    const pendingLog = new Map<number, string>();
    const ackedLog = new Set<string>();
    const client = async (id: number): Promise<void> => {
      while (Date.now() < stopAt && !server.hasExited) {
        let c: WireClient;
        try {
          c = await this.connect(server.port);
        } catch {
          return; // the server is gone (or going)
        }
        try {
          for (let ops = randomInt(this.random, 1, 4); ops > 0; ops--) {
            if (this.random() < 0.3) {
              const tag = `c${id}b${this.nextBlock++}t${trial}`;
              pendingLog.set(id, tag);
              const upload = ++uploads;
              if ((await this.upload(c, SHARED_LOG, { mode: 'append', data: blockFor(tag) }, (sent) => trigger.progress(upload, sent, BLOCK_BYTES))) !== null) {
                ackedLog.add(tag);
                acknowledged++;
                trigger.arm(uploads);
              }
              pendingLog.delete(id);
            } else {
              const name = `c${id}-f${randomInt(this.random, 0, NAMES_PER_CLIENT - 1)}`;
              const history = this.names.get(name);
              if (history === undefined) throw new Error(`unknown name ${name}`);
              const op: Op = { mode: pick(this.random, ['new', 'overwrite', 'append', 'append'] as const), data: randomBytesFrom(this.random, this.uploadSize()) };
              history.pending = op;
              const upload = ++uploads;
              const reply = await this.upload(c, name, op, (sent) => trigger.progress(upload, sent, op.data.length));
              const expected = apply(history.confirmed, op);
              if (reply !== null && expected !== null && reply.size !== expected.length) {
                failures.push(`${name}: 226 says ${reply.size} bytes, the history says ${expected.length}`);
              }
              if (reply !== null) {
                acknowledged++;
                trigger.arm(uploads);
              }
              history.confirmed = expected;
              history.pending = null;
            }
          }
          await c.request('QUIT', STEP_TIMEOUT_MS);
        } catch {
          return; // the server died under us: whatever was pending stays pending
        } finally {
          c.destroy();
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id)));
    server.kill('SIGKILL'); // if the plan never fired (or already did)
    await server.waitExit(STEP_TIMEOUT_MS);

    const leftover = tempFilesIn(this.options.root).length;
    // A stale temporary file from "an earlier crash": the restart must remove it along with the real ones.
    fs.writeFileSync(path.join(this.options.root, `${TEMP_FILE_PREFIX}planted${trial}`), 'stale');
    this.server = await this.startServer();
    const stale = tempFilesIn(this.options.root);
    if (stale.length > 0) failures.push(`temporary files survived the restart: ${stale.join(', ')}`);

    let inFlight = 0;
    let inFlightCommitted = 0;
    for (const [name, history] of this.names) {
      const actual = readOrNull(this.options.root, name);
      const same = (a: Buffer | null, b: Buffer | null) => (a === null ? b === null : b !== null && a.equals(b));
      const old = history.confirmed;
      const whole = history.pending === null ? old : apply(old, history.pending);
      if (history.pending !== null) inFlight++;
      if (same(actual, old)) {
        // The acknowledged state (the in-flight upload, if any, did not commit).
      } else if (history.pending !== null && same(actual, whole)) {
        inFlightCommitted++;
      } else {
        failures.push(
          `${name} is ${describe(actual)}: neither its acknowledged state (${describe(old)})` +
            (history.pending === null ? '' : ` nor that state with the in-flight ${history.pending.mode} of ${history.pending.data.length} bytes applied whole (${describe(whole)})`),
        );
      }
      history.confirmed = actual;
      history.pending = null;
    }
    const log = readOrNull(this.options.root, SHARED_LOG);
    const parsed = parseLog(log ?? Buffer.alloc(0));
    if ('problem' in parsed) {
      failures.push(`${SHARED_LOG}: ${parsed.problem}`);
    } else {
      const tags = parsed.tags;
      if (new Set(tags).size !== tags.length) failures.push(`${SHARED_LOG}: a block appears twice`);
      if (this.logTags.some((tag, i) => tags[i] !== tag)) failures.push(`${SHARED_LOG}: blocks acknowledged before this trial are gone or moved`);
      for (const tag of ackedLog) if (!tags.includes(tag)) failures.push(`${SHARED_LOG}: acknowledged block ${tag} is missing`);
      const inFlightTags = new Set(pendingLog.values());
      inFlight += inFlightTags.size;
      for (const tag of tags.slice(this.logTags.length)) {
        if (ackedLog.has(tag)) continue;
        if (inFlightTags.has(tag)) inFlightCommitted++;
        else failures.push(`${SHARED_LOG}: block ${tag} was never sent in this trial`);
      }
      this.logTags = tags;
    }
    failures.push(...(await this.checkServed()));
    return { trial, kind: 'server-kill', what: trigger.description, uploadsStarted: uploads, acknowledged, inFlight, inFlightCommitted, leftoverTempFiles: leftover, failures };
  }

  /** The restarted server serves exactly what is on disk. */
  private async checkServed(): Promise<string[]> {
    const failures: string[] = [];
    let c: WireClient;
    try {
      c = await this.connect(this.live.port);
    } catch (error) {
      return [`the restarted server does not serve: ${(error as Error).message}`];
    }
    try {
      for (const name of [...this.names.keys(), SHARED_LOG]) {
        const content = readOrNull(this.options.root, name);
        const reply = await c.request(`STAT ${name}`, STEP_TIMEOUT_MS);
        const expected = content === null ? /^550( |$)/ : new RegExp(`^213 ${content.length} ${sha256(content)}$`);
        if (!expected.test(reply)) failures.push(`after the restart, STAT ${name} got ${reply}; on disk: ${describe(content)}`);
      }
      await c.request('QUIT', STEP_TIMEOUT_MS);
    } catch (error) {
      failures.push(`the restarted server failed a STAT: ${(error as Error).message}`);
    } finally {
      c.destroy();
    }
    return failures;
  }

  private uploadSize(): number {
    const r = this.random();
    if (r < 0.1) return 0;
    if (r < 0.6) return randomInt(this.random, 1, 8 * 1024);
    if (r < 0.9) return randomInt(this.random, 8 * 1024, 256 * 1024);
    return randomInt(this.random, 256 * 1024, this.maxUpload);
  }

  /**
   * One PUT: null when refused (554) or not answered, else the committed size.
   * Throws when the connection breaks (the server died).
   */
  private async upload(c: WireClient, name: string, op: Op, progress: (sent: number) => void): Promise<{ size: number } | null> {
    const checksum = this.random() < 0.5 ? ` sha256=${sha256(op.data)}` : '';
    const first = await c.request(`PUT ${name} ${op.data.length} mode=${op.mode}${checksum}`, STEP_TIMEOUT_MS);
    if (first.startsWith('554')) return null;
    if (first !== `150 send ${op.data.length} bytes`) throw new Error(`PUT ${name} got ${first}`);
    // At least 8 pieces, so that a kill "in the middle of the data" has places to land even in a small upload.
    const piece = Math.max(1, Math.min(CHUNK_BYTES, Math.ceil(op.data.length / 8)));
    for (let at = 0; at < op.data.length; at += piece) {
      progress(at);
      await c.send(op.data.subarray(at, at + piece));
    }
    progress(op.data.length);
    const done = await c.readLine(STEP_TIMEOUT_MS);
    const match = /^226 (\S+) (\d+) ([0-9a-f]{64})$/.exec(done);
    if (match === null || match[1] !== name || match[3] !== sha256(op.data)) throw new Error(`PUT ${name}: ${done}`);
    return { size: Number(match[2]) };
  }

  /**
   * When to kill, decided before the trial starts and counted from the first
   * acknowledged upload: after a random time; when the kth upload after it has
   * sent a random part of its data; or 0 to 8 ms after that upload sent its
   * last byte (the commit). A fallback timer kills anyway.
   */
  private makeTrigger(server: ServerProcess): Trigger {
    const k = randomInt(this.random, 1, 8);
    const r = this.random();
    const afterMs = randomInt(this.random, 20, 600);
    const fraction = this.random() * 0.85;
    const delayMs = randomInt(this.random, 0, 8);
    let fired = false;
    let armedAt: number | null = null;
    const kill = () => {
      fired = true;
      server.kill('SIGKILL');
    };
    const arm = (uploadsSoFar: number) => {
      if (armedAt !== null) return;
      armedAt = uploadsSoFar;
      setTimeout(kill, r < 0.25 ? afterMs : 3000).unref();
    };
    // Upload k after the arming one, or the first after it that has data (a 554 sends none).
    const due = (upload: number) => armedAt !== null && !fired && upload >= armedAt + k;
    if (r < 0.25) return { description: `server killed ${afterMs} ms after the first acknowledged upload`, arm, progress: () => {} };
    if (r < 0.55) {
      return {
        description: `server killed mid-data, upload ${k} after the first acknowledged one at ${(fraction * 100).toFixed(0)} %`,
        arm,
        progress: (upload, sent, size) => {
          if (due(upload) && sent < size && sent >= fraction * size) kill();
        },
      };
    }
    return {
      description: `server killed ${delayMs} ms after the last byte of upload ${k} after the first acknowledged one (mid-commit)`,
      arm,
      progress: (upload, sent, size) => {
        if (!due(upload) || sent !== size) return;
        if (delayMs === 0) kill();
        else {
          fired = true;
          void delay(delayMs).then(() => server.kill('SIGKILL'));
        }
      },
    };
  }
}

export function summarize(reports: readonly TrialReport[]): string {
  const serverKills = reports.filter((r) => r.kind === 'server-kill');
  const sum = (f: (r: TrialReport) => number) => serverKills.reduce((n, r) => n + f(r), 0);
  return (
    `${reports.length - serverKills.length} client kills, ${serverKills.length} server kills and restarts, ` +
    `${reports.filter((r) => r.failures.length > 0).length} failed; server kills: ${sum((r) => r.uploadsStarted)} uploads started, ` +
    `${sum((r) => r.acknowledged)} acknowledged and all checked, ${sum((r) => r.inFlight)} in flight at the kill ` +
    `(${sum((r) => r.inFlightCommitted)} committed whole, the rest not at all), ${sum((r) => r.leftoverTempFiles)} temporary files left by crashes and removed at restart`
  );
}
