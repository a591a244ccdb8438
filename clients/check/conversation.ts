/**
 * One connection of a conformance case: it sends requests (or raw bytes) and
 * checks each reply against what PROTOCOL.md prescribes. A mismatch throws a
 * CaseFailure that says what was sent, what was expected and what came back,
 * so the report can show it; every wait ends at the case's deadline, so a
 * server that never answers fails the case instead of hanging the check.
 *
 * Lines are read by the protocol client (protocol/client.ts) over the TCP
 * channel of transport/tcp-client.ts: no second line reader here.
 */
import { ConnectionError, ErrorCodes, parseReply, SocklabClient, type Reply } from '../../protocol/index.js';
import { connectTcp, type TcpChannel } from '../../transport/tcp-client.js';

/** What a failed case shows: the request lines, the expectation, what came back (first lines only). */
export interface FailureDetail {
  readonly sent: readonly string[];
  readonly expected: string;
  readonly got: readonly string[];
  /** The server refused the connection: it is no longer there. */
  readonly refused?: true;
}

export class CaseFailure extends Error {
  override readonly name = 'CaseFailure';
  constructor(readonly detail: FailureDetail) {
    super(`expected ${detail.expected}; got ${detail.got.join(' / ')}`);
  }
}

/** What the report shows of a line: at most this many characters, control bytes escaped. */
const SHOWN_CHARS = 100;

export function showLine(line: string | Uint8Array): string {
  const text = typeof line === 'string' ? line : Buffer.from(line).toString('latin1');
  const escaped = text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  const chars = [...escaped];
  return chars.length <= SHOWN_CHARS ? escaped : `${chars.slice(0, SHOWN_CHARS).join('')}… (${Buffer.byteLength(text, typeof line === 'string' ? 'utf8' : 'latin1')} bytes)`;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly got: string };

export class Conversation {
  /** The requests sent and not yet answered, as shown in a report, oldest first. */
  private unanswered: string[] = [];
  /** The request the last reply answered: a reply that ends a GET still belongs to it. */
  private lastAnswered: string | null = null;
  private closed = false;
  /** The names this connection sent a PUT for: the server may have written a file of each. */
  private readonly putNames = new Set<string>();
  private storedOne = false;

  private constructor(
    private readonly channel: TcpChannel,
    private readonly client: SocklabClient,
    private readonly deadline: number,
    private readonly timeoutSeconds: number,
  ) {}

  /** A TCP connection, nothing read yet. */
  static async connect(endpoint: Endpoint, deadline: number, timeoutSeconds: number): Promise<Conversation> {
    let channel: TcpChannel;
    try {
      channel = await connectTcp({ ...endpoint, connectTimeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (error) {
      const refused = error instanceof ConnectionError && error.code === ErrorCodes.CONNECTION_REFUSED;
      const got = [error instanceof Error ? error.message : String(error)];
      throw new CaseFailure({ sent: ['(TCP connect)'], expected: 'a connection', got, ...(refused ? { refused: true as const } : {}) });
    }
    return new Conversation(channel, new SocklabClient(channel), deadline, timeoutSeconds);
  }

  /** Connects and reads the greeting, which must be a `220`. */
  static async open(endpoint: Endpoint, deadline: number, timeoutSeconds: number): Promise<Conversation> {
    const conversation = await Conversation.connect(endpoint, deadline, timeoutSeconds);
    try {
      await conversation.reply(220, { what: 'the greeting 220 socklab/1 <model> ready' });
    } catch (error) {
      conversation.close();
      throw error;
    }
    return conversation;
  }

  /** A PUT went out on this connection: the server may hold a file of it. */
  get sentPut(): boolean {
    return this.putNames.size > 0;
  }

  /** The server said it stored a file this connection uploaded: a `226 <name> …` naming one of its PUTs. */
  get storedFile(): boolean {
    return this.storedOne;
  }

  /** Sends one request line (LF added). `shown` replaces it in a report (a long line). */
  async send(line: string, shown = line): Promise<void> {
    this.notePut(line);
    this.unanswered.push(showLine(shown));
    await this.write(new TextEncoder().encode(`${line}\n`));
  }

  /**
   * Sends bytes as they are (a data block, a line that is not UTF-8, several
   * requests in one write). `shown` is what each reply to come answers: one
   * entry per reply expected (a data block's is its 226).
   */
  async sendRaw(bytes: Uint8Array, shown: string | readonly string[]): Promise<void> {
    const requests = typeof shown === 'string' ? [shown] : shown;
    for (const request of requests) this.notePut(request);
    this.unanswered.push(...requests);
    await this.write(bytes);
  }

  /** Sends `line` and checks its reply's code (and text, when `text` is given). */
  async request(line: string, code: number, options: ReplyOptions = {}): Promise<Reply> {
    await this.send(line, options.shown ?? line);
    return this.reply(code, options);
  }

  /** Reads the next reply and checks its code (and text). */
  async reply(code: number, options: ReplyOptions = {}): Promise<Reply> {
    const expected = options.what ?? `${code}${typeof options.text === 'string' ? ` ${options.text}` : ''}`;
    const line = await this.nextLine(expected);
    let r: Reply;
    try {
      r = parseReply(line);
    } catch {
      this.fail(expected, [`${showLine(line)}  (not a reply line: CODE or CODE SP text)`]);
    }
    // Noted before the reply is judged: a 226 with the wrong size still means the file is there.
    if (r.code === 226 && this.putNames.has(r.text.split(' ')[0] ?? '')) this.storedOne = true;
    if (r.code !== code) this.fail(expected, [showLine(line)]);
    const problem = options.text === undefined ? null : checkText(r.text, options.text);
    if (problem !== null) this.fail(expected, [showLine(line), problem]);
    this.lastAnswered = this.unanswered.shift() ?? this.lastAnswered;
    return r;
  }

  /** Exactly `count` bytes of a data block. */
  async data(count: number, what: string): Promise<Uint8Array> {
    const result = await this.withDeadline(() => this.client.readExactly(count));
    if (!result.ok) this.fail(what, [result.got]);
    return result.value;
  }

  /** The next line as it is (a LIST line, say); `what` is what it should be, for a report. */
  async line(what: string): Promise<string> {
    return this.nextLine(what);
  }

  /**
   * The server closes the connection next, sending nothing more; or, with
   * `ignoringLines`, whatever it sends first (a reply no one is owed).
   */
  async expectClosed(what: string, { ignoringLines = false } = {}): Promise<void> {
    for (;;) {
      const result = await this.withDeadline(() => this.client.readLine());
      if (result.ok && ignoringLines) continue;
      if (result.ok) this.fail(`${what}, then the server closes the connection`, [showLine(result.value)]);
      if (result.got !== CLOSED) this.fail(`${what}, then the server closes the connection`, [result.got]);
      this.unanswered = [];
      return;
    }
  }

  /** Half-closes: our EOF, as a client that ends its session mid-upload. */
  async end(): Promise<void> {
    await new Promise<void>((resolve) => this.channel.socket.end(() => resolve()));
  }

  /**
   * Leaves the way a polite client does, our EOF, and waits (at most `graceMs`)
   * for the server to close its side: by then it has finished with what this
   * connection sent (discarded a half-sent upload, or committed a whole one),
   * so a file it was writing is there to be removed, not created afterwards.
   */
  async leave(graceMs: number): Promise<void> {
    const socket = this.channel.socket;
    if (!this.closed && !socket.destroyed && !socket.readableEnded) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          socket.off('end', done);
          socket.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, graceMs);
        socket.once('end', done);
        socket.once('close', done);
        socket.end();
      });
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
  }

