/**
 * What a client shows while it waits: the queue wait before the greeting, and
 * transfer progress. On a terminal, one line on stderr redrawn in place; without
 * one (a pipe, a log file), at most a line or two, never a stream of updates.
 */
import { formatBytes } from './messages.js';

type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

const MIB = 1024 * 1024;
/** Redraws of a progress line at most this often: a fast transfer must not drown the terminal. */
const REDRAW_MS = 100;
/** The queue wait is shown once it lasts longer than this, and redrawn this often. */
export const WAIT_TICK_MS = 500;

/** Where a status (the queue wait, progress) is drawn. */
export interface StatusDisplay {
  /** False when there is no terminal to redraw a line on. */
  readonly enabled: boolean;
  draw(text: string): void;
  clear(): void;
  /**
   * Calls `listener` if the person watching gives up while it is subscribed:
   * Ctrl-D at the terminal with nothing typed ahead. Returns the unsubscribe.
   * Absent where input cannot say that (a pipe ends as soon as its lines are
   * read, which is not giving up).
   */
  onGiveUp?(listener: () => void): () => void;
}

/** One line at the bottom of a terminal, redrawn in place; does nothing on anything else. */
export class StatusLine implements StatusDisplay {
  private shown = false;

  constructor(private readonly stream: Output = process.stderr) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  draw(text: string): void {
    if (!this.enabled) return;
    const width = Math.max(20, (this.stream.columns ?? 80) - 1);
    const fitted = [...text].length > width ? `${[...text].slice(0, width - 1).join('')}…` : text;
    this.stream.write(`\r\x1b[2K${fitted}`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    this.stream.write('\r\x1b[2K');
    this.shown = false;
  }
}

export interface WaitIndicator {
  /** The wait is over (greeted, or failed): say so if the wait was shown. Returns the seconds waited. */
  stop(outcome: 'served' | 'failed'): number;
}

/**
 * From TCP connect to the greeting, a server may keep us queued: a sequential
 * one while it serves someone else, a pool while all its threads are taken.
 * Which it is (and how many are ahead) the client cannot know, so the line
 * says only what it knows. After half a second, say so: on a terminal a line
 * counting the seconds (on `display`, stderr's status line by default),
 * otherwise one line when the wait starts and one when it ends.
 */
export function showWaiting(stream: Output = process.stderr, display?: StatusDisplay): WaitIndicator {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const status = display ?? new StatusLine(stream);
  let announced = false;
  const tick = () => {
    announced = true;
    if (status.enabled) status.draw(`waiting for the server to serve us (it is busy with other clients)... ${seconds().toFixed(1)} s`);
    else stream.write('waiting for the server...\n');
  };
  const first = setTimeout(() => {
    tick();
    if (status.enabled) interval = setInterval(tick, WAIT_TICK_MS).unref();
  }, WAIT_TICK_MS).unref();
  let interval: NodeJS.Timeout | undefined;
  return {
    stop(outcome) {
      clearTimeout(first);
      clearInterval(interval);
      const waited = seconds();
      status.clear();
      if (announced && outcome === 'served') stream.write(`served after ${waited.toFixed(1)} s\n`);
      return waited;
    },
  };
}

/** Percent, bytes and MiB/s of one transfer, drawn on a terminal only. */
export class TransferProgress {
  private started = performance.now();
  private lastDraw = 0;
  private done = 0;
  private readonly status: StatusLine;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly options: { readonly whenDone?: string; readonly stream?: Output } = {},
  ) {
    this.status = new StatusLine(options.stream ?? process.stderr);
  }

  /** The clock starts again (the transfer had not really begun). */
  restart(): void {
    this.started = performance.now();
  }

  update(done: number): void {
    this.done = done;
    if (!this.status.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < REDRAW_MS && done < this.total) return;
    this.lastDraw = now;
    const percent = this.total === 0 ? 100 : Math.floor((done / this.total) * 100);
    const after = done === this.total && this.options.whenDone !== undefined ? `, ${this.options.whenDone}` : '';
    this.status.draw(`${this.label}: ${percent}%  ${mib(done)} of ${mib(this.total)} MiB  ${mib(this.rate())} MiB/s${after}`);
  }

  /** Removes the line; returns "N bytes in S s (R MiB/s)" for a closing message. */
  finish(): string {
    this.status.clear();
    const seconds = this.seconds();
    const time = `${formatBytes(this.done)} in ${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
    // Over a few milliseconds a rate says more about timers than about the network.
    return seconds < 0.1 ? time : `${time} (${mib(this.rate())} MiB/s)`;
  }

  /** Removes the line without a summary (the transfer failed). */
  abandon(): void {
    this.status.clear();
  }

  private seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  private rate(): number {
    const seconds = this.seconds();
    return seconds > 0 ? this.done / seconds : 0;
  }
}

function mib(bytes: number): string {
  const value = bytes / MIB;
  return value.toFixed(value < 10 ? 2 : 1);
}
