/**
 * The client commands of the socklab binary:
 *
 *   socklab client                      homework 3: the interactive upload
 *   socklab client list [--json]        the server's files
 *   socklab client stat NAME [--json]   size and sha256 of one file
 *   socklab client get NAME [--out FILE|-] [--force]
 *   socklab client put FILE [--as NAME] [--mode ask|new|overwrite|append] [--retry N]
 *   socklab chat                        homework 1: ECHO every line until STOP
 *
 * Every one takes --host and --port. A failure is one sentence on stderr and
 * a non-zero exit (1; 2 for a bad command line; 130 after Ctrl-C).
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { ErrorCodes, PUT_MODES, type ExistsDecision, type PutMode } from '../protocol/index.js';
import { checkInteger, UsageError, withConnectionOptions } from '../bin/cli-support.js';
import { chat } from './chat.js';
import { askWhatToDoWithExisting, DEFAULT_RECONNECTS, interactiveUpload, type InteractiveArgs } from './file-transfer.js';
import { filesAsJson, formatDigest, formatFileTable } from './format.js';
import { LocalFile } from './local-file.js';
import { ClientFailure, exitWith, explainFailure, nameRule, quote, suggestName } from './messages.js';
import { Prompter } from './prompt.js';
import { Reconnecting, uploadWithRetry } from './retry.js';
import { openSession, quit, type ConnectionArgs } from './session.js';
import { download, upload, type UploadOptions } from './transfer.js';

/** Runs a command's work; any failure becomes `socklab: <sentence>` and a non-zero exit. */
async function run(work: () => Promise<void>): Promise<void> {
  guardStdout();
  try {
    await work();
  } catch (error) {
    exitWith(error);
  }
}

/** `socklab client list | head -1`: a reader that stops early is not an error worth a trace. */
function guardStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(1);
    exitWith(error);
  });
}

/** A file name typed by the user: NFC-normalized (as keyboards may not be), then checked against the rule. */
function checkedName(name: string, option: string): string {
  const normalized = String(name).normalize('NFC');
  const rule = nameRule(normalized);
  if (rule === null) return normalized;
  const suggestion = suggestName(normalized);
  throw new UsageError(`${quote(normalized)} is not a valid file name (${rule})${suggestion === null ? '' : `; ${option} ${suggestion} would be`}`);
}

// --- socklab client list ---------------------------------------------------

interface ListArgs extends ConnectionArgs {
  json: boolean;
}

const listCommand: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: "show the server's files (size, modification time, name)",
  builder: (yargs: Argv) =>
    withConnectionOptions(yargs).option('json', { type: 'boolean', default: false, describe: 'print JSON: [{name, size, mtime}]' }) as unknown as Argv<ListArgs>,
  handler: (args) =>
    run(async () => {
      const session = await openSession(args);
      let files;
      try {
        files = await session.client.list();
      } catch (error) {
        session.client.close();
        throw explainFailure(error, { kind: 'list' });
      }
      await quit(session);
      process.stdout.write(args.json ? filesAsJson(files) : formatFileTable(files));
    }),
};

// --- socklab client stat NAME ------------------------------------------------

interface StatArgs extends ConnectionArgs {
  name: string;
  json: boolean;
}

const statCommand: CommandModule<object, StatArgs> = {
  command: 'stat <name>',
  describe: "show a server file's size and sha256",
  builder: (yargs: Argv) =>
    withConnectionOptions(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'file name on the server' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON: {name, size, sha256}' }) as unknown as Argv<StatArgs>,
  handler: (args) =>
    run(async () => {
      const name = checkedName(args.name, 'a name like');
      const session = await openSession(args);
      let digest;
      try {
        digest = await session.client.stat(name);
      } catch (error) {
        session.client.close();
        throw explainFailure(error, { kind: 'stat', name });
      }
      await quit(session);
      if (digest === null) throw new ClientFailure(ErrorCodes.NOT_FOUND, `no such file on the server: ${name}`);
      process.stdout.write(args.json ? `${JSON.stringify({ name, ...digest })}\n` : formatDigest(name, digest));
    }),
};

// --- socklab client get NAME -------------------------------------------------

interface GetArgs extends ConnectionArgs {
  name: string;
  out: string | undefined;
  force: boolean;
}

const getCommand: CommandModule<object, GetArgs> = {
  command: 'get <name>',
  describe: 'download a file (saved only once its sha256 matches)',
  builder: (yargs: Argv) =>
    withConnectionOptions(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'file name on the server' })
      .option('out', { alias: 'o', type: 'string', nargs: 1, describe: 'where to save it (default ./NAME; a directory: NAME in it; - = stdout)' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'replace an existing local file' })
      .example('$0 client get notes.txt', 'save it as ./notes.txt')
      .example('$0 client get notes.txt --out - | less', 'read it without saving') as unknown as Argv<GetArgs>,
  handler: (args) =>
    run(async () => {
      const name = checkedName(args.name, 'a name like');
      const target = downloadTarget(name, args.out);
      checkTargetBeforeConnecting(target, args.force);
      const session = await openSession(args);
      const result = await download(session.client, name, target, args.force);
      await quit(session);
      if (target !== '-') {
        process.stdout.write(`saved ${name} as ${target}: ${result.summary}\nsha256 ${result.sha256} verified\n`);
      }
    }),
};

function downloadTarget(name: string, out: string | undefined): string {
  if (out === '-') return '-';
  if (out === undefined || out === '') return path.join('.', name);
  if (out.endsWith(path.sep) || isDirectory(out)) return path.join(out, name);
  return out;
}