  /** Fails the case, showing the requests still waiting for their replies. */
  fail(expected: string, got: readonly string[]): never {
    const sent =
      this.unanswered.length > 0 ? [...this.unanswered] : this.lastAnswered !== null ? [`${this.lastAnswered} (its reply so far was as expected)`] : ['(nothing yet)'];
    throw new CaseFailure({ sent, expected, got });
  }

  private notePut(request: string): void {
    const name = /^\s*put\s+(\S+)/i.exec(request)?.[1];
    if (name !== undefined) this.putNames.add(name);
  }

  private async write(bytes: Uint8Array): Promise<void> {
    const result = await this.withDeadline(() => this.channel.write(bytes));
    if (!result.ok) this.fail('the server to take the request', [result.got]);
  }

  private async nextLine(expected: string): Promise<string> {
    const result = await this.withDeadline(() => this.client.readLine());
    if (!result.ok) this.fail(expected, [result.got]);
    return result.value;
  }

  /** Runs one wait, bounded by the case's deadline; a closed connection or a timeout becomes what was "got". */
  private async withDeadline<T>(wait: () => Promise<T>): Promise<Outcome<T>> {
    let timer: NodeJS.Timeout | undefined;
    const left = this.deadline - Date.now();
    const timedOut = new Promise<Outcome<T>>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, got: `(nothing within the case's ${this.timeoutSeconds} s)` }), Math.max(0, left));
    });
    const waited = wait().then(
      (value): Outcome<T> => ({ ok: true, value }),
      (error: unknown): Outcome<T> => ({ ok: false, got: describeReadError(error) }),
    );
    try {
      const outcome = await Promise.race([waited, timedOut]);
      if (!outcome.ok && outcome.got !== CLOSED) this.close();
      return outcome;
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface ReplyOptions {
  /** The text the reply must have: exactly this string, a pattern, or a check returning a problem (or null). */
  readonly text?: string | RegExp | ((text: string) => string | null);
  /** How the expectation reads in a report (default: the code and the exact text). */
  readonly what?: string;
  /** How the request line reads in a report (default: the line). */
  readonly shown?: string;
}

const CLOSED = '(the server closed the connection)';

function checkText(text: string, expected: NonNullable<ReplyOptions['text']>): string | null {
  if (typeof expected === 'string') return text === expected ? null : `(the text must be exactly ${JSON.stringify(expected)})`;
  if (expected instanceof RegExp) return expected.test(text) ? null : `(the text does not match ${expected})`;
  return expected(text);
}

function describeReadError(error: unknown): string {
  if (error instanceof ConnectionError && error.code === ErrorCodes.CONNECTION_CLOSED) return CLOSED;
  if (error instanceof ConnectionError && error.code === ErrorCodes.MALFORMED_REPLY) return `(${error.message})`;
  return `(${error instanceof Error ? error.message : String(error)})`;
}
