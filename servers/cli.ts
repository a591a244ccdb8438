/** `socklab server <model>`: run one of the three servers until SIGINT/SIGTERM. */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_HOST, DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_MAX_FILE_SIZE } from '../protocol/index.js';
import { byteSizeText, checkedPort, checkInteger, checkSeconds, exitWithFailure, hostOption, parseByteSize, parseDirectory, portOption, UsageError } from '../bin/cli-support.js';
import { SERVER_MODELS, startServer, type ServerModelName, type ServerOptions } from './index.js';
import { hostAndPort } from './shell.js';

export const DEFAULT_MAX_CONNECTIONS = 16_384;
/**
 * Threads in the workers pool. Each blocked worker holds a thread and its
 * memory, but the sessions mostly wait on sockets, not the CPU, so more threads
 * than the 2 cores the course machines have is right: 8 serves a class demo
 * at once without the pool's queue showing, yet stays a visible, finite limit.
 */
export const DEFAULT_THREADS = 8;
export const DEFAULT_MAX_QUEUE = 1024;
export const DEFAULT_GRACE_SECONDS = 10;
/**
 * Like Apache's mod_reqtimeout MinRate: far below any real client (a phone on
 * a bad network sends tens of KiB/s), far above a trickler holding a slot.
 */
export const DEFAULT_MIN_UPLOAD_RATE = '1KiB';

interface ServerArgs {
  model: string;
  host: string;
  port: number;
  root: string;
  'max-file-size': string;
  'max-root-size': string;
  'idle-timeout': number;
  'min-upload-rate': string;
  'max-connections': number;
  threads: number;
  'max-queue': number;
  grace: number;
  quiet: boolean;
}

export function serverOptionsFromArgs(args: Omit<ServerArgs, 'model' | 'quiet'>, log: ServerOptions['log']): ServerOptions {
  return {
    host: args.host,
    port: checkedPort(args.port),
    root: path.resolve(args.root),
    maxFileSize: parseByteSize(args['max-file-size'], '--max-file-size'),
    maxRootSize: parseByteSize(args['max-root-size'], '--max-root-size'),
    idleTimeoutSeconds: checkSeconds(args['idle-timeout'], '--idle-timeout', 'never'),
    minUploadRate: checkedRate(args['min-upload-rate'], '--min-upload-rate'),
    maxConnections: checkInteger(args['max-connections'], '--max-connections', 1),
    threads: checkInteger(args.threads, '--threads', 1, 1024),
    maxQueue: checkInteger(args['max-queue'], '--max-queue', 0),
    graceSeconds: checkSeconds(args.grace, '--grace', 'abort uploads at once'),
    log,
  };
}

