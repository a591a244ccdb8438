/**
 * `socklab load <scenario> [server]`: many client processes against one
 * server, started together, each session's timeline recorded; then a table
 * and a text timeline (or --json).
 *
 *   socklab load chat sequential                 start the server, 8 clients × 5 ECHO
 *   socklab load chat workers --threads 4        the pool's queue shows
 *   socklab load crowd async --clients 2000      many connections per load process
 *   socklab load chat --host 10.0.0.7 --port 8020 --threads 4   a server already running elsewhere
 *   socklab load chat --protocol echo --port 9000 --serves 1    a student's plain line server on this machine
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { checkedPort, checkInteger, checkSeconds, exitWithFailure, hostOption, MAX_TIMER_MS, MAX_TIMER_SECONDS, OUTPUT_COLUMNS, outputWidth, parseByteSize, portOption, UsageError } from '../../bin/cli-support.js';
import { DEFAULT_MAX_PROCESSES, defaultProcessCount } from './load-generator.js';
import {
  defaultWarmupRuns,
  formatParam,
  isByteUnit,
  LOAD_PROTOCOLS,
  SCENARIO_NAMES,
  SCENARIOS,
  scenarioParams,
  scenarioProtocols,
  type LoadProtocol,
  type Scenario,
  type ScenarioName,
  type ScenarioParams,
} from './scenarios.js';
import { LOCAL_SERVERS, localTargetSpec, type LocalServer, type ServesAtOnce, type TargetSpec } from '../targets/targets.js';
import type { LoadOptions } from './load-run.js';

/** A session still running this long after its start is ended and counted as an error. */
const DEFAULT_SESSION_TIMEOUT_SECONDS = 120;

/** Where --protocol echo looks for the server without --host: the student's homework server runs on this machine. */
const ECHO_DEFAULT_HOST = '127.0.0.1';

interface LoadArgs {
  server?: LocalServer;
  host?: string;
  port: number;
  protocol: LoadProtocol;
  serves?: string;
  threads?: number;
  procs?: number;
  rate?: number;
  timeout: number;
  warmup: number | undefined;
  iterations: number;
  ceiling: boolean;
  json: boolean;
  wide: boolean;
  [param: string]: unknown;
}

/** Adds one flag per scenario parameter: sizes take units (16MiB), counts and ms are whole numbers. */
function withScenarioOptions(yargs: Argv, scenario: Scenario): Argv {
  for (const spec of Object.values(scenario.params)) {
    const isBytes = isByteUnit(spec.unit);
    yargs.option(spec.flag, {
      type: isBytes ? 'string' : 'number',
      default: isBytes ? formatParam(spec.unit, spec.default) : spec.default,
      describe: `${spec.describe}${spec.unit === 'ms' ? ' (ms)' : spec.unit === 'bytes/s' ? ' (bytes per second; units like 256KiB work)' : isBytes ? ' (units like 16MiB work)' : ''}`,
      group: `${scenario.name} options:`,
    });
  }
  return yargs;
}

function withLoadOptions(yargs: Argv): Argv {
  return yargs
    .positional('server', {
      choices: LOCAL_SERVERS,
      describe: 'server to start as its own process (ceiling: the bare Node line server and raw copy sink); leave out with --host',
    })
    .option('host', hostOption('load a server already running there instead of starting one'))
    .option('port', portOption('its port (with --host or --protocol echo)'))
    .option('protocol', {
      choices: LOAD_PROTOCOLS,
      default: 'v1' as LoadProtocol,
      describe: `v1: socklab's protocol; echo: a plain line server already running (--host, default ${ECHO_DEFAULT_HOST}) that answers each line with one line, such as your homework server (chat only)`,
    })
    .option('serves', {
      type: 'string',
      describe: 'with --host or --protocol echo: how many clients that server serves at once, for the ideal makespan (1 for a blocking server, all when nobody waits)',
    })
    .option('threads', {
      type: 'number',
      describe: "workers: the pool size to start it with; with --host, the running server's pool size (for the ideal makespan)",
    })
    .option('procs', { type: 'number', describe: `load processes (default: one per client, at most ${DEFAULT_MAX_PROCESSES}; ceiling: 1)` })
    .option('rate', { type: 'number', describe: 'open model: start this many sessions per second, timed from their schedule (default: all at once, closed model)' })
    .option('timeout', { type: 'number', default: DEFAULT_SESSION_TIMEOUT_SECONDS, describe: 'seconds a session may take before it is ended as an error' })
    .option('warmup', {
      type: 'number',
      describe: "runs before the measured ones, not counted (warm JIT, warm caches); default 0, with --ceiling the bench's (crowd: 3000 sessions' worth)",
    })
    .option('iterations', { type: 'number', default: 1, describe: 'measured runs: makespan as mean ± rme, percentiles over all of them' })
    .option('ceiling', { type: 'boolean', default: false, describe: 'run the same load against the ceiling servers too, their runs alternating with the server\'s (ideal makespan, % of ceiling)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the report and every session timeline as JSON' })
    .option('wide', { type: 'boolean', default: false, describe: `one table with every column on one line (about 190 columns); without it, the output fits ${OUTPUT_COLUMNS}` });
}

