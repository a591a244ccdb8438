/**
 * A protocol-v1 server that can be told to get things wrong, one switch per
 * mistake, so that the tests can show each case of `socklab check` failing
 * against a server that breaks the requirement it checks (and passing against
 * the same server with no switch on).
 *
 * It is written from PROTOCOL.md alone, apart from socklab's servers (it keeps
 * its files in memory, and shares only the file-name rule), so it is also a
 * second implementation the check must pass. One event loop, synchronous
 * handling: what a switch does is easy to see in the code below.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { isSha256, MAX_LINE_BYTES, nameProblem } from '../../protocol/index.js';

/** Every mistake the server can be told to make, with what it then does. */
export const BREAKAGES = {
  'no-greeting': 'sends nothing until the client speaks',
  'greeting-wrong-code': 'greets with 200 instead of 220',
  'greeting-without-version': 'greets with "220 hello", no socklab/1',
  'drops-early-requests': 'greets after a moment and drops what the client sent before that',
  'keeps-cr': 'keeps the CR of a CRLF line end',
  'accepts-invalid-utf8': 'reads bytes that are not UTF-8 as if they were',
  'line-limit-1023': 'refuses a line of exactly 1024 bytes',
  'no-line-limit': 'serves lines of any length',
  'line-limit-in-characters': 'counts the line limit in characters, not bytes',
  'line-too-long-stays-open': 'answers a too-long line with 500 but keeps the connection',
  'case-sensitive-commands': 'knows command words in upper case only',
  'single-spaces-only': 'splits on single spaces and keeps leading and trailing ones',
  'answers-empty-line': 'answers an empty line with 500',
  'one-request-per-read': 'serves the first request of what one read returns and drops the rest',
  'drops-bytes-after-data': "drops whatever came in the same read as an upload's last bytes",
  'eof-commits-partial': 'stores a half-sent upload when the client goes away',
  'ping-wrong-code': 'answers PING with 250',
  'echo-trims': "trims ECHO's text",
  'echo-needs-text': 'answers ECHO with no text with 501',
  'help-two-lines': 'answers HELP on two lines',
  'list-sorted-ignoring-case': 'sorts LIST ignoring case, not bytewise',
  'list-local-time': 'lists mtime as local "YYYY-MM-DD HH:MM:SS"',
  'list-shows-temp-files': 'lists its temporary file, whose name is not a name',
  'stat-sha256-uppercase': 'writes the sha256 of STAT in upper case',
  'missing-gets-450': 'answers a missing file with 450, not 550',
  'no-name-check': 'takes any name (no 553)',
  'names-ascii-only': 'takes ASCII letters and digits only',
  'names-case-insensitive': 'treats names that differ in case as the same file',
  'name-limit-255-characters': 'limits names to 255 characters, not 128 code points and 255 bytes',
  'names-not-nfc-accepted': 'takes names that are not NFC',
  'names-only-slash-and-dot-rejected': 'refuses only names with "/" or a leading "."',
  'get-no-226': 'sends no 226 after the data of a GET',
  'get-extra-newline': 'adds a newline after the data of a GET',
  'get-size-in-characters': "gives a GET's size in characters",
  'get-wrong-sha256': "puts the sha256 of the name, not the data, in a GET's 226",
  'text-mode-storage': 'stores CRLF as LF (a file opened in text mode)',
  'put-226-without-name': 'leaves the name out of the 226 of an upload',
  'put-no-350': 'overwrites a present file in mode ask without asking',
  'put-350-without-size': 'leaves the current size out of 350',
  'put-new-overwrites': 'overwrites a present file in mode new',
  'overwrite-appends': 'appends in mode overwrite',
  'append-overwrites': 'overwrites in mode append',
  'append-needs-existing': 'answers append to an absent name with 550',
  'put-226-whole-file-sha256': "puts the whole file's sha256 in an append's 226",
  'put-226-size-of-data': "puts the size of the data, not the file's, in an append's 226",
  'no-sha256-check': 'ignores sha256=',
  'sha256-mismatch-still-stored': 'answers a sha256 mismatch with 451, but stores the data',
  'sha256-check-wrong': 'compares sha256= with the upper-case digest, so nothing ever matches',
  'sha256-any-case': 'takes sha256= in upper case too',
  'options-in-fixed-order': 'refuses sha256= before mode=',
  'lenient-size': 'reads the size with parseInt (1.5 is 1, 0x10 is 0)',
  'ignores-unknown-options': 'ignores options it does not know',
  'no-size-limit': 'has no size limit (no 552)',
  'checks-out-of-order': "checks the file's state before the size, and the size before the name",
  'zero-size-waits-for-data': 'waits for data after the 150 of an empty upload',
  'reads-data-once': 'reads an upload with one recv(4096)',
  'decision-drops-sha256': 'forgets the sha256= of a PUT once it has asked 350',
  'decision-other-line-served': 'serves another line after 350 as a command, the PUT still pending',
  'decision-without-put-500': 'answers OVERWRITE/APPEND/CANCEL with no PUT pending with 500',
  'cancel-wrong-code': 'answers CANCEL with 226',
  'quit-stays-open': 'answers QUIT but keeps the connection open',
  'quit-without-reply': 'closes at QUIT without 221',
  'unknown-command-501': 'answers an unknown command with 501',
  'unknown-command-closes': 'closes the connection after an unknown command',
  'extra-arguments-ignored': 'ignores extra arguments and fills in missing ones',
} as const;

