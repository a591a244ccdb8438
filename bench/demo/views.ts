/**
 * How `socklab demo` shows a run. On a terminal (LiveView): a screen redrawn
 * ten times a second in place, a row per client (state, lines answered,
 * waiting and service time so far, a timeline bar growing to the right) and
 * under it the tail of the server's log. Anywhere else (PlainView): one
 * timestamped line per state change and per server log line, for a pipe or a
 * file.
 */
import { formatMs } from '../report/format.js';
import { niceCeiling } from '../report/report-svg.js';
import { BAR, barCells } from '../report/report-timeline.js';
import { servedMs, STATE_LABEL, waitedMs, type ClientState, type DemoClient, type DemoRun, type LogLine, type StateChange } from './state.js';

/** What a view is told as the demo goes on. */
export interface DemoView {
  begin(run: DemoRun, intro: RunIntro): void;
  change(run: DemoRun, change: StateChange): void;
  serverLine(run: DemoRun, line: LogLine): void;
  /** The run is over (or stopped): the last picture of it stays. */
  end(run: DemoRun): void;
  /** Text after the live part: the final timeline, the summary. */
  print(text: string): void;
  close(): void;
}

export interface RunIntro {
  /** `run 2 of 3`, or empty. */
  readonly counter: string;
  /** What each client does. */
  readonly script: string;
  /** What to expect from this model, before it is measured. */
  readonly expectation: string;
}

// ---------------------------------------------------------------------------
// Text with colours that is cut to the terminal's width by what shows, not by bytes.

type Style = 'bold' | 'dim' | 'waiting' | 'served' | 'done' | 'failed' | 'heading';

/** Queued orange-yellow and served blue, as in the SVG timelines; done green, failed red. */
const SGR: { readonly [S in Style]: string } = { bold: '1', dim: '2', waiting: '33', served: '94', done: '32', failed: '31', heading: '1;4' };

const BAR_STYLE: Readonly<Record<string, Style | undefined>> = { [BAR.queued]: 'waiting', [BAR.served]: 'served', [BAR.failed]: 'failed' };

const STATE_STYLE: { readonly [S in ClientState]: Style | undefined } = {
  starting: 'dim',
  connecting: undefined,
  waiting: 'waiting',
  served: 'served',
  done: 'done',
  failed: 'failed',
};

export class StyledLine {
  private readonly parts: Array<{ text: string; style: Style | undefined }> = [];

  add(text: string, style?: Style): this {
    if (text !== '') this.parts.push({ text, style });
    return this;
  }

  get text(): string {
    return this.parts.map((p) => p.text).join('');
  }

  /**
   * The line broken at spaces into lines of at most `width` characters (a
   * word longer than that is cut when rendered); continuation lines begin
   * with `indent`. Styles stay with their text.
   */
  wrap(width: number, indent = ''): StyledLine[] {
    const lines = [new StyledLine()];
    let used = 0;
    for (const part of this.parts) {
      for (const token of part.text.split(/(?<= )(?=[^ ])/)) {
        const length = Array.from(token.trimEnd()).length;
        if (used > 0 && used + length > width) {
          lines[lines.length - 1]?.trimEnd();
          lines.push(new StyledLine().add(indent));
          used = indent.length;
        }
        lines[lines.length - 1]?.add(token, part.style);
        used += Array.from(token).length;
      }
    }
    return lines;
  }

  private trimEnd(): void {
    const last = this.parts.at(-1);
    if (last !== undefined) last.text = last.text.trimEnd();
  }

