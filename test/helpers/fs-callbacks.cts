/**
 * Standing in for node:fs's callback calls, which the async storage makes
 * (servers/storage/fs-calls.ts reads `fs.<call>` each time, so a replacement
 * made here reaches it), and knowing which open descriptors belong to the
 * files a fake is about, whichever flavour opened them (fs.openSync for the
 * blocking one, fs.open for the other). For the fakes loaded into server
 * processes (test/reliability/inject-*.cts) and for tests of the storage in
 * their own process. CommonJS, so that `node --require` can load the fakes.
 */
import fs = require('node:fs');

export type Callback = (error: NodeJS.ErrnoException | null, ...results: unknown[]) => void;
type Call = (...args: unknown[]) => void;
type CallbackCall = 'open' | 'close' | 'write' | 'writev' | 'fsync' | 'fdatasync' | 'link';

/**
 * Replaces node:fs's callback `name`: `instead` gets the call's arguments
 * (without its callback), its callback, and the real function to call or not.
 * Returns what puts the real function back.
 */
export function replaceCallbackCall(name: CallbackCall, instead: (args: unknown[], callback: Callback, real: Call) => void): () => void {
  const calls = fs as unknown as Record<CallbackCall, Call>;
  const real = calls[name];
  calls[name] = (...args: unknown[]) => {
    const callback = typeof args.at(-1) === 'function' ? (args.pop() as Callback) : () => {};
    instead(args, callback, real);
  };
  return () => {
    calls[name] = real;
  };
}

/** Reports `error` to a callback as node:fs does: never before the call has returned. */
export function failLater(callback: Callback, error: NodeJS.ErrnoException): void {
  process.nextTick(callback, error);
}

/** The descriptors, open now, of the files `matches` picks (by the path they were opened with). */
export function trackDescriptors(matches: (file: unknown) => boolean): ReadonlySet<number> {
  const tracked = new Set<number>();
  const openSync = fs.openSync;
  fs.openSync = ((file: fs.PathLike, ...rest: unknown[]) => {
    const fd = (openSync as (...args: unknown[]) => number)(file, ...rest);
    if (matches(file)) tracked.add(fd);
    return fd;
  }) as typeof fs.openSync;
  const closeSync = fs.closeSync;
  fs.closeSync = (fd: number) => {
    tracked.delete(fd);
    closeSync(fd);
  };
  replaceCallbackCall('open', (args, callback, open) => {
    open(...args, (error: NodeJS.ErrnoException | null, fd: number) => {
      if (error === null && matches(args[0])) tracked.add(fd);
      callback(error, fd);
    });
  });
  replaceCallbackCall('close', ([fd], callback, close) => {
    tracked.delete(fd as number);
    close(fd, callback);
  });
  return tracked;
}