export type Breakage = keyof typeof BREAKAGES;

const MAX_FILE_SIZE = 64 * 1024 * 1024;
/** Past this without a LF the server stops waiting for one (only without the line limit). */
const MAX_UNLIMITED_LINE = 1024 * 1024;

interface StoredFile {
  readonly name: string;
  readonly data: Buffer;
  readonly mtime: Date;
}

type PutMode = 'ask' | 'new' | 'overwrite' | 'append';

interface Upload {
  readonly name: string;
  readonly size: number;
  readonly mode: 'new' | 'overwrite' | 'append';
  readonly sha256: string | null;
}

export interface BrokenServer {
  readonly port: number;
  close(): Promise<void>;
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function startBrokenServer(breakages: readonly Breakage[] = []): Promise<BrokenServer> {
  const on = new Set<Breakage>(breakages);
  const files = new Map<string, StoredFile>();
  const key = (name: string) => (on.has('names-case-insensitive') ? name.toLowerCase() : name);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serve(socket, on, files, key);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function serve(socket: net.Socket, on: ReadonlySet<Breakage>, files: Map<string, StoredFile>, key: (name: string) => string): void {
  let buffer = Buffer.alloc(0);
  let pending: { kind: 'command' } | { kind: 'decision'; upload: Omit<Upload, 'mode'> } | { kind: 'data'; upload: Upload; received: Buffer[]; got: number } = {
    kind: 'command',
  };
  let closed = false;
  let greeted = !on.has('drops-early-requests');
  const send = (line: string) => {
    if (!closed) socket.write(`${line}\n`);
  };
  const close = () => {
    closed = true;
    socket.end();
  };
  socket.on('error', () => {});
  socket.on('end', () => {
    if (pending.kind === 'data' && on.has('eof-commits-partial')) store(pending.upload, Buffer.concat(pending.received));
    closed = true;
    socket.end();
  });
  if (on.has('greeting-wrong-code')) send('200 socklab/1 async ready');
  else if (on.has('greeting-without-version')) send('220 hello');
  else if (on.has('drops-early-requests')) {
    // Like a server that empties its buffer when a session starts.
    setTimeout(() => {
      buffer = Buffer.alloc(0);
      greeted = true;
      send('220 socklab/1 async ready');
    }, 200);
  } else if (!on.has('no-greeting')) send('220 socklab/1 async ready');

  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (!greeted) return;
    let served = 0;
    while (!closed) {
      if (pending.kind === 'data') {
        if (!takeData()) break;
        continue;
      }
      if (on.has('one-request-per-read') && served === 1) {
        buffer = Buffer.alloc(0);
        break;
      }
      const lf = buffer.indexOf(0x0a);
      if (lf < 0) {
        const limit = on.has('no-line-limit') ? MAX_UNLIMITED_LINE : MAX_LINE_BYTES * 4;
        if (buffer.length > limit) {
          send('500 line too long');
          close();
        }
        break;
      }
      let bytes = buffer.subarray(0, lf);
      buffer = buffer.subarray(lf + 1);
      if (!on.has('keeps-cr') && bytes.at(-1) === 0x0d) bytes = bytes.subarray(0, -1);
      served++;
      line(bytes);
    }
  });

