#!/usr/bin/env node
/** The one socklab binary: every tool is a subcommand. */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { serverCommand } from '../servers/cli.js';
import { exitWithFailure, UsageError } from './cli-support.js';
import { socklabCommand } from './invocation.js';

// Usage lines and examples show the command that runs socklab where the user is (bin/invocation.ts).
const socklab = socklabCommand();

/**
 * A server process loads the server and nothing else. The other commands'
 * modules (the load generator, the reports, the clients) doubled its heap,
 * and with the larger heap V8 ran a full collection every few dozen MiB of an
 * upload: 22 mark-compacts per 512 MiB against 1, and about 15% of the
 * server's CPU (measured with --trace-gc and per-thread CPU from /proc).
 */
async function otherCommands(): Promise<CommandModule<object, any>[]> {
  const [{ clientCommand, chatCommand }, { loadCommand }, { demoCommand }, { checkCommand }] = await Promise.all([
    import('../clients/cli.js'),
    import('../bench/load/load-command.js'),
    import('../bench/demo/command.js'),
    import('../clients/check/command.js'),
  ]);
  return [clientCommand, chatCommand, loadCommand, demoCommand, checkCommand];
}
const commands: CommandModule<object, any>[] = [serverCommand, ...(process.argv[2] === 'server' ? [] : await otherCommands())];

await yargs(hideBin(process.argv))
  .scriptName(socklab)
  .usage('$0 <command> [options]\n\nSee and measure blocking vs non-blocking socket servers.')
  .command(commands)
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
