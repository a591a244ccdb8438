/**
 * `socklab check --host H --port P`: is the server there speaking protocol v1
 * (protocol/PROTOCOL.md)? One case per requirement of the page, a line per
 * case, exit 1 if any failed. For any server: socklab's, a student's, one in
 * another language.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { checkedPort, exitWithFailure, UsageError, withConnectionOptions } from '../../bin/cli-support.js';
import { asJson, caseLines, caseList, header, summary } from './report.js';
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
  const patterns = args.case ?? [];
  const cases = selectCases(patterns);
  if (cases.length === 0) throw new UsageError(`no case matches --case ${patterns.join(' --case ')} (see "socklab check --list")`);
  if (args.list) {
    process.stdout.write(caseList(cases));
    return;
  }
  const port = checkedPort(args.port);
  if (port === 0) throw new UsageError('--port 0 means "any free port" to a server; check needs the port your server listens on');
  if (!Number.isFinite(args.timeout) || args.timeout <= 0) throw new UsageError(`--timeout takes a number of seconds above 0, not ${args.timeout}`);
  const root = args.root === undefined ? null : checkedRoot(args.root);
  const endpoint = { host: args.host, port };
  await probe(endpoint, args.timeout);

  const runId = newRunId();
  const filePrefix = `${FILE_PREFIX}${runId}-`;
  // Said before anything is written: the files are the one trace the check leaves.
  (args.json ? process.stderr : process.stdout).write(header(args.host, port, cases.length, args.timeout, filePrefix, root));
  const width = Math.max(...cases.map((c) => c.id.length));
  const line = caseLines(width);
  const report = await runCheck({ ...endpoint, cases, timeoutSeconds: args.timeout, root, runId }, (result) => {
    if (!args.json) process.stdout.write(line(result));
  });
  process.stdout.write(args.json ? asJson(report, args.timeout) : summary(report, root));
  process.exitCode = report.passed === report.results.length ? 0 : 1;
}

function checkedRoot(root: string): string {
  const resolved = path.resolve(root);
  let isDirectory = false;
  try {
    isDirectory = fs.statSync(resolved).isDirectory();
  } catch {
    // reported below
  }
  if (!isDirectory) throw new UsageError(`--root ${root}: there is no such folder here (give the folder your server stores its files in, or leave --root out)`);
  return resolved;
}
