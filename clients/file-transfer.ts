/**
 * Homework 3, `socklab client`: the interactive upload.
 *
 * Connect and wait to be served (a sequential server keeps us queued while it
 * serves someone else, and the user sees that), ask for a local file, show the
 * server's files, ask for the name to store it under, upload it (asking what to
 * do if the name is taken), verify the sha256, say goodbye.
 *
 * Every question works from a terminal and from piped stdin; EOF at a
 * question means the user gave up: QUIT, a message, exit code 1.
 *
 * A lost connection (the server killed, restarted, timing us out while the
 * user thinks) is not the end: the client says what was under way, reconnects
 * with the backoff of `put --retry` (retry.ts) and goes on with the answers
 * already given. What the server may have changed meanwhile is looked at
 * again: the list (shown again if it changed), the name (the server asks again
 * if it is taken now), and an upload whose confirmation was lost (never sent
 * twice: see uploadWithRetry).
 */
import { ReplyError, type ExistsDecision, type RemoteFile } from '../protocol/index.js';
import { formatFileTable } from './format.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { expandPath, LocalFile, localFileProblem } from './local-file.js';
import { ClientFailure, exitWith, explainFailure, GaveUp, nameRule, quote, suggestName } from './messages.js';
import { EndOfInput, Prompter, shellWord, type Choice } from './prompt.js';
import { Reconnecting, uploadWithRetry } from './retry.js';
import { openSession, type ConnectionArgs, type Session } from './session.js';

export const EXISTS_CHOICES: readonly Choice<ExistsDecision>[] = [
  { key: 'o', word: 'overwrite', value: 'overwrite' },
  { key: 'a', word: 'append', value: 'append' },
  { key: 'c', word: 'cancel', value: 'cancel' },
];

/** The question the server's `350` turns into. */
export function askWhatToDoWithExisting(prompter: Prompter, name: string, currentSize: number): Promise<ExistsDecision> {
  return prompter.choose(`${name} exists on the server (${currentSize} bytes). Overwrite or append?`, EXISTS_CHOICES);
}

export interface InteractiveArgs extends ConnectionArgs {
  /** How many times to reconnect in all when the connection is lost. */
  readonly retry: number;
}

/** Reconnections the interactive client allows by default: with the backoff of retry.ts, about 20 s for a server to come back. */
export const DEFAULT_RECONNECTS = 8;

export async function interactiveUpload(args: InteractiveArgs): Promise<void> {
  const prompter = new Prompter({ transcript: true });
  const status = prompter.statusDisplay();
  let first: Session;
  try {
    // Not retried: a server that is not there at all is better said at once.
    first = await openSession(args, status);
  } catch (error) {
    prompter.close();
    throw error;
  }
  prompter.say(`connected to ${first.host}:${first.port}: ${first.greeting.reply.text}`);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const connection = new Reconnecting(args, {
    retries: args.retry,
    say,
    verb: 'reconnecting',
    status,
    onReconnected: (session) => prompter.say(`reconnected to ${session.host}:${session.port}: ${session.greeting.reply.text}`),
  }, first);
  const interrupted = () => {
    prompter.close();
    connection.close();
    exitWith(new GaveUp('cancelled; nothing was uploaded', INTERRUPTED_EXIT_CODE));
  };
  try {
    await withInterruptHandler(interrupted, () => converse(connection, prompter, say));
  } catch (error) {
    prompter.close();
    if (error instanceof EndOfInput) {
      await connection.quit();
      throw new GaveUp('no answer (the input ended); nothing was uploaded');
    }
    connection.close();
    throw explainFailure(error);
  }
  prompter.close();
  await connection.quit();
}

async function converse(connection: Reconnecting, prompter: Prompter, say: (line: string) => void): Promise<void> {
  // A file the server refuses as too large is not the end: the user may pick another (nothing was sent).
  while ((await uploadOneFile(connection, prompter, say)) === 'too-large');
}

