/**
 * One connection's protocol state on the server side, with no I/O at all
 * (the sans-I/O pattern of python-hyper/h11): bytes go in with `receive`,
 * events come out of `nextEvent`, and every reply is built by a method that
 * also moves the state on, so a server cannot send a reply the protocol does
 * not allow at that point. The three server models drive this same object.
 *
 *   command ──PUT──▶ awaiting server ──350──▶ decision ──OVERWRITE/APPEND──┐
 *      ▲                    │ absent, or overwrite/append                  │
 *      │                    ▼                                              ▼
 *      └──226/451/452── receiving n bytes ◀────────────────150────── upload-start
 */
import { ErrorCodes, InvalidStateError, ProtocolError, StorageError } from './errors.js';
import { MAX_LINE_BYTES } from './limits.js';
import { ReceiveBuffer } from './receive-buffer.js';
import { encodeLines, encodeReply, Replies, type Reply } from './replies.js';
import { parseRequest, type PutRequest } from './requests.js';

/** How an upload lands once its bytes are in: decided before the `150`. */
export type CommitMode = 'new' | 'overwrite' | 'append';

export interface Upload {
  readonly name: string;
  readonly size: number;
  readonly mode: CommitMode;
  readonly sha256: string | null;
  /** The server's file size limit: the file, not just this upload, must stay within it (an append counts the file's bytes). */
  readonly maxFileSize: number;
}

export interface ListEntry {
  readonly name: string;
  readonly size: number;
  readonly mtime: Date;
}

export type ServerEvent =
  /** Nothing complete is buffered: read more bytes and `receive` them. */
  | { readonly kind: 'need-bytes' }
  /** The core answered on its own: send `bytes`, then close if `close`. */
  | { readonly kind: 'reply'; readonly reply: Reply; readonly bytes: Uint8Array; readonly close: boolean }
  | { readonly kind: 'list' }
  | { readonly kind: 'stat'; readonly name: string }
  | { readonly kind: 'get'; readonly name: string }
  /** Look the name up, then call `answerPut` with its current size (or null). */
  | { readonly kind: 'put'; readonly request: PutRequest }
  /** Prepare to store the upload, then `acceptUpload` (or `storageErrorReply`). */
  | { readonly kind: 'upload-start'; readonly upload: Upload }
  | { readonly kind: 'upload-data'; readonly bytes: Uint8Array }
  /** All bytes are in: commit, then `finishUpload` (or `storageErrorReply`). */
  | { readonly kind: 'upload-end'; readonly upload: Upload };

export type PutAnswer =
  | { readonly kind: 'reply'; readonly reply: Reply; readonly bytes: Uint8Array }
  | { readonly kind: 'upload-start'; readonly upload: Upload };

type State =
  | { readonly name: 'command' }
  | { readonly name: 'awaiting-server'; readonly owes: 'list' | 'stat' | 'get' | 'get-data' | 'put' | 'upload-start' | 'upload-end' }
  | { readonly name: 'decision'; readonly request: PutRequest }
  | { readonly name: 'receiving'; readonly upload: Upload; remaining: number }
  | { readonly name: 'closed' };

export interface ServerSessionOptions {
  readonly model: string;
  readonly maxFileSize: number;
  readonly maxLineBytes?: number;
}

// ignoreBOM keeps a leading BOM in the text, so `<BOM>PING` is not silently taken for PING.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Below this, a line of plain ASCII is turned into text by hand: cheaper than a decoder call for `PING`. */
const SHORT_LINE_BYTES = 64;

/** A request line as text; throws (like the decoder) when it is not valid UTF-8. */
function decodeLine(bytes: Uint8Array): string {
  if (bytes.length > SHORT_LINE_BYTES) return utf8.decode(bytes);
  let text = '';
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte >= 0x80) return utf8.decode(bytes); // not ASCII: the decoder checks it
    text += String.fromCharCode(byte);
  }
  return text;
}

export class ServerSession {
  private readonly buffer = new ReceiveBuffer();
  private state: State = { name: 'command' };
  private readonly maxLineBytes: number;
  /** The last reply code sent, for the connection log's "outcome". */
  lastReplyCode: number | null = null;

  constructor(private readonly options: ServerSessionOptions) {
    this.maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  }

  greeting(): Uint8Array {
    return this.encode(Replies.greeting(this.options.model));
  }

  receive(bytes: Uint8Array): void {
    this.buffer.push(bytes);
  }

  /** Bytes received but not yet turned into events (the tests check it stays bounded). */
  get bufferedBytes(): number {
    return this.buffer.length;
  }

  /**
   * True between requests: no upload is under way and no reply is owed, so an
   * idle timeout or a shutdown may end the session without losing anything.
   */
  get isIdle(): boolean {
    return (this.state.name === 'command' || this.state.name === 'decision') && this.buffer.length === 0;
  }