  /** Moves data bytes into the upload; true when it is complete (and answered). */
  function takeData(): boolean {
    if (pending.kind !== 'data') return false;
    const { upload } = pending;
    const wanted = upload.size - pending.got;
    if (wanted > 0 || on.has('zero-size-waits-for-data')) {
      if (buffer.length === 0) return false;
      const take = Math.min(wanted, buffer.length, on.has('reads-data-once') ? 4096 : Infinity);
      pending.received.push(buffer.subarray(0, take));
      pending.got += take;
      buffer = buffer.subarray(take);
      if (pending.got < upload.size && !on.has('reads-data-once')) return false;
    }
    const data = Buffer.concat(pending.received);
    pending = { kind: 'command' };
    commit(upload, data);
    if (on.has('drops-bytes-after-data')) buffer = Buffer.alloc(0);
    return true;
  }

  function commit(upload: Upload, received: Buffer): void {
    const data = on.has('text-mode-storage') ? Buffer.from(received.toString('latin1').replace(/\r\n/g, '\n'), 'latin1') : received;
    if (upload.sha256 !== null && !on.has('no-sha256-check')) {
      const expected = on.has('sha256-check-wrong') ? upload.sha256.toUpperCase() : upload.sha256.toLowerCase();
      if (sha256(data) !== expected) {
        if (on.has('sha256-mismatch-still-stored')) store(upload, data);
        send('451 sha256 mismatch, upload discarded');
        return;
      }
    }
    const stored = store(upload, data);
    const size = on.has('put-226-size-of-data') ? data.length : stored.data.length;
    const digest = on.has('put-226-whole-file-sha256') ? sha256(stored.data) : sha256(data);
    send(on.has('put-226-without-name') ? `226 ${size} ${digest}` : `226 ${upload.name} ${size} ${digest}`);
  }

  function store(upload: Upload, data: Buffer): StoredFile {
    const old = files.get(key(upload.name));
    const appends = (upload.mode === 'append' && !on.has('append-overwrites')) || (upload.mode === 'overwrite' && on.has('overwrite-appends'));
    const file = { name: upload.name, data: appends && old !== undefined ? Buffer.concat([old.data, data]) : data, mtime: new Date() };
    files.set(key(upload.name), file);
    return file;
  }