  /** At most `width` characters shown; colours as SGR sequences when `colour`. */
  render(width: number, colour: boolean): string {
    let room = width;
    let out = '';
    for (const part of this.parts) {
      if (room <= 0) break;
      const chars = Array.from(part.text);
      const shown = chars.slice(0, room).join('');
      room -= Math.min(room, chars.length);
      out += colour && part.style !== undefined ? `\x1b[${SGR[part.style]}m${shown}\x1b[0m` : shown;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------
// The live screen

export interface FrameOptions {
  readonly now: number;
  readonly columns: number;
  readonly rows: number;
  readonly intro: RunIntro;
  /** Time zero until the first client connects. */
  readonly fallbackStart: number;
}

const NAME_WIDTH = 9;
/** On a narrow terminal, `waiting` says what `waiting in the queue` says (the legend names the queue). */
const SHORT_STATE_LABEL: { readonly [S in ClientState]: string } = { ...STATE_LABEL, waiting: 'waiting' };
const LINES_WIDTH = 5;
const TIME_WIDTH = 7;
const GAP = '  ';
/** Narrower terminals (80 columns) leave out the lines column and use the short state labels, for a longer bar. */
const WIDE_ENOUGH_FOR_LINES = 100;
/** Rows under the client rows besides the log: the legend, a blank line, the log's heading. */
const ROWS_UNDER_CLIENTS = 3;
const MIN_LOG_ROWS = 3;
/** Continuation lines of a wrapped line begin here: under the text, past a log line's time. */
const LOG_INDENT = ' '.repeat(14);

function seconds(ms: number | null): string {
  return ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`;
}

/** The bar of one client: '.' from its connect until its greeting, '=' from then until done, 'x' where it failed. */
export function clientBar(client: DemoClient, start: number, spanMs: number, width: number, now: number): string {
  if (client.connectStart === null) return ' '.repeat(width);
  const column = (at: number) => Math.min(width - 1, Math.max(0, Math.floor(((at - start) / spanMs) * width)));
  return barCells(width, column, { queuedFrom: client.connectStart, servedFrom: client.greeted, end: client.done ?? now, failed: client.state === 'failed' });
}

/** One screenful: the header, a row per client, the legend, the tail of the server log. */
export function renderFrame(run: DemoRun, options: FrameOptions): StyledLine[] {
  const { now, columns, rows, intro } = options;
  const start = run.startedAt ?? options.fallbackStart;
  const elapsed = Math.max(0, (run.endedAt ?? now) - start);
  const spanMs = niceCeiling(Math.max(run.idealMs * 1.1 + 200, elapsed, 1000));
  const width = columns - 1;
  const lines: StyledLine[] = [];
  // The program's name only where there is room for it: on 80 columns the title must fit on one line.
  const title = new StyledLine()
    .add(columns >= WIDE_ENOUGH_FOR_LINES ? 'socklab demo · ' : '', 'bold')
    .add(`${run.label} server`, 'bold')
    .add(run.port > 0 ? ` on ${run.host}:${run.port}` : '')
    .add(intro.counter === '' ? '' : ` · ${intro.counter}`)
    .add(run.startedAt === null ? ` · starting the server and ${run.clientCount} client processes...` : ` · ${(elapsed / 1000).toFixed(1)} s`);
  lines.push(...title.wrap(width, '  '), ...new StyledLine().add(intro.script).wrap(width, '  '), ...new StyledLine().add(intro.expectation, 'dim').wrap(width, '  '), new StyledLine());

  // On a narrow terminal the lines column and the long state labels give their room to the bar.
  const wide = columns >= WIDE_ENOUGH_FOR_LINES;
  const labels = wide ? STATE_LABEL : SHORT_STATE_LABEL;
  const stateWidth = Math.max(...Object.values(labels).map((label) => label.length));
  const linesColumn = (text: string) => (wide ? `${text.padStart(LINES_WIDTH)}${GAP}` : '');
  const prefixWidth = NAME_WIDTH + GAP.length + stateWidth + GAP.length + linesColumn('').length + TIME_WIDTH + GAP.length + TIME_WIDTH + GAP.length;
  const barWidth = Math.max(10, columns - prefixWidth - 3);
  const axis = `timeline: 0 → ${formatMs(spanMs)}`;
  lines.push(
    new StyledLine().add(
      `${'client'.padEnd(NAME_WIDTH)}${GAP}${'state'.padEnd(stateWidth)}${GAP}${linesColumn('lines')}${'waited'.padStart(TIME_WIDTH)}${GAP}${'served'.padStart(TIME_WIDTH)}${GAP} ${axis}`,
      'heading',
    ),
  );

  const fixedRows = lines.length + ROWS_UNDER_CLIENTS;
  const logRoom = Math.max(0, rows - 1 - fixedRows - run.clients.length);
  const clientRoom = logRoom >= MIN_LOG_ROWS ? run.clients.length : Math.max(1, rows - 1 - fixedRows - MIN_LOG_ROWS - 1);
  const shown = run.clients.slice(0, clientRoom);
  for (const client of shown) {
    const style = STATE_STYLE[client.state];
    const state = client.state === 'failed' && client.error !== null ? `failed: ${client.error}` : labels[client.state];
    const bar = clientBar(client, start, spanMs, barWidth, run.endedAt ?? now);
    const line = new StyledLine()
      .add(`client ${client.client + 1}`.padEnd(NAME_WIDTH) + GAP)
      .add(state.padEnd(stateWidth).slice(0, stateWidth), style)
      .add(`${GAP}${linesColumn(`${client.lines}/${run.messages}`)}`)
      .add(seconds(waitedMs(client, now)).padStart(TIME_WIDTH), client.state === 'waiting' ? 'waiting' : undefined)
      .add(GAP)
      .add(seconds(servedMs(client, now)).padStart(TIME_WIDTH), client.state === 'served' ? 'served' : undefined)
      .add(`${GAP}|`);
    for (const stretch of bar.match(/(\.+|=+|x+| +)/g) ?? []) line.add(stretch, BAR_STYLE[stretch[0] ?? ' ']);
    lines.push(line.add('|'));
  }
  if (shown.length < run.clients.length) lines.push(new StyledLine().add(`… and ${run.clients.length - shown.length} more clients (a taller terminal shows them)`, 'dim'));
  lines.push(
    new StyledLine()
      .add(`'${BAR.queued}' waiting in the queue`, 'waiting')
      .add('  ')
      .add(`'${BAR.served}' being served`, 'served')
      .add('  ')
      .add(`'${BAR.failed}' failed`, 'failed')
      .add('  Ctrl-C stops the demo', 'dim'),
    new StyledLine(),
    new StyledLine().add('server log', 'heading'),
  );
  // The newest log lines that fit, each wrapped under its text rather than cut at the terminal's edge.
  let logRows = Math.max(MIN_LOG_ROWS, rows - 1 - lines.length);
  const log: StyledLine[][] = [];
  for (const entry of [...run.log].reverse()) {
    const wrapped = new StyledLine().add(`  ${relative(entry.at - start).padStart(9)}  `, 'dim').add(run.annotate(entry.text)).wrap(width, LOG_INDENT);
    if (wrapped.length > logRows) break;
    log.unshift(wrapped);
    logRows -= wrapped.length;
  }
  lines.push(...log.flat());
  return lines.slice(0, Math.max(1, rows - 1));
}

function relative(ms: number): string {
  return `${ms < 0 ? '-' : '+'}${(Math.abs(ms) / 1000).toFixed(3)} s`;
}

interface Terminal {
  readonly columns: number;
  readonly rows: number;
  write(text: string): boolean;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const SYNC_BEGIN = '\x1b[?2026h';
const SYNC_END = '\x1b[?2026l';
const REDRAW_MS = 100;

/** The live screen on a terminal: redraws the current run in place, 10 times a second. */
export class LiveView implements DemoView {
  private run: DemoRun | null = null;
  private intro: RunIntro = { counter: '', script: '', expectation: '' };
  private began = 0;
  private drawnLines = 0;
  private timer: NodeJS.Timeout | null = null;
  private cursorHidden = false;
  private readonly onResize = () => {
    // Lines drawn at the old width may have wrapped: start the picture again on a clear screen.
    this.terminal.write('\x1b[2J\x1b[H');
    this.drawnLines = 0;
    this.draw();
  };

  constructor(
    private readonly terminal: Terminal,
    private readonly colour: boolean,
    private readonly now: () => number,
  ) {
    terminal.on('resize', this.onResize);
  }

  begin(run: DemoRun, intro: RunIntro): void {
    this.run = run;
    this.intro = intro;
    this.began = this.now();
    this.drawnLines = 0;
    if (!this.cursorHidden) this.terminal.write(HIDE_CURSOR);
    this.cursorHidden = true;
    this.draw();
    this.timer ??= setInterval(() => this.draw(), REDRAW_MS);
  }

  change(): void {
    this.draw();
  }

  serverLine(): void {
    this.draw();
  }

  end(run: DemoRun): void {
    if (this.run !== run) return;
    this.draw();
    this.run = null;
    this.drawnLines = 0;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  print(text: string): void {
    this.terminal.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  close(): void {
    if (this.run !== null) this.end(this.run);
    this.terminal.off('resize', this.onResize);
    if (this.cursorHidden) this.terminal.write(SHOW_CURSOR);
    this.cursorHidden = false;
  }

  /** Moves up over the previous picture and draws the new one over it, each line cleared to its end. */
  private draw(): void {
    const run = this.run;
    if (run === null) return;
    const columns = Math.max(40, this.terminal.columns || 80);
    const rows = Math.max(12, this.terminal.rows || 24);
    const frame = renderFrame(run, { now: this.now(), columns, rows, intro: this.intro, fallbackStart: this.began });
    // Inside a synchronized update (terminals that know it show the new picture at once; others ignore it).
    let out = `${SYNC_BEGIN}${this.drawnLines > 0 ? `\x1b[${this.drawnLines}A\r` : ''}`;
    for (const line of frame) out += `${line.render(columns - 1, this.colour)}\x1b[K\n`;
    // A shorter picture than the last: clear what is left of the old one.
    out += `\x1b[J${SYNC_END}`;
    this.drawnLines = frame.length;
    this.terminal.write(out);
  }
}

// ---------------------------------------------------------------------------
// Plain lines

/** `17:05:12.345`, local time. */
export function clockTime(at: number): string {
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** What a state change means, in words. */
export function describeChange(change: StateChange): string {
  const { client } = change;
  const who = `client ${client.client + 1}`;
  switch (change.to) {
    case 'starting':
      return `${who}: starting`;
    case 'connecting':
      return `${who}: connecting`;
    case 'waiting':
      return `${who}: waiting in the queue (connected; not greeted yet)`;
    case 'served':
      return `${who}: being served (greeted after ${formatMs(waitedMs(client, change.at) ?? 0)} in the queue)`;
    case 'done':
      return `${who}: done (waited ${formatMs(waitedMs(client, change.at) ?? 0)}, served ${formatMs(servedMs(client, change.at) ?? 0)}, ${client.lines} lines echoed)`;
    case 'failed':
      return `${who}: failed: ${client.error ?? 'error'}${client.errorMessage === null ? '' : ` (${client.errorMessage})`}`;
  }
}

/**
 * Lines from the clients (their events) and from the server (its log, read
 * from a pipe) arrive out of step by a few ms; held this long, they are
 * printed in time order, so that the `+s` column never runs backwards.
 */
const REORDER_MS = 250;
/**
 * A server line that names a connection (`127.0.0.1:51160 (#1)`) whose client
 * has not reported its port yet is held this much longer, with every line after
 * it, so that it can say which client that is; a busy machine delays a client
 * process's report past REORDER_MS.
 */
const NAMING_HOLD_MS = 2000;

interface PendingLine {
  readonly at: number;
  /** Made when printed: a server line names its clients with what is known by then. */
  readonly text: () => string;
  /** False while the line is worth holding for more to be known. */
  readonly ready: () => boolean;
  readonly heldUntil: number;
}

/** One timestamped line per event: `17:05:12.345 +1.204 s  client 2: being served (...)`. */
export class PlainView implements DemoView {
  private pending: PendingLine[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly write: (text: string) => void,
    /** The demo's start: the `+s` of every line counts from here. */
    private readonly origin: number,
    private readonly now: () => number,
  ) {}

  private line(at: number, text: string | (() => string), ready: () => boolean = () => true): void {
    this.pending.push({ at, text: typeof text === 'string' ? () => text : text, ready, heldUntil: this.now() + NAMING_HOLD_MS });
    this.timer ??= setInterval(() => this.flush(this.now() - REORDER_MS), REORDER_MS / 2).unref();
  }

  /** Prints, in time order, the lines held from before `until` (and before the first line still worth holding). */
  private flush(until = Number.POSITIVE_INFINITY): void {
    this.pending.sort((a, b) => a.at - b.at);
    const now = this.now();
    let printed = 0;
    for (const entry of this.pending) {
      if (entry.at > until) break;
      if (until !== Number.POSITIVE_INFINITY && now < entry.heldUntil && !entry.ready()) break;
      this.write(`${clockTime(entry.at)} ${relative(entry.at - this.origin).padStart(9)}  ${entry.text()}\n`);
      printed += 1;
    }
    this.pending.splice(0, printed);
    if (this.pending.length === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  begin(run: DemoRun, intro: RunIntro): void {
    this.flush();
    this.line(this.now(), `demo: ${run.label} server${intro.counter === '' ? '' : ` (${intro.counter})`}; ${intro.script}`);
    this.line(this.now(), `demo: ${intro.expectation}`);
  }

  change(_run: DemoRun, change: StateChange): void {
    this.line(change.at, describeChange(change));
  }

  serverLine(run: DemoRun, line: LogLine): void {
    this.line(line.at, () => `server: ${run.annotate(line.text)}`, () => run.namesEveryConnection(line.text));
  }

  end(): void {}

  print(text: string): void {
    this.flush();
    this.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  close(): void {
    this.flush();
  }
}
