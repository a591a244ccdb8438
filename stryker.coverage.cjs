// Loaded after Stryker's hook into every test process of `npm run mutate`, into
// every worker thread a test starts (through execArgv), and into every process a
// test starts through test/helpers/child-env.ts (through NODE_OPTIONS): a server
// process, and the worker threads that server starts.
//
// Stryker learns which tests reach a mutant from the coverage its instrumented
// code counts in the test process. Code that runs elsewhere counts into that
// thread's or that process's own globals, which nobody reads: its mutants would be
// reported as "no coverage", or as survivors of the tests that do reach and kill
// them (a server process's fsyncs, seen under strace; its start-up after a crash).
// So, during the dry run:
// - a worker thread tells its process's main thread each mutant it reaches, over a
//   BroadcastChannel;
// - a child process appends each mutant it reaches to a file of its own, at once
//   (a test may SIGKILL it), in a folder the test process names;
// - the test process adds both to the coverage Stryker's hook writes out at exit.
// (The active mutant needs no help: threads and children inherit the environment
// that names it.) In every run, a child exits once its test process is gone.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { BroadcastChannel, isMainThread } = require('node:worker_threads');

/** Names the folder children write to; set by the test process, inherited by its children. */
const CHILD_FOLDER_VARIABLE = 'STRYKER_CHILD_COVERAGE_DIR';
/** The test process's pid, which its children watch. */
const TEST_PROCESS_VARIABLE = 'STRYKER_TEST_PROCESS_PID';

const testProcessPid = process.env[TEST_PROCESS_VARIABLE];
const isChildProcess = testProcessPid !== undefined && Number(testProcessPid) !== process.pid;
const dryRun = process.env.STRYKER_DRY_RUN === 'true';

if (isMainThread && !isChildProcess) {
  process.env[TEST_PROCESS_VARIABLE] = String(process.pid);
  process.env.SOCKLAB_CHILD_NODE_OPTIONS = `--require ${JSON.stringify(__filename)}`;
}

if (isMainThread && isChildProcess) {
  // Stryker kills a test process that outlives its time (a mutant that hangs), and a server that test
  // started would live on, orphaned, some of them spinning under their mutant and slowing every later
  // test. A child goes when its test process is gone.
  setInterval(() => {
    try {
      process.kill(Number(testProcessPid), 0);
    } catch {
      process.exit(1);
    }
  }, 500).unref();
}

if (dryRun) {
  const namespace = process.env.STRYKER_NAMESPACE ?? '__stryker__';
  const strykerGlobal = (globalThis[namespace] ??= {});
  const channel = new BroadcastChannel(`stryker-worker-coverage-${process.pid}`);
  channel.unref();

  /** Counts `id` as reached, whichever thread or process reports it. */
  const countsIn = (coverage) => (id) => {
    coverage.static[id] = (coverage.static[id] ?? 0) + 1;
  };

  if (!isMainThread) {
    // Posted at once, not batched: a worker's session loop runs without yielding, and may be terminated.
    strykerGlobal.mutantCoverage = { perTest: {}, static: reportingFirstSight({}, (id) => channel.postMessage([id])) };
  } else if (!isChildProcess) {
    const coverage = (strykerGlobal.mutantCoverage ??= { static: {}, perTest: {} });
    channel.onmessage = ({ data }) => data.forEach(countsIn(coverage));
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'stryker-child-coverage-'));
    process.env[CHILD_FOLDER_VARIABLE] = folder;
    // Before Stryker's own exit handler, which writes the coverage out.
    process.prependListener('exit', () => {
      for (const file of fs.readdirSync(folder)) {
        fs.readFileSync(path.join(folder, file), 'utf8').split('\n').filter(Boolean).forEach(countsIn(coverage));
      }
      fs.rmSync(folder, { recursive: true, force: true });
    });
  } else {
    // A child's main thread: what it and its worker threads reach goes to its file.
    const file = path.join(process.env[CHILD_FOLDER_VARIABLE], String(process.pid));
    const record = (id) => fs.appendFileSync(file, `${id}\n`);
    strykerGlobal.mutantCoverage = { perTest: {}, static: reportingFirstSight({}, record) };
    channel.onmessage = ({ data }) => data.forEach(record);
  }
}

/** `counts`, calling `report(id)` the first time each mutant id is counted. */
function reportingFirstSight(counts, report) {
  return new Proxy(counts, {
    set(target, id, count) {
      if (!(id in target)) report(id);
      target[id] = count;
      return true;
    },
  });
}