/** Fails before connecting (and maybe queueing) when the download could not be saved anyway. */
function checkTargetBeforeConnecting(target: string, force: boolean): void {
  if (target === '-') return;
  const dir = path.dirname(target);
  if (!isDirectory(dir)) throw new ClientFailure(ErrorCodes.INVALID_ARGUMENT, `cannot save to ${target}: there is no directory ${dir}`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EACCES';
    throw new ClientFailure(ErrorCodes.INVALID_ARGUMENT, `cannot save to ${target}: this user may not write in ${dir} (${code}); pass --out to save elsewhere`);
  }
  if (!force && existsSync(target)) {
    throw new ClientFailure(ErrorCodes.EXISTS, `${target} already exists; pass --force to replace it, or --out to save elsewhere`);
  }
}

function isDirectory(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

// --- socklab client put FILE -------------------------------------------------

interface PutArgs extends ConnectionArgs {
  file: string;
  as: string | undefined;
  mode: PutMode;
  retry: number;
}

const putCommand: CommandModule<object, PutArgs> = {
  command: 'put <file>',
  describe: 'upload a file (the server checks its sha256 before committing it)',
  builder: (yargs: Argv) =>
    withConnectionOptions(yargs)
      .positional('file', { type: 'string', demandOption: true, describe: 'local file to upload' })
      .option('as', { type: 'string', describe: "name on the server (default: the file's own name)" })
      .option('mode', {
        choices: PUT_MODES,
        default: 'ask' as PutMode,
        describe: 'if the name exists: ask (on a terminal; an error otherwise), new (an error), overwrite, append',
      })
      .option('retry', {
        type: 'number',
        default: 0,
        describe: 'if the connection is lost, reconnect (with backoff) up to N times and finish; an append is never applied twice',
      })
      .example('$0 client put report.pdf', 'upload as report.pdf')
      .example('$0 client put log.txt --as all.log --mode append', 'add to the end of all.log')
      .example('$0 client put big.iso --retry 5', 'survive a server restart in the middle') as unknown as Argv<PutArgs>,
  handler: (args) =>
    run(async () => {
      const retries = checkInteger(args.retry, '--retry', 0, 1000);
      const file = await LocalFile.open(args.file);
      try {
        const name = args.as === undefined ? checkedName(file.baseName, '--as') : checkedName(args.as, '--as');
        let existing: number | null = null;
        const onExists = async (currentSize: number): Promise<ExistsDecision> => {
          if (process.stdin.isTTY !== true) {
            existing = currentSize;
            return 'cancel';
          }
          const prompter = new Prompter({ output: process.stderr });
          try {
            return await askWhatToDoWithExisting(prompter, name, currentSize);
          } catch {
            return 'cancel'; // stdin ended: nothing is uploaded
          } finally {
            prompter.close();
          }
        };
        const options: UploadOptions = { mode: args.mode, onExists };
        const result = retries > 0 ? await uploadRetrying(args, file, name, options, retries) : await uploadOnce(args, file, name, options);
        if (existing !== null) {
          throw new ClientFailure(
            ErrorCodes.EXISTS,
            `${name} exists on the server (${existing} bytes); pass --mode overwrite or --mode append to say what to do with it`,
          );
        }
        if (result.outcome === 'cancelled') throw new ClientFailure(ErrorCodes.EXISTS, `cancelled: ${name} on the server is unchanged`);
        process.stdout.write(
          `uploaded ${file.path} as ${result.name}: ${result.summary}; ${result.name} is now ${result.size} bytes on the server\n` +
            `sha256 ${result.sha256} verified\n`,
        );
      } finally {
        await file.close();
      }
    }),
};

async function uploadRetrying(args: ConnectionArgs, file: LocalFile, name: string, options: UploadOptions, retries: number) {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const connection = new Reconnecting(args, { retries, say, verb: 'retrying' });
  const result = await uploadWithRetry(connection, file, name, options, say);
  await connection.quit();
  return result;
}

/** One connection, one attempt: without --retry a lost connection is the end. */
async function uploadOnce(args: ConnectionArgs, file: LocalFile, name: string, options: UploadOptions) {
  const session = await openSession(args);
  const result = await upload(session.client, file, name, options);
  await quit(session);
  return result;
}

// --- socklab client / socklab chat -------------------------------------------

export const clientCommand: CommandModule<object, InteractiveArgs> = {
  command: 'client',
  describe: 'upload a file interactively (homework 3), or list/stat/get/put in scripts',
  builder: (yargs: Argv) =>
    withConnectionOptions(yargs)
      .option('retry', {
        type: 'number',
        default: DEFAULT_RECONNECTS,
        describe: 'if the connection is lost, reconnect (with backoff) up to N times in all and go on; an append is never applied twice',
        // The interactive client's: list, stat and get do not retry (put has a --retry of its own).
        global: false,
      })
      .command(listCommand)
      .command(statCommand)
      .command(getCommand)
      .command(putCommand)
      .example('$0 client', 'connect to 127.0.0.1:8020 and upload a file, answering questions')
      .example('$0 client list --port 9000', "the files of the server on port 9000") as unknown as Argv<InteractiveArgs>,
  handler: (args) => run(() => interactiveUpload({ ...args, retry: checkInteger(args.retry, '--retry', 0, 1000) })),
};

export const chatCommand: CommandModule<object, ConnectionArgs> = {
  command: 'chat',
  describe: 'send every line you type as ECHO and print the reply, until STOP (homework 1)',
  builder: (yargs: Argv) =>
    withConnectionOptions(yargs).example("printf 'hello\\nSTOP\\n' | $0 chat", 'one echo, then goodbye') as unknown as Argv<ConnectionArgs>,
  handler: (args) => run(() => chat(args)),
};