/** What each scenario is for, in examples of its own (the ceiling has no use for --rate, the crowd does). */
const SCENARIO_EXAMPLES: Record<ScenarioName, ReadonlyArray<readonly [string, string]>> = {
  chat: [
    ['sequential', 'homework 2: 8 clients × 5 ECHO 200 ms apart; each waits for the ones before it'],
    ['workers --threads 4', 'a pool of 4 threads: the other 4 clients wait for a free one'],
    ['async --clients 32 --think-ms 100', 'more clients, quicker chats'],
    ['--host 192.168.1.20 --port 8020 --threads 4', 'a workers server already running on another machine'],
  ],
  upload: [
    ['async', '8 clients upload 16 MiB each at once'],
    ['sequential --ceiling', 'the same one at a time, runs alternating with the bare Node copy sink\'s (% of ceiling)'],
    ['workers --threads 2 --size 64MiB', 'bigger files through a pool of 2 threads'],
  ],
  'slow-client': [
    ['sequential', 'head-of-line blocking: everyone waits behind the slow upload'],
    ['async', 'the quick clients are served while the slow one trickles'],
    ['workers --threads 2 --slow-rate 64KiB', 'a slower trickle holding one of 2 threads'],
  ],
  crowd: [
    ['async --clients 2000', '2000 connections over 32 load processes'],
    ['workers --rate 500', 'open model: 500 new sessions a second instead of all at once'],
    ['sequential --json > crowd.json', 'every session\'s timeline as JSON'],
  ],
  ceiling: [
    ['', 'the bare Node line server alone: what this machine can do at best'],
    ['async', 'PINGs back to back against async (with the load generator check)'],
    ['workers --procs 8', 'a load process per client: what waking 8 processes per reply costs'],
  ],
};

function scenarioCommand(scenario: Scenario): CommandModule<object, LoadArgs> {
  const name = scenario.name;
  return {
    command: `${name} [server]`,
    describe: scenario.summary,
    builder: (yargs: Argv) =>
      withScenarioOptions(withLoadOptions(yargs), scenario)
        .example(SCENARIO_EXAMPLES[name].map(([command, what]) => [`$0 load ${name} ${command}`.trimEnd(), what]))
        .example(
          scenarioProtocols(scenario).includes('echo') ? [[`$0 load ${name} --protocol echo --port 9000 --serves 1`, 'your own blocking line server (homework 2)']] : [],
        )
        .epilogue(`Ideal makespan: ${scenario.idealDefinition(scenarioParams(scenario))}.`) as unknown as Argv<LoadArgs>,
    handler: async (args) => {
      try {
        await runLoad(name, args);
      } catch (error) {
        exitWithFailure(error);
      }
    },
  };
}

export const loadCommand: CommandModule = {
  command: 'load',
  describe: 'start many client processes together against a server and measure each session: queue wait, replies, makespan',
  builder: (yargs: Argv) => {
    for (const name of SCENARIO_NAMES) yargs.command(scenarioCommand(SCENARIOS[name]));
    // A word that is no scenario (a typo, a server named first): say which ones there are, not "Unknown arguments".
    yargs.command({
      command: '* [scenario] [rest..]',
      describe: false,
      builder: (inner: Argv) => inner.strict(false),
      handler: (args: ArgumentsCamelCase<{ scenario?: string }>) => {
        const named = `name a scenario first: ${SCENARIO_NAMES.join(', ')} (socklab load <scenario> --help)`;
        exitWithFailure(new UsageError(args.scenario === undefined ? named : `there is no scenario "${args.scenario}": ${named}`));
      },
    });
    return yargs
      .example('$0 load chat sequential', 'homework 2: 8 clients × 5 ECHO 200 ms apart against a sequential server it starts')
      .example('$0 load chat workers --threads 4', 'the same against a pool of 4 threads: the other 4 clients queue')
      .example('$0 load slow-client async --ceiling', 'head-of-line blocking, with the bare Node ceiling measured in alternation')
      .example('$0 load crowd async --clients 2000 --json > crowd.json', '2000 connections over 32 load processes, JSON out')
      .example('$0 load chat --host 192.168.1.20 --port 8020 --threads 8', 'a server already running on another machine')
      .example('$0 load chat --protocol echo --port 9000 --serves 1', 'homework 2 on your own blocking line server (no greeting, one answer per line)')
      .epilogue('Every session records connect, greeting, each reply and its end on a clock shared by all load processes; see "$0 load <scenario> --help".');
  },
  handler: () => {},
};

function parseServes(text: string): ServesAtOnce {
  if (text.trim().toLowerCase() === 'all') return 'all';
  if (!/^\s*[0-9]+\s*$/.test(text)) throw new UsageError(`--serves takes a number of clients (1 for a blocking server) or "all", not "${text}"`);
  return checkInteger(Number(text), '--serves', 1);
}

