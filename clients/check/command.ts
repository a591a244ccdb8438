/**
 * `socklab check --host H --port P`: is the server there speaking protocol v1
 * (protocol/PROTOCOL.md)? One case per requirement of the page, a line per
 * case, exit 1 if any failed. For any server: socklab's, a student's, one in
 * another language.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { checkedPort, checkSeconds, exitWithFailure, UsageError, withConnectionOptions } from '../../bin/cli-support.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from '../interrupt.js';
import { asJson, caseLines, caseList, caseListJson, header, interruptedLine, stoppedAtOnceLine, summary } from './report.js';
import { DEFAULT_CASE_TIMEOUT_SECONDS, FILE_PREFIX, newRunId, probe, runCheck, selectCases } from './run.js';

interface CheckArgs {
  host: string;
  port: number;
  json: boolean;
  case: string[] | undefined;
  timeout: number;
  root: string | undefined;
  list: boolean;
}

export const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check',
  describe: 'check that a server (yours, in any language) speaks protocol v1: a pass or fail per requirement',
  builder: (yargs: Argv) =>
    withConnectionOptions(yargs)
      .option('case', {
        type: 'string',
        array: true,
        describe: 'run only this case, or the cases whose ids start with this and "/" or "-" (put/350), or match it with * (repeatable; see --list)',
      })
      .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON (the announcement goes to stderr)' })
      .option('timeout', { type: 'number', default: DEFAULT_CASE_TIMEOUT_SECONDS, describe: 'seconds each case may take; a server that does not answer fails it' })
      .option('root', {
        type: 'string',
        describe: `the folder the server stores its files in, if it runs on this machine: the check's ${FILE_PREFIX}* files are removed from it afterwards`,
      })
      .option('list', { type: 'boolean', default: false, describe: 'list the cases (id, what each checks) and exit' })
      .example('$0 check --port 9000', 'check the server listening on port 9000')
      .example('$0 check --port 9000 --root ./storage', '...and remove the files the check wrote from its ./storage afterwards')
      .example('$0 check --port 9000 --case put/350', 'run only the cases about the 350 question') as unknown as Argv<CheckArgs>,
  handler: async (args) => {
    try {
      await check(args);
    } catch (error) {
      exitWithFailure(error);
    }
  },
};

async function check(args: CheckArgs): Promise<void> {
  const patterns = checkedPatterns(args.case);
  const cases = selectCases(patterns);
  if (cases.length === 0) throw new UsageError(`no case matches --case ${patterns.join(' --case ')} (see "socklab check --list")`);
  if (args.list) {
    process.stdout.write(args.json ? caseListJson(cases) : caseList(cases));
    return;
  }
  const port = checkedPort(args.port);
  if (port === 0) throw new UsageError('--port 0 means "any free port" to a server; check needs the port your server listens on');
  checkSeconds(args.timeout, '--timeout');
  const root = args.root === undefined ? null : checkedRoot(args.root);
  const endpoint = { host: args.host, port };
  const interruption = new Interruption(args.json ? process.stderr : process.stdout);
  const report = await withInterruptHandler(interruption.handle, async () => {
    await probe(endpoint, args.timeout);
    const runId = newRunId();
    const filePrefix = `${FILE_PREFIX}${runId}-`;
    // Said before anything is written: the files are the one trace the check leaves.
    interruption.notes.write(header(args.host, port, cases.length, args.timeout, filePrefix, root));
    interruption.runStarted(filePrefix, root);
    const line = caseLines(cases);
    return runCheck({ ...endpoint, cases, timeoutSeconds: args.timeout, root, runId, signal: interruption.signal }, (result) => {
      if (!args.json) process.stdout.write(line(result));
    });
  });
  if (report.interrupted) {
    interruption.notes.write(interruptedLine(report, cases.length, root));
    // The case cut short may still have a timer running to its deadline: nothing is left to wait for.
    process.exit(INTERRUPTED_EXIT_CODE);
  }
  process.stdout.write(args.json ? asJson(report, args.timeout) : summary(report, root));
  process.exitCode = report.passed === report.results.length ? 0 : 1;
}

/**
 * Ctrl-C during a check. Before the first case nothing is written, so it ends
 * the check at once. During the run the first one stops it the way its end
 * would, files removed (a case against a server that never answers takes
 * --timeout seconds, 73 times over); a second one ends it at once, naming the
 * files to delete.
 */
class Interruption {
  private readonly stop = new AbortController();
  private run: { readonly filePrefix: string; readonly root: string | null } | null = null;

  /** `notes`: where the header and the interruption go (stderr with --json, whose stdout is the report alone). */
  constructor(readonly notes: NodeJS.WritableStream) {}

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  runStarted(filePrefix: string, root: string | null): void {
    this.run = { filePrefix, root };
  }

  readonly handle = (): void => {
    if (this.run === null) {
      process.stderr.write('socklab check: interrupted (Ctrl-C) before the first case; nothing was written.\n');
      process.exit(INTERRUPTED_EXIT_CODE);
    }
    if (!this.stop.signal.aborted) {
      this.stop.abort();
      return;
    }
    process.stderr.write(stoppedAtOnceLine(this.run.filePrefix, this.run.root));
    process.exit(INTERRUPTED_EXIT_CODE);
  };
}

/** --case's values: an empty one (`--case ""`, or --case with nothing after it) would match nothing, or everything. */
function checkedPatterns(given: readonly string[] | undefined): string[] {
  if (given === undefined) return [];
  if (given.length === 0 || given.some((pattern) => pattern.trim() === '')) {
    throw new UsageError('--case needs a case id or pattern, such as --case put/350 or --case "names/*" (see "socklab check --list"), not an empty one');
  }
  return [...given];
}

function checkedRoot(root: string): string {
  const resolved = path.resolve(root);
  const fix = 'give the folder your server stores its files in, or leave --root out';
  let stats: fs.Stats;
  try {
    stats = fs.statSync(resolved);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`--root ${root}: there is no such folder here (${fix})`);
    throw new UsageError(`--root ${root}: cannot look at it (${code ?? (error instanceof Error ? error.message : String(error))}): ${fix}`);
  }
  if (!stats.isDirectory()) throw new UsageError(`--root ${root} is ${stats.isFile() ? 'a file' : 'a device, socket or pipe'}, not a folder: ${fix}`);
  return resolved;
}
