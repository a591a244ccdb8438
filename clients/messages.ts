/**
 * Every way a client command can fail, as ONE sentence a person can act on.
 *
 * The protocol client throws typed errors (ReplyError with the server's reply,
 * ConnectionError with a stable code); local files fail with Node's errno
 * codes. Here they become a ClientFailure whose message is that sentence, so
 * the CLI prints `socklab: <sentence>` and exits non-zero, never a stack trace.
 * The sentence depends on what the client was doing: "the server closed the
 * connection" means something else in the middle of an upload than at LIST.
 */
import {
  ConnectionError,
  describeNameProblem,
  ErrorCodes,
  MAX_LINE_BYTES,
  nameProblem,
  ReplyError,
  SocklabError,
  type ErrorCode,
} from '../protocol/index.js';
import { UsageError } from '../bin/cli-support.js';
import { socklabCommand } from '../bin/invocation.js';

/** What the client was doing when something failed: it picks the wording. */
export type Operation =
  | { readonly kind: 'connect'; readonly host: string; readonly port: number }
  | { readonly kind: 'greeting' }
  | { readonly kind: 'list' }
  | { readonly kind: 'stat'; readonly name: string }
  /** `written`: bytes already written to stdout (`--out -`), which no failure can take back; undefined when saving to a file. */
  | { readonly kind: 'get'; readonly name: string; readonly written?: number; readonly size?: number }
  /** `sent`: data bytes handed to the connection so far, when known; `asked`: the server's 350 was put to the user. */
  | { readonly kind: 'put'; readonly name: string; readonly size: number; readonly sent?: number; readonly asked?: boolean }
  | { readonly kind: 'echo' }
  | { readonly kind: 'quit' }
  /** Nothing was asked of the server: the client waited for its user. */
  | { readonly kind: 'idle' };

