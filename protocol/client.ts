/**
 * The client side of the protocol: a typed client any program can use (the
 * CLI, the chat, the load generator, the tests). It does no I/O of its own:
 * it reads and writes through a ByteChannel, so the same code runs over a TCP
 * socket, a test double, or anything else that moves bytes.
 */
import { createHash } from 'node:crypto';
import { ConnectionError, ErrorCodes, ProtocolError, ReplyError, SocklabError } from './errors.js';
import { ReceiveBuffer } from './receive-buffer.js';
import { isSha256, reply, type Reply } from './replies.js';
import { formatRequest, type PutMode, type Request } from './requests.js';

/** Parses one reply line (LF and CR already removed). Throws on a malformed one. */
export function parseReply(line: string): Reply {
  const match = /^([0-9]{3})(?: (.*))?$/s.exec(line);
  if (match === null) {
    throw new ProtocolError(ErrorCodes.BAD_SYNTAX, reply(0, `malformed reply line: ${JSON.stringify(line.slice(0, 80))}`));
  }
  return { code: Number(match[1]), text: match[2] ?? '' };
}

export interface ByteChannel {
  /** The next chunk the server sent, or null once it closed its side. */
  read(): Promise<Uint8Array | null>;
  /** Resolves once the bytes are handed to the transport (after any backpressure). */
  write(bytes: Uint8Array): Promise<void>;
  close(): void;
}

export interface Greeting {
  readonly reply: Reply;
  /** `sequential`, `workers` or `async` (whatever the server calls itself). */
  readonly model: string;
}

export interface RemoteFile {
  readonly name: string;
  readonly size: number;
  readonly mtime: Date;
}

export interface FileDigest {
  readonly size: number;
  readonly sha256: string;
}

export type ExistsDecision = 'overwrite' | 'append' | 'cancel';

export interface PutOptions {
  readonly mode?: PutMode;
  readonly sha256?: string;
  /** Asked when the server answers `350`: the file exists, with this size. */
  readonly onExists?: (currentSize: number) => Promise<ExistsDecision> | ExistsDecision;
  readonly onProgress?: (sentBytes: number) => void;
}

export type PutResult =
  | { readonly outcome: 'committed'; readonly name: string; readonly size: number; readonly sha256: string }
  | { readonly outcome: 'cancelled' };

/** Longest reply line the client accepts: an ECHO of a full request line fits with room. */
const MAX_REPLY_LINE_BYTES = 8192;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** A server's first reply as a greeting: a `220`, naming the server's model (`unknown` if it does not). */
export function checkGreeting(reply: Reply): Greeting {
  if (reply.code !== 220) throw new ReplyError(reply, 'the server did not greet');
  return { reply, model: /^socklab\/1 (\S+)/.exec(reply.text)?.[1] ?? 'unknown' };
}

export class SocklabClient {
  private readonly buffer = new ReceiveBuffer();
  private ended = false;

  constructor(private readonly channel: ByteChannel) {}

  /** Waits for the `220` greeting (a sequential server's queue wait ends here). */
  async greeting(): Promise<Greeting> {
    return checkGreeting(await this.readReply());
  }

  async ping(): Promise<Reply> {
    return this.expect({ command: 'PING' }, 200);
  }

  async echo(text: string): Promise<string> {
    return (await this.expect({ command: 'ECHO', text }, 200)).text;
  }

  async help(): Promise<string> {
    return (await this.expect({ command: 'HELP' }, 214)).text;
  }

  async list(): Promise<RemoteFile[]> {
    const header = await this.expect({ command: 'LIST' }, 211);
    const count = Number(header.text.split(' ')[0]);
    if (!Number.isSafeInteger(count) || count < 0) throw malformed(`LIST count ${JSON.stringify(header.text)}`);
    const files: RemoteFile[] = [];
    for (let i = 0; i < count; i++) {
      const [name, size, mtime] = (await this.readLine()).split(' ');
      if (name === undefined || size === undefined || mtime === undefined || !/^[0-9]+$/.test(size)) {
        throw malformed('a LIST line is not "<name> <size> <mtime>"');
      }
      files.push({ name, size: Number(size), mtime: new Date(mtime) });
    }
    return files;
  }

  /** The file's size and sha256, or null if there is no such file (`550`). */
  async stat(name: string): Promise<FileDigest | null> {
    await this.send({ command: 'STAT', name });
    const r = await this.readReply();
    if (r.code === 550) return null;
    if (r.code !== 213) throw new ReplyError(r, `STAT ${name}`);
    const [size, sha256] = r.text.split(' ');
    if (size === undefined || !/^[0-9]+$/.test(size) || sha256 === undefined || !isSha256(sha256)) {
      throw malformed(`STAT reply ${JSON.stringify(r.text)}`);
    }
    return { size: Number(size), sha256 };
  }

