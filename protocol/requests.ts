/**
 * Request lines into typed requests. Each refusal is a ProtocolError carrying
 * the exact reply PROTOCOL.md prescribes, so no server decides wording or codes.
 */
import { ErrorCodes, ProtocolError } from './errors.js';
import { describeNameProblem, nameProblem } from './names.js';
import { isSha256, Replies } from './replies.js';

export type PutMode = 'ask' | 'new' | 'overwrite' | 'append';
export const PUT_MODES: readonly PutMode[] = ['ask', 'new', 'overwrite', 'append'];

export interface PutRequest {
  readonly command: 'PUT';
  readonly name: string;
  readonly size: number;
  readonly mode: PutMode;
  readonly sha256: string | null;
}

export type Decision = 'OVERWRITE' | 'APPEND' | 'CANCEL';

export type Request =
  | { readonly command: 'PING' }
  | { readonly command: 'ECHO'; readonly text: string }
  | { readonly command: 'LIST' }
  | { readonly command: 'STAT'; readonly name: string }
  | { readonly command: 'GET'; readonly name: string }
  | PutRequest
  | { readonly command: 'HELP' }
  | { readonly command: 'QUIT' }
  | { readonly command: Decision };

export interface ParseOptions {
  /** Largest upload the server takes; PUT over it gets 552 before any data. */
  readonly maxFileSize: number;
}

/** Null for an empty (or all-space) line, which gets no reply at all. */
export function parseRequest(line: string, options: ParseOptions): Request | null {
  const trimmed = line.replace(/^ +/, '');
  if (trimmed.replace(/ +$/, '') === '') return null;
  const space = trimmed.indexOf(' ');
  const word = asciiUpper(space < 0 ? trimmed : trimmed.slice(0, space));
  if (word === 'ECHO') return { command: 'ECHO', text: space < 0 ? '' : trimmed.slice(space + 1) };
  const args = space < 0 ? [] : trimmed.slice(space + 1).split(' ').filter((arg) => arg !== '');
  switch (word) {
    case 'PING':
    case 'LIST':
    case 'HELP':
    case 'QUIT':
    case 'OVERWRITE':
    case 'APPEND':
    case 'CANCEL':
      expectArgs(word, args, 0, 'no arguments');
      return { command: word };
    case 'STAT':
    case 'GET':
      expectArgs(word, args, 1, 'one argument: a file name');
      return { command: word, name: checkedName(args[0] ?? '') };
    case 'PUT':
      return parsePut(args, options);
    default:
      throw new ProtocolError(ErrorCodes.UNKNOWN_COMMAND, Replies.unknownCommand());
  }
}

function expectArgs(word: string, args: readonly string[], count: number, what: string): void {
  if (args.length !== count) throw syntaxError(`${word} takes ${what}`);
}

function parsePut(args: readonly string[], options: ParseOptions): PutRequest {
  const [name, sizeText, ...optionArgs] = args;
  if (name === undefined || sizeText === undefined) {
    throw syntaxError('usage: PUT <name> <size> [mode=ask|new|overwrite|append] [sha256=<hex>]');
  }
  if (!/^[0-9]+$/.test(sizeText)) {
    // `PUT my file.txt 5`, `PUT "my file.txt" 5`: the size is there, later; the name ran into it.
    if (optionArgs.some((arg) => /^[0-9]+$/.test(arg))) throw syntaxError('a name cannot contain spaces (use _ or -); usage: PUT <name> <size> ...');
    throw syntaxError('size must be a decimal byte count');
  }
  let mode: PutMode | null = null;
  let sha256: string | null = null;
  for (const option of optionArgs) {
    const eq = option.indexOf('=');
    const key = asciiLower(eq < 0 ? option : option.slice(0, eq));
    const value = eq < 0 ? '' : option.slice(eq + 1);
    if (key === 'mode' && mode === null && (PUT_MODES as readonly string[]).includes(asciiLower(value))) {
      mode = asciiLower(value) as PutMode;
    } else if (key === 'sha256' && sha256 === null && isSha256(value)) {
      // Exactly PROTOCOL.md's form: 64 lowercase hex digits; anything else is 501.
      sha256 = value;
    } else if (key === 'mode' || key === 'sha256') {
      throw syntaxError(`bad or repeated option: ${option}`);
    } else {
      throw syntaxError(`unknown option: ${option}`);
    }
  }
  const checked = checkedName(name);
  // Digits beyond 15 cannot be a size any server accepts, and would lose precision.
  const size = sizeText.replace(/^0+(?=.)/, '').length > 15 ? Number.MAX_SAFE_INTEGER : Number(sizeText);
  if (size > options.maxFileSize) {
    throw new ProtocolError(ErrorCodes.TOO_LARGE, Replies.tooLarge(options.maxFileSize));
  }
  return { command: 'PUT', name: checked, size, mode: mode ?? 'ask', sha256 };
}

/**
 * Case-insensitive means ASCII case here: full Unicode case mapping would turn
 * `pıng` (dotless i) into PING and `ſtat` (long s) into STAT.
 */
function asciiUpper(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

function checkedName(name: string): string {
  const problem = nameProblem(name);
  if (problem !== null) throw new ProtocolError(ErrorCodes.BAD_NAME, Replies.badName(describeNameProblem(problem)));
  return name;
}

function syntaxError(why: string): ProtocolError {
  return new ProtocolError(ErrorCodes.BAD_SYNTAX, Replies.syntax(why));
}

/** The request line a client sends, without its LF. */
export function formatRequest(request: Request): string {
  switch (request.command) {
    case 'ECHO':
      return `ECHO ${request.text}`;
    case 'STAT':
    case 'GET':
      return `${request.command} ${request.name}`;
    case 'PUT':
      return `PUT ${request.name} ${request.size} mode=${request.mode}${request.sha256 === null ? '' : ` sha256=${request.sha256}`}`;
    default:
      return request.command;
  }
}
