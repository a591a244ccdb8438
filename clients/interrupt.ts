/**
 * Ctrl-C, with a meaning that depends on what the client is doing: waiting to
 * be served, answering a prompt, uploading. Handlers nest; the innermost one
 * decides. A handler usually ends the process (it cleans up synchronously
 * first); one that returns lets the work wind down itself (socklab check
 * stops its run and removes its files).
 */
const handlers: (() => void)[] = [];

function dispatch(): void {
  // Whatever was on the terminal's line (a prompt, "^C") stays; the message goes below it.
  if (process.stderr.isTTY) process.stderr.write('\n');
  const handler = handlers.at(-1);
  if (handler !== undefined) handler();
  else process.exit(130);
}

/** Runs `work` with Ctrl-C calling `handler` instead of whatever was in place. */
export async function withInterruptHandler<T>(handler: () => void, work: () => Promise<T>): Promise<T> {
  if (handlers.length === 0) process.on('SIGINT', dispatch);
  handlers.push(handler);
  try {
    return await work();
  } finally {
    handlers.splice(handlers.lastIndexOf(handler), 1);
    if (handlers.length === 0) process.off('SIGINT', dispatch);
  }
}

/** The exit code of a program ended by Ctrl-C (128 + SIGINT), as shells report it. */
export const INTERRUPTED_EXIT_CODE = 130;
