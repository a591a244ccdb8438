#!/usr/bin/env node
/** The one socklab binary: every tool is a subcommand. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { demoCommand } from '../bench/demo/command.js';
import { loadCommand } from '../bench/load/load-command.js';
import { checkCommand } from '../clients/check/command.js';
import { chatCommand, clientCommand } from '../clients/cli.js';
import { serverCommand } from '../servers/cli.js';
import { exitWithFailure, UsageError } from './cli-support.js';
import { socklabCommand } from './invocation.js';

// Usage lines and examples show the command that runs socklab where the user is (bin/invocation.ts).
const socklab = socklabCommand();

await yargs(hideBin(process.argv))
  .scriptName(socklab)
  .usage('$0 <command> [options]\n\nSee and measure blocking vs non-blocking socket servers.')
  .command(serverCommand)
  .command(clientCommand)
  .command(chatCommand)
  .command(loadCommand)
  .command(demoCommand)
  .command(checkCommand)
  .demandCommand(1, 'name a command: server, client, chat, load, demo or check (see --help)')
  .strict()
  .recommendCommands()
  .help()
  .alias('help', 'h')
  .version()
  .wrap(Math.min(110, process.stdout.columns || 100))
  // yargs reports its own parse errors with a message; a failure thrown by a command comes without one.
  .fail((message, error) => {
    if (!message) exitWithFailure(error);
    process.stderr.write(`socklab: ${message}\n(run "${socklab} --help" or "${socklab} <command> --help" for usage)\n`);
    process.exit(2);
  })
  .parseAsync()
  .catch((error: unknown) => exitWithFailure(error instanceof Error ? error : new UsageError(String(error))));
