/** The environment for a process a test starts: the test's own, less what would only slow or disturb that process. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // tap's loader hooks (and its own variables) would only slow every node the test starts.
  delete env.NODE_OPTIONS;
  delete env.TAP;
  delete env.SOCKLAB_DEBUG;
  return { ...env, ...extra };
}
