/**
 * One real server for one test (or one group of subtests), plus the raw
 * clients the tests open on it.
 *
 * The storage root is `<outer>/root`, `outer` being a fresh directory that holds
 * nothing else, so a test can check that nothing was ever written next to the
 * root (`../x` and friends). On teardown every client is dropped first, then
 * the server is closed (gracefully: with no client left that is immediate),
 * then `outer` is removed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServerModelName, ServerOptions } from '../../servers/index.js';
import { startTestServer, type TestServer } from './server.js';
import { WireClient, WireTimeoutError } from './wire.js';

export const TEMP_FILE_PREFIX = '.socklab-tmp-';

/** The content of `root/name`, or null if there is no such file. */
export function readOrNull(root: string, name: string): Buffer | null {
  try {
    return fs.readFileSync(path.join(root, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** The storage's temporary files left in `root`, sorted. */
export function tempFilesIn(root: string): string[] {
  return fs.readdirSync(root).filter((name) => name.startsWith(TEMP_FILE_PREFIX)).sort();
}
/** Bound on a server's close() in teardown: its grace time (5 s in tests) plus its 2 s cut-off, plus margin. */
export const CLOSE_TIMEOUT_MS = 10_000;

export interface HasTeardown {
  teardown(fn: () => void | Promise<void>): void;
}

export function greetingFor(model: ServerModelName): string {
  return `220 socklab/1 ${model} ready`;
}

export function sha256(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const EMPTY_SHA256 = sha256('');

export class WireFixture {
  private readonly clients: WireClient[] = [];
  private count = 0;

  private constructor(
    readonly model: ServerModelName,
    readonly server: TestServer,
    readonly outer: string,
  ) {}

  static async start(t: HasTeardown, model: ServerModelName, overrides: Partial<ServerOptions> = {}): Promise<WireFixture> {
    const outer = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-wire-'));
    const root = path.join(outer, 'root');
    fs.mkdirSync(root);
    let server: TestServer;
    try {
      server = await startTestServer(model, { ...overrides, root });
    } catch (error) {
      fs.rmSync(outer, { recursive: true, force: true });
      throw error;
    }
    const fixture = new WireFixture(model, server, outer);
    t.teardown(() => fixture.close());
    return fixture;
  }

  /**
   * The same server for a subtest: the clients it opens are dropped at the
   * subtest's teardown, so a subtest that fails half-way does not leave a
   * session open (with `sequential`, that would keep the next subtest waiting).
   */
  in(t: HasTeardown): WireFixture {
    const view = new WireFixture(this.model, this.server, this.outer);
    t.teardown(() => view.dropClients());
    return view;
  }

  dropClients(): void {
    for (const client of this.clients) client.destroy();
  }

  get port(): number {
    return this.server.port;
  }

  get root(): string {
    return this.server.root;
  }

  get greeting(): string {
    return greetingFor(this.model);
  }

  /** A raw connection; nothing read yet. */
  async connect(label?: string): Promise<WireClient> {
    const client = await WireClient.connect(this.port, { label: label ?? `${this.model} client ${++this.count}` });
    this.clients.push(client);
    return client;
  }

  /** A connection whose greeting has been read and checked. */
  async open(label?: string): Promise<WireClient> {
    const client = await this.connect(label);
    const greeting = await client.readLine();
    if (greeting !== this.greeting) throw new Error(`${client.label}: expected greeting ${JSON.stringify(this.greeting)}, got ${JSON.stringify(greeting)}`);
    return client;
  }

  /** QUIT, expect `221 bye`, expect the server to close: the session is over when this returns. */
  async quit(client: WireClient): Promise<void> {
    const reply = await client.request('QUIT');
    if (reply !== '221 bye') throw new Error(`${client.label}: QUIT got ${JSON.stringify(reply)}`);
    await client.expectClose();
  }

  file(name: string): string {
    return path.join(this.root, name);
  }

  writeFile(name: string, content: string | Uint8Array, mtime?: Date): void {
    fs.writeFileSync(this.file(name), content);
    if (mtime !== undefined) fs.utimesSync(this.file(name), mtime, mtime);
  }

  readFile(name: string): Buffer | null {
    return readOrNull(this.root, name);
  }

  /** Directory entries of the root, sorted. */
  entries(): string[] {
    return fs.readdirSync(this.root).sort();
  }

  tempFiles(): string[] {
    return tempFilesIn(this.root);
  }

  /** Number of log lines announcing a new connection: tells a test the server has taken one in. */
  acceptedConnections(): number {
    return this.server.logs.filter((line) => line.startsWith('new connection from')).length;
  }

  /**
   * Drops every client, then closes the server. The wait is bounded, and held
   * by a ref'd timer: the server's own shutdown timers are unref'd, so without
   * it a close() waiting only on them would let the process exit mid-teardown.
   */
  async close(timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
    this.dropClients();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.server.close(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new WireTimeoutError(`${this.model} server: close() did not resolve within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      fs.rmSync(this.outer, { recursive: true, force: true });
    }
  }
}

/** Polls `check` until it returns true; throws after `timeoutMs`. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new WireTimeoutError(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