  get isReceivingUpload(): boolean {
    return this.state.name === 'receiving';
  }

  get isClosed(): boolean {
    return this.state.name === 'closed';
  }

  nextEvent(): ServerEvent {
    const state = this.state;
    switch (state.name) {
      case 'receiving':
        return this.nextUploadEvent(state);
      case 'command':
      case 'decision':
        return this.nextRequestEvent(state);
      case 'awaiting-server':
        throw new InvalidStateError(`the server still owes a reply for ${state.owes}`);
      case 'closed':
        throw new InvalidStateError('the session is closed');
    }
  }

  listReply(entries: readonly ListEntry[]): Uint8Array {
    this.settle('list');
    const lines = entries.map((e) => `${e.name} ${e.size} ${e.mtime.toISOString()}`);
    this.lastReplyCode = 211;
    return encodeLines([`211 ${entries.length}`, ...lines]);
  }

  statReply(size: number, sha256: string): Uint8Array {
    this.settle('stat');
    return this.encode(Replies.stat(size, sha256));
  }

  /** The `150 <size>` before a GET's data; the server then sends exactly size bytes. */
  getStartReply(size: number): Uint8Array {
    this.expectOwed('get');
    this.state = { name: 'awaiting-server', owes: 'get-data' };
    return this.encode(Replies.sending(size));
  }

  getEndReply(sha256: string): Uint8Array {
    this.settle('get-data');
    return this.encode(Replies.sent(sha256));
  }

  /** The reply for a failed list/stat/get/put lookup, or a failed upload. */
  storageErrorReply(error: StorageError, name = ''): Uint8Array {
    if (this.state.name !== 'awaiting-server') throw new InvalidStateError('no storage operation is pending');
    const owes = this.state.owes;
    if (owes === 'get-data') throw new InvalidStateError('a GET whose data has started can only end or drop the connection');
    this.state = { name: 'command' };
    const upload = owes === 'upload-start' || owes === 'upload-end';
    // After the data only 226, 451 and 452 may follow (PROTOCOL.md, Upload).
    const afterData = owes === 'upload-end';
    switch (error.code) {
      case ErrorCodes.NOT_FOUND:
        return this.encode(upload ? Replies.uploadFailed(error.message) : Replies.notFound(name));
      case ErrorCodes.NO_SPACE:
        return this.encode(upload ? Replies.noSpace(error.message) : Replies.uploadFailed(error.message));
      case ErrorCodes.BUSY:
        return this.encode(afterData ? Replies.uploadFailed(error.message) : Replies.busy(error.message));
      case ErrorCodes.TOO_LARGE:
        // Before the data the spec's 552; a file that grew past the limit behind the server's back is only seen at the commit.
        return this.encode(afterData ? Replies.noSpace(error.message) : Replies.fileTooLarge(error.message));
      case ErrorCodes.EXISTS:
        // The storage's text names the name and says why (exists; exists and is not a regular file).
        return this.encode(afterData ? Replies.uploadFailed(error.message) : Replies.nameTaken(error.message));
      case ErrorCodes.BAD_NAME:
        return this.encode(afterData ? Replies.uploadFailed(error.message) : Replies.badName(error.message));
      default:
        return this.encode(Replies.uploadFailed(error.message));
    }
  }

  /** PROTOCOL.md's table "file × mode → reply", given the file's current size. */
  answerPut(currentSize: number | null): PutAnswer {
    this.expectOwed('put');
    const request = this.pendingPut;
    if (request === null) throw new InvalidStateError('no PUT is pending');
    this.pendingPut = null;
    if (currentSize === null) {
      // A name that did not exist is created; only `new` insists it still does not at commit.
      return this.startUpload({ ...request, mode: request.mode === 'new' ? 'new' : request.mode === 'append' ? 'append' : 'overwrite' });
    }
    switch (request.mode) {
      case 'new':
        this.state = { name: 'command' };
        return { kind: 'reply', reply: Replies.alreadyExists(request.name), bytes: this.encode(Replies.alreadyExists(request.name)) };
      case 'overwrite':
      case 'append':
        return this.startUpload({ ...request, mode: request.mode });
      case 'ask': {
        this.state = { name: 'decision', request };
        const r = Replies.exists(request.name, currentSize);
        return { kind: 'reply', reply: r, bytes: this.encode(r) };
      }
    }
  }

  /** The `150 send <size> bytes`: from here on, the next size bytes are data. */
  acceptUpload(upload: Upload): Uint8Array {
    this.expectOwed('upload-start');
    this.state = { name: 'receiving', upload, remaining: upload.size };
    return this.encode(Replies.sendData(upload.size));
  }