  /**
   * Downloads `name` into `sink`, chunk by chunk, and checks the server's
   * sha256 against the bytes actually received.
   */
  async get(
    name: string,
    sink: (chunk: Uint8Array) => Promise<void> | void,
    onProgress?: (received: number, size: number) => void,
  ): Promise<FileDigest> {
    const start = await this.expect({ command: 'GET', name }, 150);
    const size = Number(start.text.split(' ')[0]);
    if (!Number.isSafeInteger(size) || size < 0) throw malformed(`GET size ${JSON.stringify(start.text)}`);
    const hash = createHash('sha256');
    let received = 0;
    while (received < size) {
      const chunk = await this.readBytes(size - received);
      hash.update(chunk);
      received += chunk.length;
      await sink(chunk);
      onProgress?.(received, size);
    }
    const end = await this.readReply();
    if (end.code !== 226) throw new ReplyError(end, `GET ${name}`);
    const sha256 = hash.digest('hex');
    if (end.text.split(' ')[0] !== sha256) {
      throw new ConnectionError(ErrorCodes.MALFORMED_REPLY, `GET ${name}: the bytes received do not match the server's sha256`);
    }
    return { size, sha256 };
  }

  /**
   * Uploads `size` bytes from `source`. A `350` (file exists, mode ask) is
   * answered by `onExists`; without it the upload is cancelled.
   */
  async put(name: string, size: number, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    await this.send({ command: 'PUT', name, size, mode: options.mode ?? 'ask', sha256: options.sha256 ?? null });
    let r = await this.readReply();
    if (r.code === 350) {
      const current = Number(/ (\d+)$/.exec(r.text)?.[1] ?? Number.NaN);
      const decision = options.onExists === undefined ? 'cancel' : await options.onExists(current);
      await this.sendLine(decision.toUpperCase());
      r = await this.readReply();
      if (decision === 'cancel') {
        if (r.code !== 200) throw new ReplyError(r, `CANCEL ${name}`);
        return { outcome: 'cancelled' };
      }
    }
    if (r.code !== 150) throw new ReplyError(r, `PUT ${name}`);
    let sent = 0;
    try {
      for await (const chunk of source) {
        const part = chunk.length > size - sent ? chunk.subarray(0, size - sent) : chunk;
        if (part.length === 0) continue;
        await this.channel.write(part);
        sent += part.length;
        options.onProgress?.(sent);
        if (sent === size) break;
      }
    } catch (error) {
      // The source failed (a file that could not be read further) or the connection did: either way the
      // upload cannot go on, and the server must not wait for the rest.
      this.close();
      throw error;
    }
    if (sent !== size) {
      // Never leave the server waiting for bytes that will not come: drop the connection.
      this.close();
      throw new SocklabError(ErrorCodes.SOURCE_ENDED, `PUT ${name}: the source ended after ${sent} of ${size} bytes`);
    }
    const done = await this.readReply();
    if (done.code !== 226) throw new ReplyError(done, `PUT ${name}`);
    const [committedName, newSize, sha256] = done.text.split(' ');
    if (committedName === undefined || newSize === undefined || sha256 === undefined || !isSha256(sha256)) {
      throw malformed(`PUT reply ${JSON.stringify(done.text)}`);
    }
    return { outcome: 'committed', name: committedName, size: Number(newSize), sha256 };
  }

  async quit(): Promise<void> {
    try {
      await this.expect({ command: 'QUIT' }, 221);
    } finally {
      this.close();
    }
  }

  close(): void {
    this.channel.close();
  }

  /** Sends one request line and reads its single reply line, whatever the code. */
  async request(request: Request): Promise<Reply> {
    await this.send(request);
    return this.readReply();
  }

  async send(request: Request): Promise<void> {
    await this.sendLine(formatRequest(request));
  }

  async sendLine(line: string): Promise<void> {
    // A LF inside would be two requests, and every later reply would be read one request late.
    if (line.includes('\n')) throw new SocklabError(ErrorCodes.INVALID_ARGUMENT, 'a request cannot contain a line break');
    await this.channel.write(utf8.encode(`${line}\n`));
  }

  async readReply(): Promise<Reply> {
    const line = await this.readLine();
    try {
      return parseReply(line);
    } catch {
      throw malformed(`not a reply line: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }

  private async expect(request: Request, code: number): Promise<Reply> {
    const r = await this.request(request);
    if (r.code !== code) throw new ReplyError(r, formatRequest(request).slice(0, 60));
    return r;
  }

  /** The next line as it came, without its line break: a LIST entry, or a plain line server's answer. */
  async readLine(): Promise<string> {
    for (;;) {
      const taken = this.buffer.takeLine(MAX_REPLY_LINE_BYTES);
      if (taken.kind === 'line') return utf8Decoder.decode(taken.bytes);
      if (taken.kind === 'too-long') throw malformed(`a reply line is longer than ${MAX_REPLY_LINE_BYTES} bytes`);
      await this.fill();
    }
  }

  /** Exactly `count` raw bytes (a data block the caller frames itself). */
  async readExactly(count: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(count);
    for (let received = 0; received < count; ) {
      const chunk = await this.readBytes(count - received);
      bytes.set(chunk, received);
      received += chunk.length;
    }
    return bytes;
  }

  private async readBytes(max: number): Promise<Uint8Array> {
    for (;;) {
      const bytes = this.buffer.takeBytes(max);
      if (bytes !== null) return bytes;
      await this.fill();
    }
  }

  private async fill(): Promise<void> {
    if (this.ended) throw closedError();
    const chunk = await this.channel.read();
    if (chunk === null) {
      this.ended = true;
      throw closedError();
    }
    this.buffer.push(chunk);
  }
}

function closedError(): ConnectionError {
  return new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'the server closed the connection');
}

function malformed(what: string): ConnectionError {
  return new ConnectionError(ErrorCodes.MALFORMED_REPLY, `the server sent something that is not socklab protocol (${what})`);
}
