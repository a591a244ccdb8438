/**
 * Reply lines: `CODE` or `CODE SP text`. Peers act on the code alone; the
 * text is for people. Builders for every reply the servers send live here so
 * that the wording is the same whichever server model sends it. Reading a
 * reply line is the client's side (parseReply in client.ts), which keeps this
 * file below errors.ts: a ProtocolError carries a Reply.
 */

export interface Reply {
  readonly code: number;
  readonly text: string;
}

const utf8 = new TextEncoder();

export function reply(code: number, text = ''): Reply {
  return { code, text };
}

export function formatReply(r: Reply): string {
  return r.text === '' ? `${r.code}\n` : `${r.code} ${r.text}\n`;
}

/**
 * The bytes of replies whose text never changes (`200 PONG`, `221 bye`...),
 * encoded once: a server answering small requests would otherwise spend a
 * third of its JavaScript re-encoding the same line. Shared: never mutated.
 */
const encodedOnce = new WeakMap<Reply, Uint8Array>();

function fixedReply(code: number, text: string): Reply {
  const r = Object.freeze(reply(code, text));
  encodedOnce.set(r, utf8.encode(formatReply(r)));
  return r;
}

const PONG = fixedReply(200, 'PONG');
const CANCELLED = fixedReply(200, 'cancelled');
const BYE = fixedReply(221, 'bye');
const IDLE_TIMEOUT = fixedReply(421, 'idle timeout');
const SHUTTING_DOWN = fixedReply(421, 'shutting down');
const TOO_MANY_CONNECTIONS = fixedReply(421, 'too many connections');
const UNKNOWN_COMMAND = fixedReply(500, 'unknown command');

export function encodeReply(r: Reply): Uint8Array {
  return encodedOnce.get(r) ?? utf8.encode(formatReply(r));
}

export function encodeLines(lines: readonly string[]): Uint8Array {
  return utf8.encode(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
}

export function isSha256(text: string): boolean {
  return /^[0-9a-f]{64}$/.test(text);
}

/** Every reply the servers send, named by what it means. */
export const Replies = {
  greeting: (model: string) => reply(220, `socklab/1 ${model} ready`),
  pong: () => PONG,
  echo: (text: string) => reply(200, text),
  cancelled: () => CANCELLED,
  listHeader: (count: number) => reply(211, String(count)),
  stat: (size: number, sha256: string) => reply(213, `${size} ${sha256}`),
  help: () => reply(214, 'commands: PING, ECHO <text>, LIST, STAT <name>, GET <name>, PUT <name> <size> [mode=ask|new|overwrite|append] [sha256=<hex>], OVERWRITE, APPEND, CANCEL, HELP, QUIT'),
  bye: () => BYE,
  sending: (size: number) => reply(150, String(size)),
  sendData: (size: number) => reply(150, `send ${size} bytes`),
  sent: (sha256: string) => reply(226, sha256),
  committed: (name: string, size: number, sha256: string) => reply(226, `${name} ${size} ${sha256}`),
  exists: (name: string, size: number) => reply(350, `${name} exists ${size}`),
  idleTimeout: () => IDLE_TIMEOUT,
  uploadTooSlow: (minRate: number) => reply(421, `upload too slow (under ${minRate} bytes/s), closing`),
  busy: (why: string) => reply(450, `busy: ${why}, try again later`),
  tooManyConnections: () => TOO_MANY_CONNECTIONS,
  shuttingDown: () => SHUTTING_DOWN,
  internalError: () => reply(421, 'internal server error, closing'),
  uploadFailed: (reason: string) => reply(451, reason),
  noSpace: (reason: string) => reply(452, reason),
  lineTooLong: () => reply(500, 'line too long'),
  invalidUtf8: () => reply(500, 'line is not valid UTF-8'),
  unknownCommand: () => UNKNOWN_COMMAND,
  syntax: (why: string) => reply(501, why),
  badSequence: (why: string) => reply(503, why),
  notFound: (name: string) => reply(550, `${name}: no such file`),
  tooLarge: (limit: number) => reply(552, `too large (limit ${limit} bytes)`),
  fileTooLarge: (why: string) => reply(552, why),
  badName: (why: string) => reply(553, `bad name: ${why}`),
  alreadyExists: (name: string) => reply(554, `${name} exists`),
  nameTaken: (why: string) => reply(554, why),
} as const;