  finishUpload(upload: Upload, size: number, sha256: string): Uint8Array {
    this.settle('upload-end');
    return this.encode(Replies.committed(upload.name, size, sha256));
  }

  /** Ends the session from the server's side (idle timeout, shutdown, overload). */
  closeReply(reply: Reply): Uint8Array {
    this.state = { name: 'closed' };
    return this.encode(reply);
  }

  private pendingPut: PutRequest | null = null;

  private startUpload(request: Omit<Upload, 'maxFileSize'>): PutAnswer {
    this.state = { name: 'awaiting-server', owes: 'upload-start' };
    return { kind: 'upload-start', upload: this.upload(request) };
  }

  private upload(request: Omit<Upload, 'maxFileSize'>): Upload {
    return { name: request.name, size: request.size, mode: request.mode, sha256: request.sha256, maxFileSize: this.options.maxFileSize };
  }

  private nextUploadEvent(state: Extract<State, { name: 'receiving' }>): ServerEvent {
    if (state.remaining === 0) {
      this.state = { name: 'awaiting-server', owes: 'upload-end' };
      return { kind: 'upload-end', upload: state.upload };
    }
    const bytes = this.buffer.takeBytes(state.remaining);
    if (bytes === null) return { kind: 'need-bytes' };
    state.remaining -= bytes.length;
    return { kind: 'upload-data', bytes };
  }

  private nextRequestEvent(state: Extract<State, { name: 'command' | 'decision' }>): ServerEvent {
    for (;;) {
      const taken = this.buffer.takeLine(this.maxLineBytes);
      if (taken.kind === 'need-more') return { kind: 'need-bytes' };
      if (taken.kind === 'too-long') return this.closeWith(Replies.lineTooLong());
      let line: string;
      try {
        line = decodeLine(taken.bytes);
      } catch {
        if (state.name === 'decision') this.state = { name: 'command' };
        return this.answer(Replies.invalidUtf8());
      }
      let request;
      try {
        request = parseRequest(line, this.options);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        if (state.name === 'decision') {
          this.state = { name: 'command' };
          return this.answer(Replies.badSequence('expected OVERWRITE, APPEND or CANCEL'));
        }
        return this.answer(error.reply);
      }
      if (request === null) continue;
      if (state.name === 'decision') return this.decide(state.request, request.command);
      switch (request.command) {
        case 'PING':
          return this.answer(Replies.pong());
        case 'ECHO':
          return this.answer(Replies.echo(request.text));
        case 'HELP':
          return this.answer(Replies.help());
        case 'QUIT':
          return this.closeWith(Replies.bye());
        case 'OVERWRITE':
        case 'APPEND':
        case 'CANCEL':
          return this.answer(Replies.badSequence(`${request.command} without a pending PUT`));
        case 'LIST':
          this.state = { name: 'awaiting-server', owes: 'list' };
          return { kind: 'list' };
        case 'STAT':
          this.state = { name: 'awaiting-server', owes: 'stat' };
          return { kind: 'stat', name: request.name };
        case 'GET':
          this.state = { name: 'awaiting-server', owes: 'get' };
          return { kind: 'get', name: request.name };
        case 'PUT':
          this.state = { name: 'awaiting-server', owes: 'put' };
          this.pendingPut = request;
          return { kind: 'put', request };
      }
    }
  }

  private decide(request: PutRequest, command: string): ServerEvent {
    this.state = { name: 'command' };
    switch (command) {
      case 'OVERWRITE':
      case 'APPEND': {
        const mode = command === 'OVERWRITE' ? 'overwrite' : 'append';
        this.state = { name: 'awaiting-server', owes: 'upload-start' };
        return { kind: 'upload-start', upload: this.upload({ ...request, mode }) };
      }
      case 'CANCEL':
        return this.answer(Replies.cancelled());
      default:
        return this.answer(Replies.badSequence('expected OVERWRITE, APPEND or CANCEL'));
    }
  }

  private answer(r: Reply): ServerEvent {
    return { kind: 'reply', reply: r, bytes: this.encode(r), close: false };
  }

  private closeWith(r: Reply): ServerEvent {
    this.state = { name: 'closed' };
    return { kind: 'reply', reply: r, bytes: this.encode(r), close: true };
  }

  private expectOwed(owes: Extract<State, { name: 'awaiting-server' }>['owes']): void {
    if (this.state.name !== 'awaiting-server' || this.state.owes !== owes) {
      throw new InvalidStateError(`no ${owes} reply is owed now (state: ${this.state.name})`);
    }
  }

  private settle(owes: Extract<State, { name: 'awaiting-server' }>['owes']): void {
    this.expectOwed(owes);
    this.state = { name: 'command' };
  }

  private encode(r: Reply): Uint8Array {
    this.lastReplyCode = r.code;
    return encodeReply(r);
  }
}