  function line(bytes: Buffer): void {
    const tooLong = on.has('no-line-limit')
      ? false
      : on.has('line-limit-in-characters')
        ? [...bytes.toString('utf8')].length > MAX_LINE_BYTES
        : bytes.length > (on.has('line-limit-1023') ? MAX_LINE_BYTES - 1 : MAX_LINE_BYTES);
    if (tooLong) {
      send('500 line too long');
      if (!on.has('line-too-long-stays-open')) close();
      return;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: !on.has('accepts-invalid-utf8') }).decode(bytes);
    } catch {
      send('500 line is not valid UTF-8');
      if (pending.kind === 'decision') pending = { kind: 'command' };
      return;
    }
    if (text.trim() === '' && !on.has('single-spaces-only')) {
      if (on.has('answers-empty-line')) send('500 unknown command');
      return;
    }
    const trimmed = on.has('single-spaces-only') ? text : text.replace(/^ +/, '');
    const space = trimmed.indexOf(' ');
    const rawWord = space < 0 ? trimmed : trimmed.slice(0, space);
    const word = on.has('case-sensitive-commands') ? rawWord : rawWord.toUpperCase();
    const rest = space < 0 ? '' : trimmed.slice(space + 1);
    const args = on.has('single-spaces-only') ? (space < 0 ? [] : rest.split(' ')) : rest.split(' ').filter((a) => a !== '');

    if (pending.kind === 'decision') {
      const { upload } = pending;
      if (word === 'OVERWRITE' || word === 'APPEND') {
        const sha = on.has('decision-drops-sha256') ? null : upload.sha256;
        accept({ ...upload, sha256: sha, mode: word === 'OVERWRITE' ? 'overwrite' : 'append' });
        return;
      }
      if (word === 'CANCEL') {
        pending = { kind: 'command' };
        send(on.has('cancel-wrong-code') ? '226 cancelled' : '200 cancelled');
        return;
      }
      if (!on.has('decision-other-line-served')) {
        pending = { kind: 'command' };
        send('503 expected OVERWRITE, APPEND or CANCEL');
        return;
      }
    }
    command(word, args, rest);
  }

  function command(word: string, args: string[], rest: string): void {
    const lenientArgs = on.has('extra-arguments-ignored');
    const noArgs = () => {
      if (args.length === 0 || lenientArgs) return true;
      send(`501 ${word} takes no arguments`);
      return false;
    };
    const oneName = (): string | null => {
      if (args.length !== 1 && !lenientArgs) {
        send(`501 ${word} takes one name`);
        return null;
      }
      const name = args[0] ?? '';
      if (!nameAllowed(name)) {
        send('553 bad name');
        return null;
      }
      return name;
    };
    switch (word) {
      case 'PING':
        if (noArgs()) send(on.has('ping-wrong-code') ? '250 PONG' : '200 PONG');
        return;
      case 'ECHO': {
        const text = on.has('echo-trims') ? rest.trim() : rest;
        if (text === '' && on.has('echo-needs-text')) send('501 ECHO needs text');
        else send(`200 ${text}`);
        return;
      }
      case 'HELP':
        if (!noArgs()) return;
        if (on.has('help-two-lines')) send('214 commands:\n  PING ECHO LIST STAT GET PUT HELP QUIT');
        else send('214 PING ECHO LIST STAT GET PUT HELP QUIT');
        return;
      case 'QUIT':
        if (!noArgs()) return;
        if (!on.has('quit-without-reply')) send('221 bye');
        if (on.has('quit-stays-open')) return;
        close();
        return;
      case 'LIST':
        if (noArgs()) list();
        return;
      case 'STAT': {
        const name = oneName();
        if (name === null) return;
        const file = files.get(key(name));
        if (file === undefined) send(missing(name));
        else {
          const digest = sha256(file.data);
          send(`213 ${file.data.length} ${on.has('stat-sha256-uppercase') ? digest.toUpperCase() : digest}`);
        }
        return;
      }
      case 'GET': {
        const name = oneName();
        if (name === null) return;
        const file = files.get(key(name));
        if (file === undefined) {
          send(missing(name));
          return;
        }
        send(`150 ${on.has('get-size-in-characters') ? file.data.toString('utf8').length : file.data.length}`);
        if (!closed) socket.write(file.data);
        if (on.has('get-extra-newline')) socket.write('\n');
        if (!on.has('get-no-226')) send(`226 ${on.has('get-wrong-sha256') ? sha256(name) : sha256(file.data)}`);
        return;
      }
      case 'PUT':
        put(args);
        return;
      case 'OVERWRITE':
      case 'APPEND':
      case 'CANCEL':
        send(on.has('decision-without-put-500') ? '500 unknown command' : `503 ${word} without a pending PUT`);
        return;
      default:
        send(on.has('unknown-command-501') ? '501 unknown command' : '500 unknown command');
        if (on.has('unknown-command-closes')) close();
    }
  }

  function missing(name: string): string {
    return on.has('missing-gets-450') ? `450 ${name}: no such file` : `550 ${name}: no such file`;
  }

  function list(): void {
    const entries = [...files.values()].map((f) => ({ name: f.name, size: f.data.length, mtime: f.mtime }));
    if (on.has('list-shows-temp-files')) entries.push({ name: '.upload-1.tmp', size: 0, mtime: new Date() });
    entries.sort(on.has('list-sorted-ignoring-case') ? (a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()) : (a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    const time = (d: Date) => (on.has('list-local-time') ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '') : d.toISOString());
    send([`211 ${entries.length}`, ...entries.map((e) => `${e.name} ${e.size} ${time(e.mtime)}`)].join('\n'));
  }

  function nameAllowed(name: string): boolean {
    if (on.has('no-name-check')) return name !== '';
    if (on.has('names-only-slash-and-dot-rejected')) return name !== '' && !name.includes('/') && !name.startsWith('.');
    if (on.has('names-ascii-only')) return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name);
    if (on.has('name-limit-255-characters')) return [...name].length <= 255 && /^[\p{L}\p{N}][\p{L}\p{N}._-]*$/u.test(name) && name.normalize('NFC') === name;
    if (on.has('names-not-nfc-accepted')) return nameProblem(name.normalize('NFC')) === null;
    return nameProblem(name) === null;
  }

  function put(args: string[]): void {
    const [name, sizeText, ...options] = args;
    if (name === undefined || (sizeText === undefined && !on.has('extra-arguments-ignored'))) {
      send('501 usage: PUT <name> <size> [mode=...] [sha256=...]');
      return;
    }
    const size = on.has('lenient-size') ? Number.parseInt(sizeText ?? '0', 10) : /^[0-9]+$/.test(sizeText ?? '0') ? Number(sizeText ?? '0') : Number.NaN;
    if (Number.isNaN(size)) {
      send('501 size must be a decimal byte count');
      return;
    }
    let mode: PutMode = 'ask';
    let digest: string | null = null;
    for (const option of options) {
      const [optionKey, value = ''] = option.split('=', 2);
      if (optionKey === 'mode' && ['ask', 'new', 'overwrite', 'append'].includes(value)) mode = value as PutMode;
      else if (optionKey === 'sha256' && (isSha256(value) || (on.has('sha256-any-case') && /^[0-9a-fA-F]{64}$/.test(value)))) {
        if (on.has('options-in-fixed-order') && options.some((o) => o.startsWith('mode='))) {
          if (options.findIndex((o) => o.startsWith('mode=')) > options.indexOf(option)) {
            send('501 mode= comes first');
            return;
          }
        }
        digest = value;
      } else if (!on.has('ignores-unknown-options') || optionKey === 'sha256') {
        send(`501 bad option: ${option}`);
        return;
      }
    }
    /** Set by state() when the file's state allows the upload; sent only once every check has passed. */
    let accepted: Upload | null = null;
    const checks = on.has('checks-out-of-order') ? [state, sizeLimit, nameRule] : [nameRule, sizeLimit, state];
    for (const step of checks) if (!step()) return;
    if (accepted !== null) accept(accepted);

    function nameRule(): boolean {
      if (nameAllowed(name!)) return true;
      send('553 bad name');
      return false;
    }
    function sizeLimit(): boolean {
      if (size <= MAX_FILE_SIZE || on.has('no-size-limit')) return true;
      send('552 too large');
      return false;
    }
    function state(): boolean {
      const upload = { name: name!, size, sha256: digest };
      const existing = files.get(key(name!));
      if (existing === undefined) {
        if (mode === 'append' && on.has('append-needs-existing')) {
          send(missing(name!));
          return false;
        }
        accepted = { ...upload, mode: mode === 'append' ? 'append' : mode === 'new' ? 'new' : 'overwrite' };
        return true;
      }
      if (mode === 'new' && !on.has('put-new-overwrites')) {
        send(`554 ${name} exists`);
        return false;
      }
      if (mode === 'ask' && !on.has('put-no-350')) {
        pending = { kind: 'decision', upload };
        send(on.has('put-350-without-size') ? `350 ${name} exists` : `350 ${name} exists ${existing.data.length}`);
        return false;
      }
      accepted = { ...upload, mode: mode === 'append' ? 'append' : 'overwrite' };
      return true;
    }
  }

  function accept(upload: Upload): void {
    pending = { kind: 'data', upload, received: [], got: 0 };
    send(`150 send ${upload.size} bytes`);
  }
}
