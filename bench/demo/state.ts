/**
 * What `socklab demo` knows while a run goes on: each client's state, built
 * from the session events its load process sends as they happen (the same
 * SessionRecorder steps the load generator records), and the server's log.
 */
import { errorLabel, type SessionEvent } from '../load/timeline.js';

export type ClientState = 'starting' | 'connecting' | 'waiting' | 'served' | 'done' | 'failed';

/** How each state reads on screen and in the plain lines. */
export const STATE_LABEL: { readonly [S in ClientState]: string } = {
  starting: 'starting',
  connecting: 'connecting',
  waiting: 'waiting in the queue',
  served: 'being served',
  done: 'done',
  failed: 'failed',
};

export interface DemoClient {
  /** From 0, as in the load generator; shown as client + 1. */
  readonly client: number;
  state: ClientState;
  connectStart: number | null;
  connected: number | null;
  greeted: number | null;
  done: number | null;
  /** Its end of the connection: how the server's log names it. */
  localPort: number | null;
  /** ECHO lines answered so far. */
  lines: number;
  /** `421`, `ECONNRESET`...: what ended it, when it failed. */
  error: string | null;
  errorMessage: string | null;
}

export interface StateChange {
  readonly client: DemoClient;
  readonly from: ClientState;
  readonly to: ClientState;
  readonly at: number;
}

export interface LogLine {
  /** Shared-clock ms (the server's own timestamp when its line has one). */
  readonly at: number;
  readonly text: string;
}

const ISO_STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$/;
/** How the server names a connection in its log: `127.0.0.1:51160 (#1)`. */
const CONNECTION_NAME = /:(\d+) \(#(\d+)\)/g;
/** Lines of server log kept: more than any screen shows. */
const LOG_KEPT = 200;

/** One server model's run: its clients and its log. */
export class DemoRun {
  readonly clients: DemoClient[];
  readonly log: LogLine[] = [];
  /** The first connect: the run's time zero on screen. */
  startedAt: number | null = null;
  endedAt: number | null = null;
  host = '';
  port = 0;

  constructor(
    /** `sequential`, `workers --threads 8`... */
    readonly label: string,
    readonly clientCount: number,
    readonly messages: number,
    /** What the clients' scripts would take on a server that serves them all at once, in turn (the scripted ideal). */
    readonly idealMs: number,
  ) {
    this.clients = Array.from({ length: clientCount }, (_, client) => ({
      client,
      state: 'starting' as ClientState,
      connectStart: null,
      connected: null,
      greeted: null,
      done: null,
      localPort: null,
      lines: 0,
      error: null,
      errorMessage: null,
    }));
  }

  /** Applies one session event; returns the state change it made, if any. */
  apply(event: SessionEvent): StateChange | null {
    const client = this.clients[event.client];
    if (client === undefined) return null;
    const from = client.state;
    switch (event.kind) {
      case 'connect-start':
        client.connectStart = event.at;
        this.startedAt = Math.min(this.startedAt ?? event.at, event.at);
        client.state = 'connecting';
        break;
      case 'connected':
        client.connected = event.at;
        client.localPort = event.localPort ?? null;
        client.state = 'waiting';
        break;
      case 'greeted':
        client.greeted = event.at;
        client.state = 'served';
        break;
      case 'reply':
        if (event.reply.request === 'ECHO' && event.reply.code === 200) client.lines += event.reply.count;
        break;
      case 'quit-sent':
        break;
      case 'done':
        client.done = event.at;
        client.error = event.error === null ? null : errorLabel(event.error);
        client.errorMessage = event.error?.message ?? null;
        client.state = event.error === null ? 'done' : 'failed';
        break;
    }
    return client.state === from ? null : { client, from, to: client.state, at: event.at };
  }

  /** A line the server wrote to stdout; its ISO timestamp, if it has one, becomes `at`. */
  addLogLine(line: string, receivedAt: number): LogLine | null {
    const text = line.trimEnd();
    if (text === '') return null;
    const stamped = ISO_STAMP.exec(text);
    const at = stamped === null ? receivedAt : Date.parse(stamped[1] ?? '');
    const entry = { at: Number.isFinite(at) ? at : receivedAt, text: stamped?.[2] ?? text };
    this.log.push(entry);
    if (this.log.length > LOG_KEPT) this.log.splice(0, this.log.length - LOG_KEPT);
    return entry;
  }

  /**
   * A server log line with its connections named by client: the server knows
   * `127.0.0.1:51160 (#1)`, the screen says `127.0.0.1:51160 (#1, client 2)`.
   */
  annotate(text: string): string {
    return text.replace(CONNECTION_NAME, (whole, port: string, id: string) => {
      const client = this.clientOnPort(Number(port));
      return client === undefined ? whole : `:${port} (#${id}, client ${client.client + 1})`;
    });
  }

  /** True when every connection the line names belongs to a client that has reported its port. */
  namesEveryConnection(text: string): boolean {
    for (const [, port] of text.matchAll(CONNECTION_NAME)) {
      if (this.clientOnPort(Number(port)) === undefined) return false;
    }
    return true;
  }

  private clientOnPort(port: number): DemoClient | undefined {
    return this.clients.find((c) => c.localPort === port);
  }

  get finished(): boolean {
    return this.clients.every((c) => c.state === 'done' || c.state === 'failed');
  }
}

/** Time in the queue so far: from the TCP connect until the greeting (or now). */
export function waitedMs(client: DemoClient, now: number): number | null {
  if (client.connected === null) return null;
  return (client.greeted ?? client.done ?? now) - client.connected;
}

/** Time being served so far: from the greeting until done (or now). */
export function servedMs(client: DemoClient, now: number): number | null {
  if (client.greeted === null) return null;
  return (client.done ?? now) - client.greeted;
}
