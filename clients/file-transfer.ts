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
 */
import type { ExistsDecision } from '../protocol/index.js';
import { formatFileTable } from './format.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { expandPath, LocalFile, localFileProblem } from './local-file.js';
import { exitWith, explainFailure, GaveUp, nameRule, quote, suggestName } from './messages.js';
import { EndOfInput, Prompter, type Choice } from './prompt.js';
import { openSession, quit, type ConnectionArgs, type Session } from './session.js';
import { upload } from './transfer.js';

export const EXISTS_CHOICES: readonly Choice<ExistsDecision>[] = [
  { key: 'o', word: 'overwrite', value: 'overwrite' },
  { key: 'a', word: 'append', value: 'append' },
  { key: 'c', word: 'cancel', value: 'cancel' },
];

/** The question the server's `350` turns into. */
export function askWhatToDoWithExisting(prompter: Prompter, name: string, currentSize: number): Promise<ExistsDecision> {
  return prompter.choose(`${name} exists on the server (${currentSize} bytes). Overwrite or append?`, EXISTS_CHOICES);
}

export async function interactiveUpload(args: ConnectionArgs): Promise<void> {
  const session = await openSession(args);
  const prompter = new Prompter({ transcript: true });
  prompter.say(`connected to ${session.host}:${session.port}: ${session.greeting.reply.text}`);
  const interrupted = () => {
    prompter.close();
    session.client.close();
    exitWith(new GaveUp('cancelled; nothing was uploaded', INTERRUPTED_EXIT_CODE));
  };
  try {
    await withInterruptHandler(interrupted, () => converse(session, prompter));
  } catch (error) {
    prompter.close();
    if (error instanceof EndOfInput) {
      await quit(session);
      throw new GaveUp('no answer (the input ended); nothing was uploaded');
    }
    session.client.close();
    throw explainFailure(error);
  }
  prompter.close();
  await quit(session);
}

async function converse(session: Session, prompter: Prompter): Promise<void> {
  const { client } = session;
  const file = await askLocalFile(prompter);
  try {
    let files;
    try {
      files = await client.list();
    } catch (error) {
      throw explainFailure(error, { kind: 'list' });
    }
    prompter.say('files on the server:');
    prompter.say(formatFileTable(files).trimEnd().replace(/^/gm, '  '));
    const name = await askRemoteName(prompter, file.baseName);
    let gaveUp = false;
    const result = await upload(client, file, name, {
      mode: 'ask',
      onExists: async (currentSize) => {
        try {
          return await askWhatToDoWithExisting(prompter, name, currentSize);
        } catch (error) {
          if (!(error instanceof EndOfInput)) throw error;
          gaveUp = true; // answer the server properly, then stop
          return 'cancel';
        }
      },
    });
    if (gaveUp) throw new EndOfInput();
    if (result.outcome === 'cancelled') {
      prompter.say(`cancelled: ${name} on the server is unchanged`);
      return;
    }
    prompter.say(`uploaded ${file.path} as ${result.name}: ${result.summary}; ${result.name} is now ${result.size} bytes on the server`);
    prompter.say(`sha256 ${result.sha256} verified (the server received exactly the bytes of ${file.path})`);
  } finally {
    await file.close();
  }
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
    const name = (await prompter.ask('name on the server:', suggestion ?? undefined)).normalize('NFC');
    const rule = nameRule(name);
    if (rule === null) return name;
    prompter.say(`${quote(name)} is not a valid name: ${rule}; please try again`);
  }
}
