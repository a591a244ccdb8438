// Loaded after Stryker's hook into every test process of `npm run mutate`, and
// (through execArgv) into every worker thread a test starts.
//
// Stryker learns which tests reach a mutant from the coverage its instrumented
// code counts in the test process. Code that only runs in a worker thread (the
// blocking half of transport/thread-relay.ts) counts into that thread's own
// globals, which nobody reads: its mutants would be reported as "no coverage"
// and never tested, though the tests run them. So, during the dry run, a worker
// tells the test process each mutant it reaches, over a BroadcastChannel, and the
// test process adds it to the coverage Stryker's hook writes out at exit.
// (The active mutant needs no help: workers inherit the environment that names it.)
const { BroadcastChannel, isMainThread } = require('node:worker_threads');

if (process.env.STRYKER_DRY_RUN === 'true') {
  const namespace = process.env.STRYKER_NAMESPACE ?? '__stryker__';
  const strykerGlobal = (globalThis[namespace] ??= {});
  const channel = new BroadcastChannel(`stryker-worker-coverage-${process.pid}`);
  channel.unref();
  if (isMainThread) {
    channel.onmessage = ({ data }) => {
      const coverage = (strykerGlobal.mutantCoverage ??= { static: {}, perTest: {} });
      for (const id of data) coverage.static[id] = (coverage.static[id] ?? 0) + 1;
    };
  } else {
    // Posted at once, not batched: a worker's session loop runs without yielding, and may be terminated.
    const counts = {};
    strykerGlobal.mutantCoverage = {
      perTest: {},
      static: new Proxy(counts, {
        set(target, id, count) {
          if (!(id in target)) channel.postMessage([id]);
          target[id] = count;
          return true;
        },
      }),
    };
  }
}