/** One local file asked for and uploaded; 'too-large' when the server refused its size (552) before any data. */
async function uploadOneFile(connection: Reconnecting, prompter: Prompter, say: (line: string) => void): Promise<'done' | 'too-large'> {
  const file = await askLocalFile(prompter);
  try {
    let files = await connection.run((session) => session.client.list(), { kind: 'list' });
    showFiles(prompter, 'files on the server:', files);
    const listedOn = connection.generation;
    const name = await askRemoteName(prompter, file.baseName);
    // The name was chosen from that list: after a reconnection it may be out of date (another server, other files).
    await connection.run(async (session) => {
      if (connection.generation === listedOn) return;
      const now = await session.client.list();
      if (!sameFiles(files, now)) showFiles(prompter, "the server's files changed while we were reconnecting; now:", now);
      files = now;
    }, { kind: 'list' });
    let gaveUp = false;
    const result = await refusedAsTooLarge(uploadWithRetry(
      connection,
      file,
      name,
      {
        mode: 'ask',
        askAgainIfChanged: true,
        onExists: async (currentSize) => {
          try {
            return await askWhatToDoWithExisting(prompter, name, currentSize);
          } catch (error) {
            if (!(error instanceof EndOfInput)) throw error;
            gaveUp = true; // answer the server properly, then stop
            return 'cancel';
          }
        },
      },
      say,
    ));
    if (gaveUp) throw new EndOfInput();
    if (result instanceof ClientFailure) {
      prompter.say(`${result.message}; nothing was sent: choose another file`);
      return 'too-large';
    }
    if (result.outcome === 'cancelled') {
      prompter.say(`cancelled: ${name} on the server is unchanged`);
      return 'done';
    }
    prompter.say(`uploaded ${file.path} as ${result.name}: ${result.summary}; ${result.name} is now ${result.size} bytes on the server`);
    prompter.say(`sha256 ${result.sha256} verified (the server received exactly the bytes of ${file.path})`);
    return 'done';
  } finally {
    await file.close();
  }
}

/** PROTOCOL.md's reply to a PUT whose size is past the server's limit, before any data. */
const FILE_TOO_LARGE = 552;

/** The upload's outcome, or the failure if the server refused the file's size (552, before any data); other failures go on. */
async function refusedAsTooLarge<T>(upload: Promise<T>): Promise<T | ClientFailure> {
  try {
    return await upload;
  } catch (error) {
    if (error instanceof ClientFailure && error.cause instanceof ReplyError && error.cause.reply.code === FILE_TOO_LARGE) return error;
    throw error;
  }
}

function showFiles(prompter: Prompter, title: string, files: readonly RemoteFile[]): void {
  prompter.say(title);
  prompter.say(formatFileTable(files).trimEnd().replace(/^/gm, '  '));
}

function sameFiles(a: readonly RemoteFile[], b: readonly RemoteFile[]): boolean {
  const key = (files: readonly RemoteFile[]) => files.map((f) => `${f.name} ${f.size} ${f.mtime.getTime()}`).sort().join('\n');
  return key(a) === key(b);
}

/** Asks until the answer is a readable regular file (and, if it looks binary, the user means it). */
async function askLocalFile(prompter: Prompter): Promise<LocalFile> {
  for (;;) {
    const typed = await prompter.ask('local file to upload:');
    const file = expandPath(typed);
    const problem = await localFileProblem(file);
    if (problem !== null) {
      prompter.say(`${problem}; please try again`);
      continue;
    }
    let opened: LocalFile;
    try {
      opened = await LocalFile.open(file);
    } catch (error) {
      prompter.say(`${explainFailure(error).message}; please try again`);
      continue;
    }
    if (await opened.looksBinary()) {
      if (!(await prompter.confirm(`${file} looks like a binary file (it has NUL bytes). Upload it anyway?`, false))) {
        await opened.close();
        continue;
      }
    }
    return opened;
  }
}

/** Asks until the answer is a valid file name; the default is the local file's name (made valid if needed). */
async function askRemoteName(prompter: Prompter, baseName: string): Promise<string> {
  const suggestion = nameRule(baseName) === null ? baseName : suggestName(baseName);
  if (suggestion !== null && suggestion !== baseName) {
    prompter.say(`${quote(baseName)} cannot be a name on the server (${nameRule(baseName)}); suggesting ${suggestion}`);
  }
  for (;;) {
    const typed = await prompter.ask('name on the server:', suggestion ?? undefined);
    // `my\ notes.txt` or "my notes.txt" mean the name my notes.txt, as in a shell.
    const name = shellWord(typed).normalize('NFC');
    const rule = nameRule(name);
    if (rule === null) {
      if (name !== typed) prompter.say(`the name on the server will be ${name}`);
      return name;
    }
    const valid = suggestName(name);
    prompter.say(`${quote(name)} is not a valid name: ${rule}; please try again${valid === null ? '' : ` (${valid} would do)`}`);
  }
}
