/**
 * Everything a socklab server does that is *not* its concurrency model:
 * listening, the connection limit, the log, signals and graceful shutdown.
 * Each model (sequential.ts, workers.ts, async.ts) plugs in how it serves the
 * connections it is handed, and nothing else.
 */
import net from 'node:net';
import { encodeReply, Replies, type Reply } from '../protocol/index.js';
import { NOTHING_HELD, type HeldInput } from '../transport/session-io.js';
import { withGrowingReads, withSharedReadBuffer } from '../transport/accepted-reads.js';
import type { SessionOutcome } from './session.js';
import type { FileSlotLimits } from './storage/types.js';

export const SERVER_MODELS = ['sequential', 'workers', 'async'] as const;
export type ServerModelName = (typeof SERVER_MODELS)[number];

export interface ServerOptions {
  readonly host: string;
  /** 0 picks a free port (tests); the bound port is in RunningServer.port. */
  readonly port: number;
  readonly root: string;
  readonly maxFileSize: number;
  /** `--max-root-size`: the most bytes the root's files may hold together (452 beyond); absent or 0: no quota. */
  readonly maxRootSize?: number;
  /** 0 disables the idle timeout. */
  readonly idleTimeoutSeconds: number;
  /** Bytes per second an upload must keep up after a grace time (session.ts); 0: no minimum. */
  readonly minUploadRate: number;
  /** Waiting an upload is forgiven before the minimum rate applies; absent: 10 s (session.ts). No flag: tests shorten it. */
  readonly uploadRateGraceMs?: number;
  /** async: files held open at once, and how long a session waits for one (storage/async.ts); absent: the defaults there. */
  readonly fileSlots?: FileSlotLimits;
  /** Served plus waiting; beyond it, `421 too many connections`. */
  readonly maxConnections: number;
  /** workers: the pool size. */
  readonly threads: number;
  /** workers: connections allowed to wait for a free thread. */
  readonly maxQueue: number;
  /** How long a shutdown waits for uploads in progress before aborting them. */
  readonly graceSeconds: number;
  /** Where log lines go; null (--quiet): nowhere, and none is even formatted (a crowd's thousand connections would pay for it). */
  readonly log: ((line: string) => void) | null;
}

export type ShellSignal = 'shutdown' | 'abort';

/**
 * How much a waiting client may send before its turn: held, not parsed. Past
 * it the socket is paused (TCP pushes back), and a client that leaves after
 * sending that much is only noticed when its turn comes.
 */
const HELD_BYTES_LIMIT = 64 * 1024;