/** A failure already worded for the user. `exitCode` is what the process exits with. */
export class ClientFailure extends SocklabError {
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(code, message, { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
    // With SOCKLAB_DEBUG=1 the CLI prints `stack`: make it the original one.
    if (options.cause instanceof Error && options.cause.stack !== undefined) this.stack = options.cause.stack;
  }
}

/** The user gave up (EOF at a prompt, Ctrl-C): not an error of the program. */
export class GaveUp extends ClientFailure {
  constructor(message: string, exitCode = 1) {
    super(ErrorCodes.INVALID_STATE, message, { exitCode });
  }
}

/** Longest text `ECHO <text>` can carry in one request line. */
export const MAX_ECHO_TEXT_BYTES = MAX_LINE_BYTES - 'ECHO '.length;

/** Turns anything thrown while doing `operation` into a ClientFailure (or a UsageError, left as is). */
export function explainFailure(error: unknown, operation?: Operation): ClientFailure | UsageError {
  if (error instanceof ClientFailure || error instanceof UsageError) return error;
  if (error instanceof ReplyError) return new ClientFailure(error.code, replySentence(error.reply.code, error.reply.text, operation), { cause: error });
  if (error instanceof ConnectionError) return new ClientFailure(error.code, connectionSentence(error, operation), { cause: error });
  if (error instanceof SocklabError) return new ClientFailure(error.code, error.message, { cause: error });
  return new ClientFailure(ErrorCodes.INVALID_STATE, localSentence(error), { cause: error });
}

/** One sentence for a reply the client did not hope for. */
export function replySentence(code: number, text: string, operation?: Operation): string {
  const name = operation !== undefined && 'name' in operation ? operation.name : undefined;
  switch (code) {
    case 421:
      return closedBy421(text);
    case 550:
      return `no such file on the server: ${name ?? text.replace(/: no such file$/, '')}`;
    case 553: {
      const rule = (name !== undefined ? nameRule(name) : null) ?? (text.replace(/^bad name:?\s*/, '') || 'the name breaks the file-name rule');
      return `the server refused the name ${quote(name ?? '?')}: ${rule}`;
    }
    case 552: {
      const limit = /limit (\d+)/.exec(text)?.[1];
      const size = operation?.kind === 'put' ? `${formatBytes(operation.size)}; ` : '';
      return `the file is larger than the server accepts (${size}${limit === undefined ? text : `the limit is ${formatBytes(Number(limit))}`})`;
    }
    case 554:
      return `${quote(name ?? '?')} already exists on the server; pass --mode overwrite or --mode append to say what to do with it`;
    case 450:
      return `the server is busy (${text.replace(/^busy:?\s*/, '').replace(/,?\s*try again later$/, '') || 'no reason given'}); nothing happened: try again later`;
    case 451:
      if (operation !== undefined && operation.kind !== 'put') return `the server could not read${what(operation).replace(/^ to /, ' for ')} (${text || 'no reason given'})`;
      return `the server discarded the upload (${text || 'no reason given'}); ${quote(name ?? 'the file')} on the server is as it was${/sha256|checksum/i.test(text) ? ' (did the local file change while it was being sent?)' : ''}`;
    case 452:
      return `the server is out of space or over a quota (${text || 'no reason given'}); the upload was discarded and ${quote(name ?? 'the file')} on the server is as it was`;
    case 500:
    case 501:
    case 503:
      return `the server did not accept the request${what(operation)} (${code} ${text}); this is a bug in this client or in the server`;
    default:
      return `the server answered${what(operation)} with an unexpected reply: ${code}${text ? ` ${text}` : ''}`;
  }
}

function closedBy421(text: string): string {
  const reply = `"421${text ? ` ${text}` : ''}"`;
  if (/too many/i.test(text)) return `the server turned us away: it has too many connections (${reply}; try again later)`;
  if (/shutting down/i.test(text)) return `the server is shutting down and closed the connection (${reply})`;
  if (/idle/i.test(text)) return `the server closed the connection after an idle timeout: we sent nothing for too long (${reply})`;
  return `the server closed the connection (${reply})`;
}

function connectionSentence(error: ConnectionError, operation?: Operation): string {
  switch (error.code) {
    case ErrorCodes.CONNECTION_CLOSED:
      switch (operation?.kind) {
        case 'put':
          // With all the data sent, the server may have committed it and only its 226 was lost.
          if (operation.sent === operation.size) {
            return `the server closed the connection after all of ${quote(operation.name)} was sent but before confirming it, so it may or may not have been committed (check with "${socklabCommand()} client stat ${operation.name}", or upload with --retry, which finds out by itself)`;
          }
          if (operation.sent === 0 && operation.asked === true) {
            return `the server closed the connection while you were deciding whether to overwrite or append ${quote(operation.name)}; the file on the server is as it was`;
          }
          if (operation.sent === 0) {
            return `the server closed the connection before the upload of ${quote(operation.name)} got under way; the file on the server is as it was`;
          }
          return `the server closed the connection in the middle of the upload of ${quote(operation.name)}; the server discards partial uploads, so the file on the server is as it was`;
        case 'get':
          return `the server closed the connection in the middle of the download of ${quote(operation.name)}; ${downloadLeftover(operation)}`;
        case 'greeting':
          return 'the server closed the connection before greeting us (was it stopped? is it a socklab server?)';
        case 'quit':
          return 'the server closed the connection before saying goodbye';
        case 'idle':
          return 'the server closed the connection without a word while we waited for your input (was it stopped or killed?)';
        default:
          return operation === undefined ? 'the server closed the connection unexpectedly' : `the server closed the connection while we waited for its answer${what(operation)}`;
      }
    case ErrorCodes.MALFORMED_REPLY:
      return error.message;
    default:
      // Connect errors are already worded by transport/tcp-client.ts.
      return error.message;
  }
}

/** What a failed download leaves: nothing when it was saving to a file (kept only once verified); on stdout, what was written. */
export function downloadLeftover(operation: { readonly written?: number; readonly size?: number }): string {
  if (operation.written === undefined) return 'nothing was saved';
  if (operation.written === 0) return 'nothing was written to the output';
  const of = operation.size === undefined ? '' : ` of ${operation.size}`;
  return `the output is incomplete (${operation.written}${of} bytes were written to it): discard it`;
}

/** Local file-system and other non-protocol errors. */
function localSentence(error: unknown): string {
  const e = error as NodeJS.ErrnoException | null;
  const path = typeof e?.path === 'string' ? e.path : undefined;
  switch (e?.code) {
    case 'ENOENT':
      return path === undefined ? 'no such file or directory' : `no such file or directory: ${path}`;
    case 'EACCES':
    case 'EPERM':
      return path === undefined ? 'permission denied' : `permission denied: ${path}`;
    case 'EISDIR':
      return path === undefined ? 'that is a directory' : `${path} is a directory`;
    case 'ENOTDIR':
      return path === undefined ? 'a part of the path is not a directory' : `a part of ${path} is not a directory`;
    case 'ENOSPC':
      return path === undefined ? 'the local disk is full' : `the local disk is full (writing ${path})`;
    case 'EEXIST':
      return path === undefined ? 'the file already exists' : `${path} already exists`;
    default:
      if (error instanceof Error && typeof e?.code === 'string') return error.message;
      return `internal error: ${error instanceof Error ? error.message : String(error)} (run with SOCKLAB_DEBUG=1 for details, and please report it)`;
  }
}

/** "the server rejects X: rule" locally, before sending anything. Null when the name is fine. */
export function nameRule(name: string): string | null {
  const problem = nameProblem(name);
  if (problem === null) return null;
  // The commonest case, said plainly: the protocol separates words with spaces.
  if (problem === 'bad-character' && /\s/.test(name)) return 'a name cannot contain spaces; use _ or - instead';
  return describeNameProblem(problem);
}

/** A name the server accepts that is close to `name` (for a suggestion), or null. */
export function suggestName(name: string): string | null {
  let candidate = name.normalize('NFC').replace(/[^\p{L}\p{N}._-]/gu, '_').replace(/^[^\p{L}\p{N}]+/u, '');
  while (nameRule(candidate) !== null && candidate.length > 0) candidate = [...candidate].slice(0, -1).join('');
  return candidate.length > 0 ? candidate : null;
}

function what(operation?: Operation): string {
  switch (operation?.kind) {
    case undefined:
      return '';
    case 'connect':
      return ` while connecting to ${operation.host}:${operation.port}`;
    case 'greeting':
      return ' before greeting us';
    case 'list':
      return ' to LIST';
    case 'stat':
      return ` to STAT ${operation.name}`;
    case 'get':
      return ` to GET ${operation.name}`;
    case 'put':
      return ` to PUT ${operation.name}`;
    case 'echo':
      return ' to ECHO';
    case 'quit':
      return ' to QUIT';
    case 'idle':
      return ' while we waited for your input (we had asked nothing)';
  }
}

export function quote(text: string): string {
  return /^[\p{L}\p{N}._-]+$/u.test(text) ? text : JSON.stringify(text);
}

/** 1234567 → "1234567 bytes (1.2 MiB)". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${bytes} bytes (${value.toFixed(1)} ${units[unit]})`;
}

/** Prints `socklab: <sentence>` on stderr and exits with the failure's code (2 for usage errors). */
export function exitWith(error: unknown, operation?: Operation): never {
  const failure = explainFailure(error, operation);
  process.stderr.write(`socklab: ${failure.message}\n`);
  if (process.env.SOCKLAB_DEBUG === '1' && failure.stack !== undefined) process.stderr.write(`${failure.stack}\n`);
  process.exit(failure instanceof ClientFailure ? failure.exitCode : 2);
}