export const serverCommand: CommandModule<object, ServerArgs> = {
  command: 'server <model>',
  describe: 'run a socklab server: sequential (one client at a time), workers (a thread per client) or async (one event loop)',
  builder: (yargs: Argv) =>
    yargs
      .positional('model', { choices: SERVER_MODELS, describe: 'concurrency model', demandOption: true })
      .option('host', hostOption('address to listen on', DEFAULT_HOST))
      .option('port', portOption('port to listen on (0 = any free port)'))
      .option('root', { type: 'string', default: './storage', nargs: 1, describe: 'directory holding the files', coerce: (raw: unknown) => parseDirectory(raw, '--root') })
      .option('max-file-size', { type: 'string', default: byteSizeText(DEFAULT_MAX_FILE_SIZE), describe: 'largest upload in bytes (units like 64MiB work)' })
      .option('max-root-size', { type: 'string', default: '0', describe: 'quota: most bytes all files together may hold; an upload past it gets 452 (0 = none)' })
      .option('idle-timeout', { type: 'number', default: DEFAULT_IDLE_TIMEOUT_SECONDS, describe: 'seconds without a byte from a client before 421 (0 = never)' })
      .option('min-upload-rate', {
        type: 'string',
        default: DEFAULT_MIN_UPLOAD_RATE,
        describe: 'bytes per second an upload must keep up after its first 10 s, or 421 and close (units like 1KiB; 0 = no minimum)',
      })
      .option('max-connections', { type: 'number', default: DEFAULT_MAX_CONNECTIONS, describe: 'connections served or waiting; more get 421' })
      .option('threads', { type: 'number', default: DEFAULT_THREADS, describe: 'workers: threads in the pool (one connection each)' })
      .option('max-queue', { type: 'number', default: DEFAULT_MAX_QUEUE, describe: 'workers: connections that may wait for a free thread' })
      .option('grace', { type: 'number', default: DEFAULT_GRACE_SECONDS, describe: 'seconds a shutdown lets uploads in progress finish' })
      .option('quiet', { type: 'boolean', default: false, describe: 'do not log every connection' })
      .example('$0 server sequential', 'one client at a time on 127.0.0.1:8020')
      .example('$0 server workers --threads 4', 'four clients at a time, the rest wait')
      .example('$0 server async --port 9000 --root /tmp/files', 'everyone at once') as unknown as Argv<ServerArgs>,
  handler: async (args) => {
    // Whoever reads the log may go away first (a demo that stops, `| head`): the server goes on serving, unlogged.
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
    try {
      const log = args.quiet ? null : (line: string) => process.stdout.write(`${line}\n`);
      // Stamped like the log lines around them, so that a reader of the log (socklab demo) orders them by one clock.
      const say = (line: string) => process.stdout.write(args.quiet ? `${line}\n` : `${new Date().toISOString()} ${line}\n`);
      const options = serverOptionsFromArgs(args, log);
      for (const line of ignoredOptionNotes(args.model as ServerModelName, hideBin(process.argv))) process.stderr.write(`${line}\n`);
      prepareRoot(args.root, options.root);
      const running = await startServer(args.model as ServerModelName, options);
      // The log's own line says it (with the model and the root); without the log, this is the line that does.
      if (args.quiet) process.stdout.write(`listening on ${hostAndPort(running.host, running.port)}\n`);
      let signals = 0;
      const stop = (signal: string) => {
        signals++;
        if (signals === 1) {
          // Ctrl-C is a hint only for a person at the terminal; a SIGTERM came from a program (kill, a supervisor, socklab demo).
          const again = signal === 'SIGINT' ? 'press Ctrl-C again' : `send ${signal} again`;
          say(`${signal}: stopping (uploads in progress get ${options.graceSeconds} s; ${again} to abort them)`);
          running.close().then(() => process.exit(0), exitWithFailure);
        } else {
          say(`${signal} again: aborting uploads in progress (files stay as they were)`);
          running.abort().then(() => process.exit(0), exitWithFailure);
        }
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    } catch (error) {
      exitWithFailure(listenFailure(error, args));
    }
  },
};

/** What each workers-only option means for the other models, which take it (so that one command line serves every model) but do nothing with it. */
const WORKERS_ONLY: ReadonlyArray<{ readonly option: string; readonly elsewhere: Readonly<Record<Exclude<ServerModelName, 'workers'>, string>> }> = [
  {
    option: '--threads',
    elsewhere: {
      sequential: 'sequential serves one connection at a time, on its one thread',
      async: 'async serves every connection on its one event loop',
    },
  },
  {
    option: '--max-queue',
    elsewhere: {
      sequential: 'sequential queues up to --max-connections',
      async: 'async has no queue: every connection is served at once, up to --max-connections',
    },
  },
];

/**
 * A line for each workers-only option typed for another model: a student who
 * changes --threads on `sequential` should learn why nothing changed, not
 * guess. Typed, not defaulted: the defaults say nothing.
 */
export function ignoredOptionNotes(model: ServerModelName, argv: readonly string[]): string[] {
  if (model === 'workers') return [];
  // Up to a `--` (what follows it is not options), in either spelling yargs accepts.
  const end = argv.indexOf('--');
  const options = end < 0 ? argv : argv.slice(0, end);
  const spellings = (option: string) => [option, option.replace(/(?<=\w)-([a-z])/g, (_, letter: string) => letter.toUpperCase())];
  const typed = (option: string) => spellings(option).some((spelling) => options.some((arg) => arg === spelling || arg.startsWith(`${spelling}=`)));
  return WORKERS_ONLY.filter(({ option }) => typed(option)).map(
    ({ option, elsewhere }) => `note: ${option} is for the workers model and changes nothing here (${elsewhere[model]})`,
  );
}

/** A rate in bytes per second: 0 means no minimum, so a fraction that would round to 0 is refused, not silently turned into "none". */
function checkedRate(text: string, option: string): number {
  const rate = parseByteSize(text, option);
  if (rate === 0 && !/^\s*0+(\.0*)?\s*[a-z]*\s*$/i.test(text)) {
    throw new UsageError(`${option} ${text} is less than 1 byte per second; give 1 or more (0 means no minimum)`);
  }
  return rate;
}

const ROOT_EXAMPLE = 'such as --root ./storage';

const WHY_NOT: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  EROFS: 'a read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'over the disk quota',
};