/** One accepted connection as the shell sees it, whatever serves it. */
export class Connection {
  readonly acceptedAt = performance.now();
  servedAt: number | null = null;
  /** Set by the model once it serves the connection; until then the shell refuses it on shutdown. */
  onSignal: (signal: ShellSignal) => void;
  private done = false;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    /** The peer's address, for the log (null when there is no log: asking costs a system call). */
    readonly remote: string | null,
    private readonly shell: Shell,
  ) {
    this.onSignal = () => this.refuse(Replies.shuttingDown(), 'shutdown before being served');
  }

  /** Set while the connection waits with its input held (holdUntilServed). */
  private holding: { readonly chunks: Uint8Array[]; ended: boolean; stop(): void } | null = null;

  /**
   * While this connection waits for its turn, its socket is read into a small
   * holding buffer and nothing is parsed or answered: its requests are served
   * in order when its turn comes. Reading is what lets the server see a
   * client that gives up (closes) and free its place at once: `onLeft` is
   * called then, and the model drops it from its queue.
   */
  holdUntilServed(onLeft: () => void): void {
    const socket = this.socket;
    let heldBytes = 0;
    const onData = (chunk: Buffer) => {
      // Copied: a chunk may live in a buffer that the socket's next read overwrites (accepted-reads.ts).
      holding.chunks.push(Buffer.from(chunk));
      heldBytes += chunk.length;
      if (heldBytes >= HELD_BYTES_LIMIT) socket.pause();
    };
    const left = () => {
      holding.stop();
      this.holding = null;
      onLeft();
      this.ended({ outcome: 'left the queue', requests: 0 });
    };
    // A client that closed its side having sent nothing has nothing to be served.
    const onEnd = () => (heldBytes === 0 ? left() : (holding.ended = true));
    const holding = {
      chunks: [] as Uint8Array[],
      ended: false,
      stop: () => {
        socket.pause();
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', left);
      },
    };
    this.holding = holding;
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', left);
    socket.resume();
  }

  /** Removes this connection from a model's waiting list, if it is still there. */
  leave(queue: Connection[]): void {
    const at = queue.indexOf(this);
    if (at >= 0) queue.splice(at, 1);
  }

  /** Its turn: what the client sent while it waited (the socket is paused until the session reads it). */
  takeHeld(): HeldInput {
    const holding = this.holding;
    if (holding === null) return NOTHING_HELD;
    holding.stop();
    this.holding = null;
    return { chunks: holding.chunks, ended: holding.ended };
  }

  /** The session starts: from the client's side, the greeting is on its way. */
  served(note = ''): void {
    this.servedAt = performance.now();
    const waited = (this.servedAt - this.acceptedAt) / 1000;
    if (this.shell.logs) this.shell.log(`serving ${this.label} after ${waited.toFixed(3)} s waiting${note ? `; ${note}` : ''}`);
  }

  /** The session is over: log it, close the socket politely, free the slot. */
  ended(result: SessionOutcome): void {
    if (this.done) return;
    this.done = true;
    this.holding?.stop();
    this.holding = null;
    if (this.shell.logs) {
      const seconds = (performance.now() - (this.servedAt ?? this.acceptedAt)) / 1000;
      this.shell.log(
        `closed ${this.label} after ${seconds.toFixed(3)} s: ${result.requests} ${result.requests === 1 ? 'request' : 'requests'}, ` +
          `${this.socket.bytesRead} B in, ${this.socket.bytesWritten} B out, ${result.outcome}`,
      );
    }
    closeSocket(this.socket);
    this.shell.release(this);
  }

  /** A bug or an unexpected failure ended this session: it alone closes, the server goes on. */
  failed(error: unknown): void {
    if (!this.done && this.socket.writable) this.socket.write(encodeReply(Replies.internalError()));
    this.ended({ outcome: `failed: ${error instanceof Error ? error.message : String(error)}`, requests: 0 });
  }

  get isEnded(): boolean {
    return this.done;
  }

  /** Ends a connection that is never served (limit reached, shutting down). */
  refuse(reply: Reply, outcome: string): void {
    if (this.socket.writable) this.socket.write(encodeReply(reply));
    this.ended({ outcome, requests: 0 });
  }

  get label(): string {
    return `${this.remote ?? '?'} (#${this.id})`;
  }
}

/** What a concurrency model supplies. */
export interface ConcurrencyModel {
  readonly name: ServerModelName;
  /**
   * Its sessions copy every chunk the moment it is read (the thread relay
   * copies it into a worker's ring), so its sockets may read into one buffer
   * shared by all (transport/accepted-reads.ts); other models' sockets read into
   * buffers of their own, growing with the traffic.
   */
  readonly copiesEachRead?: boolean;
  /** A connection was accepted and counted; serve it now or queue it. */
  accept(connection: Connection, shell: Shell): void;
  /** Frees what the model holds (a thread pool) once every connection is gone. */
  dispose?(): Promise<void>;
}

export interface RunningServer {
  readonly model: ServerModelName;
  readonly host: string;
  readonly port: number;
  readonly root: string;
  /** Stops accepting, lets uploads finish within the grace time, says 421 to the rest. */
  close(): Promise<void>;
  /** Like close, without waiting for anything: uploads in progress are discarded. */
  abort(): Promise<void>;
}

export class Shell {
  private readonly live = new Set<Connection>();
  private nextId = 1;
  private readonly server: net.Server;
  private stopping: Promise<void> | null = null;
  private allGone: (() => void) | null = null;

