// Mutation testing (`npm run mutate`, not part of `npm test`): StrykerJS changes
// one thing at a time in the source (a `<` for a `<=`, a condition for `true`, a
// string for '') and runs the tests that cover it; a change no test notices is a
// "survivor", a place where a bug could hide. See "Mutation testing" in README.md.
//
// Stryker instruments the TypeScript in a sandbox copy of the project, then
// `buildCommand` compiles that copy to dist/ (the tests run on compiled JS, as
// `npm test` does), and the tap runner runs each compiled test file with node.
// Only the test files below are run, and per mutant only those that reach it.
//
// Pick the folders with --mutate:
//   npm run mutate -- --mutate 'protocol/**/*.ts'

const FOLDERS = ['protocol', 'servers/storage', 'transport'];

/**
 * The folders named by `--mutate` on the command line (all three without it).
 * A folder's mutants are judged by its own tests, which mirror it (protocol/ by
 * test/protocol/): a bug in the protocol that only a storage test happens to
 * notice is a gap in the protocol's tests, and the slower suites of the other
 * folders would multiply the run time for every mutant they reach.
 */
function foldersToMutate(argv) {
  const at = argv.findIndex((arg) => arg === '--mutate' || arg === '-m');
  const given = at >= 0 ? argv[at + 1] : argv.find((arg) => arg.startsWith('--mutate='))?.slice('--mutate='.length);
  if (given === undefined) return FOLDERS;
  const named = FOLDERS.filter((folder) => given.split(',').some((pattern) => pattern.startsWith(`${folder}/`) || folder.startsWith(pattern.replace(/\/?\*.*$/, ''))));
  return named.length > 0 ? named : FOLDERS;
}

const folders = foldersToMutate(process.argv);

/**
 * Tests from outside a folder that still judge it, because what they check only
 * a server process shows: the storage's fsyncs and renames in the order that makes
 * a commit durable (seen under strace), what a restart keeps or undoes after a
 * crash at each step of an append, and which temporary files a start-up leaves to
 * a server that is still running. stryker.coverage.cjs lets Stryker see the code
 * those server processes reach.
 */
const PROCESS_TESTS = {
  'servers/storage': ['durability', 'append-crash', 'append-race-crash', 'no-hard-links', 'rolling-restart'].map((name) => `dist/test/reliability/${name}.test.js`),
};

// Every mutant that reaches the protocol core runs its property tests: 50 random
// cases per property (not the 400 of `npm test`) keep a run within the hour on two
// cores and still find what a change breaks. The test processes inherit this.
process.env.SOCKLAB_PROPERTY_RUNS ??= '50';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  // The sans-I/O protocol, the storage shared by every server, the socket plumbing.
  mutate: FOLDERS.map((folder) => `${folder}/**/*.ts`),
  testRunner: 'tap',
  tap: {
    // Each folder's own tests, compiled (see foldersToMutate), and the server-process tests that judge it.
    testFiles: folders.flatMap((folder) => [`dist/test/${folder}/**/*.test.js`, ...(PROCESS_TESTS[folder] ?? [])]),
    // The second file lets code that runs only in worker threads or child processes count as covered (see that file).
    nodeArgs: ['-r', '{{hookFile}}', '-r', './stryker.coverage.cjs', '{{testFile}}'],
  },
  buildCommand: 'npm run build',
  // The instrumented code is not type-correct on purpose: tsc must still emit it.
  disableTypeChecks: '{protocol,servers,transport}/**/*.ts',
  // The sandbox needs the sources and configs, not the old build or the results.
  ignorePatterns: ['dist', 'results', 'reports', '.tap', '.stryker-tmp'],
  coverageAnalysis: 'perTest',
  // Under load (a shared machine, a busy laptop) a slow test must not count as a kill.
  timeoutMS: 5_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // With --reporters ...,event-recorder: each result as it comes (to follow a long run).
  eventReporter: { baseDir: 'reports/mutation/events' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