function targetFrom(name: ScenarioName, args: LoadArgs): TargetSpec {
  const threads = args.threads === undefined ? undefined : checkInteger(args.threads, '--threads', 1, 1024);
  const serves = args.serves === undefined ? {} : { serves: parseServes(args.serves) };
  if (args.protocol === 'echo') return plainLineTarget(name, args, threads, serves);
  if (args.host !== undefined) {
    if (args.server !== undefined) throw new UsageError(`give a server to start ("${args.server}") or --host of a running one, not both`);
    return { kind: 'remote', host: args.host, port: checkedPort(args.port), ...(threads === undefined ? {} : { threads }), ...serves };
  }
  if (args.serves !== undefined) {
    throw new UsageError('--serves is for a server socklab did not start (--host or --protocol echo): socklab knows how many clients its own servers serve at once');
  }
  const server = args.server ?? (name === 'ceiling' ? 'ceiling' : undefined);
  if (server === undefined) throw new UsageError(`name a server to start (${LOCAL_SERVERS.join(', ')}) or give --host and --port of a running one`);
  return localTargetSpec(server, threads);
}

/** A plain line server already running (--protocol echo): only scenarios made of lines can run there. */
function plainLineTarget(name: ScenarioName, args: LoadArgs, threads: number | undefined, serves: { serves?: ServesAtOnce }): TargetSpec {
  if (!scenarioProtocols(SCENARIOS[name]).includes('echo')) {
    const runnable = SCENARIO_NAMES.filter((scenario) => scenarioProtocols(SCENARIOS[scenario]).includes('echo')).join(', ');
    throw new UsageError(`the ${name} scenario uses socklab's commands, so it needs a protocol-v1 server: leave out --protocol echo (a plain line server can run ${runnable})`);
  }
  if (args.server !== undefined) {
    throw new UsageError(`socklab's ${args.server} server speaks protocol v1, not plain lines: leave out --protocol echo, or give the --port of your own line server`);
  }
  if (threads !== undefined) {
    throw new UsageError("--threads is the pool size of socklab's workers server: for your own server, say how many clients it serves at once with --serves");
  }
  return { kind: 'remote', protocol: 'echo', host: args.host ?? ECHO_DEFAULT_HOST, port: checkedPort(args.port), ...serves };
}

function paramsFrom(scenario: Scenario, args: LoadArgs): ScenarioParams {
  const given: Record<string, number> = {};
  for (const [key, spec] of Object.entries(scenario.params)) {
    const raw = args[key] ?? args[spec.flag];
    const value = isByteUnit(spec.unit) ? parseByteSize(String(raw), `--${spec.flag}`) : Number(raw);
    // A time in ms ends up in a timer, which holds at most MAX_TIMER_MS.
    given[key] = checkInteger(value, `--${spec.flag}`, spec.min, spec.unit === 'ms' ? MAX_TIMER_MS : undefined);
  }
  return scenarioParams(scenario, given);
}

function optionsFrom(name: ScenarioName, args: LoadArgs): LoadOptions {
  const scenario = SCENARIOS[name];
  const params = paramsFrom(scenario, args);
  const clients = params.clients ?? 1;
  if (args.rate !== undefined && !(args.rate >= 1 / MAX_TIMER_SECONDS)) {
    throw new UsageError(`--rate must be more than 0 sessions per second (at least one every 24 days), not ${args.rate}`);
  }
  checkSeconds(args.timeout, '--timeout');
  if (args.ceiling && args.host !== undefined) {
    throw new UsageError('--ceiling starts the bare servers on this machine, which says nothing about a server on another one: leave it out with --host');
  }
  if (args.ceiling && args.protocol === 'echo') {
    throw new UsageError("--ceiling is for socklab's own servers; the chat scenario's ideal needs no ceiling: leave it out with --protocol echo (add --serves for the ideal)");
  }
  return {
    scenario: name,
    params,
    target: targetFrom(name, args),
    processes: args.procs === undefined ? defaultProcessCount(clients, scenario.defaultProcesses) : checkInteger(args.procs, '--procs', 1, clients),
    arrivalsPerSecond: args.rate ?? null,
    sessionTimeoutMs: args.timeout * 1000,
    // A comparison with the ceiling measures warm servers, as the bench does; a single look at one server starts cold.
    warmupRuns: args.warmup === undefined ? (args.ceiling ? defaultWarmupRuns(scenario, params) : 0) : checkInteger(args.warmup, '--warmup', 0, 1000),
    measuredRuns: checkInteger(args.iterations, '--iterations', 1, 1000),
    withCeiling: args.ceiling,
    json: args.json,
    width: outputWidth(args.wide),
  };
}

async function runLoad(name: ScenarioName, args: LoadArgs): Promise<void> {
  const options = optionsFrom(name, args);
  // Loaded only when a load runs: its statistics and report code would slow every other socklab command's start.
  const { runLoad: run } = await import('./load-run.js');
  await run(options);
}