function whyNot(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
  const why = WHY_NOT[code];
  return why === undefined ? code : `${code}: ${why}`;
}

/**
 * The server's directory, ready before it listens, or a usage error that names
 * the path, the reason and the fix (the storage's own errors say only what
 * failed). Missing directories are made one level at a time: fs.mkdir's
 * recursive mode spins forever where mkdir answers ENOENT (under /proc).
 */
function prepareRoot(given: string, root: string): void {
  let stats: fs.Stats | null;
  try {
    stats = fs.statSync(root);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UsageError(`--root ${given}: part of that path is a file, not a directory; name a directory (it is created if missing), ${ROOT_EXAMPLE}`);
    if (code !== 'ENOENT') throw new UsageError(`--root ${given}: cannot look at that directory (${whyNot(error)}); name another one, ${ROOT_EXAMPLE}`);
    if (fs.lstatSync(root, { throwIfNoEntry: false })?.isSymbolicLink() === true) {
      throw new UsageError(`--root ${given} is a symbolic link to ${fs.readlinkSync(root)}, which does not exist; create that directory, or name another one, ${ROOT_EXAMPLE}`);
    }
    stats = null;
  }
  if (stats === null) {
    createDirectory(given, root);
  } else if (!stats.isDirectory()) {
    throw new UsageError(`--root ${given} is a file, not a directory; name a directory for the server's files (it is created if missing), ${ROOT_EXAMPLE}`);
  }
  try {
    // As root, access() answers as the kernel would for a write: allowed, unless the file system is read-only.
    fs.accessSync(root, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw new UsageError(
      `--root ${given}: the server may not list and write files there (${whyNot(error)}); fix its permissions (ls -ld ${given} shows them), or name another directory, ${ROOT_EXAMPLE}`,
    );
  }
}

function createDirectory(given: string, root: string): void {
  const missing: string[] = [];
  for (let at = root; !fs.existsSync(at); at = path.dirname(at)) {
    missing.unshift(at);
    if (path.dirname(at) === at) break;
  }
  for (const directory of missing) {
    try {
      fs.mkdirSync(directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(directory, { throwIfNoEntry: false })?.isDirectory() === true) continue;
      throw new UsageError(`--root ${given}: cannot create ${directory} (${whyNot(error)}); name a directory this user may write in, ${ROOT_EXAMPLE}`);
    }
  }
}

function listenFailure(error: unknown, args: ServerArgs): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'EADDRINUSE') return new UsageError(`port ${args.port} on ${args.host} is already in use (another server running? pick another with --port)`);
  if (code === 'EACCES') return new UsageError(`not allowed to listen on ${args.host}:${args.port} (ports below 1024 need privileges; pick another with --port)`);
  if (code === 'EADDRNOTAVAIL') return new UsageError(`${args.host} is not an address of this machine (check --host)`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new UsageError(`no such host "${args.host}" (check --host: a name or an address of this machine, such as 127.0.0.1, or 0.0.0.0 for every network)`);
  }
  return error;
}