  constructor(
    readonly options: ServerOptions,
    private readonly model: ConcurrencyModel,
  ) {
    // pauseOnConnect: nothing is read until a model decides to serve the
    // connection; allowHalfOpen: a client's EOF still gets replies to what it sent before.
    this.server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (accepted) =>
      this.onConnection(model.copiesEachRead === true ? withSharedReadBuffer(accepted) : withGrowingReads(accepted)),
    );
    this.server.maxConnections = Number.MAX_SAFE_INTEGER;
  }

  /** Whether log lines go anywhere: a line worth some work to build is built only then. */
  get logs(): boolean {
    return this.options.log !== null;
  }

  log(line: string): void {
    this.options.log?.(`${new Date().toISOString()} ${line}`);
  }

  release(connection: Connection): void {
    this.live.delete(connection);
    if (this.live.size === 0) this.allGone?.();
  }

  async listen(): Promise<RunningServer> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.options.host, port: this.options.port, backlog: 2048 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (error) => this.log(`server error: ${error.message}`));
    const address = this.server.address() as net.AddressInfo;
    this.log(`socklab ${this.model.name} server listening on ${hostAndPort(address.address, address.port)}, root ${this.options.root}`);
    return {
      model: this.model.name,
      host: address.address,
      port: address.port,
      root: this.options.root,
      close: () => this.stop(this.options.graceSeconds * 1000),
      abort: () => this.stop(0),
    };
  }

  private onConnection(socket: net.Socket): void {
    const remote = this.logs ? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` : null;
    const connection = new Connection(this.nextId++, socket, remote, this);
    this.live.add(connection);
    socket.on('error', () => {});
    if (this.stopping !== null) {
      connection.refuse(Replies.shuttingDown(), 'refused: shutting down');
      return;
    }
    if (this.logs) this.log(`new connection from ${connection.label}, ${this.live.size} connected`);
    if (this.live.size > this.options.maxConnections) {
      connection.refuse(Replies.tooManyConnections(), `refused: over --max-connections ${this.options.maxConnections}`);
      return;
    }
    this.model.accept(connection, this);
  }

  private stop(graceMs: number): Promise<void> {
    // abort() during a graceful stop (a second SIGTERM) cuts the grace time short.
    if (graceMs === 0) this.endGrace?.();
    this.stopping ??= this.shutDown(graceMs);
    return this.stopping;
  }

  /** Ends a graceful stop's grace time now; set while that grace time runs. */
  private endGrace: (() => void) | null = null;

  private async shutDown(graceMs: number): Promise<void> {
    this.log(`shutting down: ${this.live.size} connections, grace ${graceMs / 1000} s`);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const gone = new Promise<void>((resolve) => {
      this.allGone = resolve;
      if (this.live.size === 0) resolve();
    });
    for (const connection of [...this.live]) connection.onSignal(graceMs > 0 ? 'shutdown' : 'abort');
    if (graceMs > 0) {
      const cut = new Promise<string>((resolve) => (this.endGrace = () => resolve('grace time cut short')));
      const graceOver = await Promise.race([gone.then(() => null), delay(graceMs).then(() => 'grace time over'), cut]);
      this.endGrace = null;
      if (graceOver !== null) {
        this.log(`${graceOver}: aborting ${this.live.size} sessions`);
        for (const connection of [...this.live]) connection.onSignal('abort');
      }
    }
    // A session stuck in a blocking call is still bounded: its socket goes now.
    const stuck = await Promise.race([gone.then(() => false), delay(2000).then(() => true)]);
    if (stuck) for (const connection of [...this.live]) connection.socket.destroy();
    await closed;
    await this.model.dispose?.();
    this.log('stopped');
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Sends our FIN after any queued replies; a peer that never closes its side is cut off soon after. */
function closeSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.end();
  // A socket never read (refused, or queued) must flow to see the peer's FIN and close.
  socket.resume();
  // Cleared at close: armed, the timer would keep the whole socket (streams, buffers) alive for two more seconds.
  const killer = setTimeout(() => socket.destroy(), 2000).unref();
  socket.once('close', () => clearTimeout(killer));
}

export async function startWith(model: ConcurrencyModel, options: ServerOptions): Promise<RunningServer> {
  return new Shell(options, model).listen();
}

/** `127.0.0.1:8020`, and `[::1]:8020` for IPv6, as a URL or `nc` would want it. */
export function hostAndPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
