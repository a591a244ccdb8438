/** The environment for a process a test starts: the test's own, less what would only slow or disturb that process. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // tap's loader hooks (and its own variables) would only slow every node the test starts.
  delete env.NODE_OPTIONS;
  delete env.TAP;
  delete env.SOCKLAB_DEBUG;
  // The Python examples import each other: without this, running them would leave __pycache__ in the repository.
  env.PYTHONDONTWRITEBYTECODE = '1';
  // Options every child must have, whatever else it is given: `npm run mutate` sets
  // this so that a server process reports the code it reaches (stryker.coverage.cjs).
  const nodeOptions = [extra.NODE_OPTIONS, env.SOCKLAB_CHILD_NODE_OPTIONS].filter((options) => options !== undefined && options !== '');
  return { ...env, ...extra, ...(nodeOptions.length > 0 ? { NODE_OPTIONS: nodeOptions.join(' ') } : {}) };
}
