/**
 * Typed errors with stable codes, in the spirit of undici's lib/core/errors.js.
 *
 * Programs branch on `error.code` (or `instanceof`), never on message text: the
 * text is for people and may change, exactly like a reply's text on the wire.
 */
import type { Reply } from './replies.js';

export const ErrorCodes = {
  // Request errors the server answers on the wire (see ProtocolError.reply).
  LINE_TOO_LONG: 'SOCKLAB_LINE_TOO_LONG',
  INVALID_UTF8: 'SOCKLAB_INVALID_UTF8',
  UNKNOWN_COMMAND: 'SOCKLAB_UNKNOWN_COMMAND',
  BAD_SYNTAX: 'SOCKLAB_BAD_SYNTAX',
  BAD_NAME: 'SOCKLAB_BAD_NAME',
  TOO_LARGE: 'SOCKLAB_TOO_LARGE',
  BAD_SEQUENCE: 'SOCKLAB_BAD_SEQUENCE',
  // Storage outcomes.
  NOT_FOUND: 'SOCKLAB_NOT_FOUND',
  EXISTS: 'SOCKLAB_EXISTS',
  CHECKSUM_MISMATCH: 'SOCKLAB_CHECKSUM_MISMATCH',
  NO_SPACE: 'SOCKLAB_NO_SPACE',
  /** Every slot for an open file stayed taken for the whole bounded wait: try again later. */
  BUSY: 'SOCKLAB_BUSY',
  STORAGE_FAILED: 'SOCKLAB_STORAGE_FAILED',
  // Client side.
  CONNECTION_REFUSED: 'SOCKLAB_CONNECTION_REFUSED',
  CONNECTION_CLOSED: 'SOCKLAB_CONNECTION_CLOSED',
  CONNECTION_FAILED: 'SOCKLAB_CONNECTION_FAILED',
  TIMEOUT: 'SOCKLAB_TIMEOUT',
  /** The peer stayed connected but took none of our bytes for the stall time. */
  WRITE_STALLED: 'SOCKLAB_WRITE_STALLED',
  REPLY_ERROR: 'SOCKLAB_REPLY_ERROR',
  MALFORMED_REPLY: 'SOCKLAB_MALFORMED_REPLY',
  /** An upload's own bytes ran out (or failed) before the size it announced: the sender's side, not the connection's. */
  SOURCE_ENDED: 'SOCKLAB_SOURCE_ENDED',
  // Programs using the library wrongly (a bug, not bad input).
  INVALID_STATE: 'SOCKLAB_INVALID_STATE',
  INVALID_ARGUMENT: 'SOCKLAB_INVALID_ARGUMENT',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class SocklabError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A request the server refuses; `reply` is what goes on the wire. */
export class ProtocolError extends SocklabError {
  readonly reply: Reply;
  /** True when the server cannot safely go on reading this connection. */
  readonly closesConnection: boolean;

  constructor(code: ErrorCode, reply: Reply, closesConnection = false) {
    super(code, `${reply.code} ${reply.text}`.trimEnd());
    this.reply = reply;
    this.closesConnection = closesConnection;
  }
}

type CodeOf<K extends keyof typeof ErrorCodes> = (typeof ErrorCodes)[K];

/** A storage operation that failed in a way the protocol has a reply for. */
export type StorageErrorCode = CodeOf<'NOT_FOUND' | 'EXISTS' | 'CHECKSUM_MISMATCH' | 'NO_SPACE' | 'BUSY' | 'STORAGE_FAILED' | 'BAD_NAME' | 'TOO_LARGE'>;

export class StorageError extends SocklabError {
  declare readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The server answered with a code the client did not ask for. */
export class ReplyError extends SocklabError {
  readonly reply: Reply;

  constructor(reply: Reply, what: string) {
    super(ErrorCodes.REPLY_ERROR, `${what}: the server answered ${reply.code}${reply.text ? ` ${reply.text}` : ''}`);
    this.reply = reply;
  }
}

/** The connection could not be made, broke, or timed out. */
export type ConnectionErrorCode = CodeOf<'CONNECTION_REFUSED' | 'CONNECTION_CLOSED' | 'CONNECTION_FAILED' | 'TIMEOUT' | 'WRITE_STALLED' | 'MALFORMED_REPLY'>;

export class ConnectionError extends SocklabError {
  declare readonly code: ConnectionErrorCode;
  constructor(code: ConnectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A caller used the library in a way its contract forbids: a bug in that caller. */
export class InvalidStateError extends SocklabError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_STATE, message);
  }
}
