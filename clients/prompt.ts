/**
 * Line-based prompting that works the same for a person at a terminal and for
 * a script piping answers into stdin.
 *
 * One readline interface for the whole program, read through one async line
 * iterator that this module owns: lines that arrive before they are asked for
 * (piped stdin delivers them all at once) wait in the iterator instead of being
 * lost, which is what goes wrong with rl.question and with a fresh interface
 * per prompt. EOF at a prompt is an EndOfInput: the user gave up.
 *
 * On a terminal, readline does the line editing (and the prompt); Ctrl-C there
 * arrives as readline's 'SIGINT' (the terminal is in raw mode), so it is passed
 * on as a real SIGINT and the program handles Ctrl-C in one place.
 */
import readline from 'node:readline';
import type { StatusDisplay } from './progress.js';

/**
 * What a shell would make of one typed word: `my\ notes.txt`, `'my notes.txt'`
 * and `"my notes.txt"` are all `my notes.txt` (terminals paste a dropped file
 * in one of these forms, and people type them out of habit). Unquoted spaces
 * stay: a prompt takes one answer, not a list of words. With an unbalanced
 * quote or a trailing backslash the text is taken as typed.
 */
export function shellWord(typed: string): string {
  let word = '';
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < typed.length; i++) {
    const c = typed.charAt(i);
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (c === '\\') {
      const next = typed.charAt(i + 1);
      if (next === '') return typed;
      // Inside double quotes a backslash only escapes what is special there.
      if (quote === '"' && !'"\\$`'.includes(next)) word += c;
      word += next;
      i++;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else {
      word += c;
    }
  }
  return quote === null ? word : typed;
}

/** stdin ended (Ctrl-D on a terminal, the end of a pipe) while a question was open. */
export class EndOfInput extends Error {
  override readonly name = 'EndOfInput';
  constructor() {
    super('no more input');
  }
}

type Input = NodeJS.ReadableStream & { isTTY?: boolean };
type Output = NodeJS.WritableStream & { isTTY?: boolean };

export interface PrompterOptions {
  readonly input?: Input;
  readonly output?: Output;
  /**
   * Without a terminal, print each question and the answer read from the pipe,
   * so the output reads like the session a person would have seen.
   */
  readonly transcript?: boolean;
}

export interface Choice<T> {
  /** What the user types: the first letter, or the whole word. */
  readonly key: string;
  readonly word: string;
  readonly value: T;
}

export class Prompter {
  /** A person is typing (stdin is a terminal): questions may be asked. */
  readonly interactive: boolean;
  /** readline draws the prompt and edits the line (stdin and the output are terminals). */
  readonly terminal: boolean;
  private readonly rl: readline.Interface;
  private readonly lines: AsyncIterator<string>;
  private readonly input: Input;
  private readonly output: Output;
  private readonly transcript: boolean;
  private open = true;
  /** readline has closed: Ctrl-D on an empty line, or the end of a pipe. */
  private inputClosed = false;
  /** Told when a person ends the input (Ctrl-D) while no question is asked and nothing was typed ahead. */
  private readonly giveUpListeners = new Set<() => void>();
  private asking = false;
  /** Lines a person typed (and readline took) before any question asked for them. */
  private linesTypedAhead = 0;

  constructor({ input = process.stdin, output, transcript = false }: PrompterOptions = {}) {
    this.input = input;
    this.interactive = input.isTTY === true;
    // A person typing while stdout goes to a pipe would not see the questions there.
    this.output = output ?? (this.interactive && !process.stdout.isTTY && process.stderr.isTTY ? process.stderr : process.stdout);
    this.terminal = this.interactive && this.output.isTTY === true;
    this.transcript = transcript;
    this.rl = readline.createInterface({
      input,
      output: this.terminal ? this.output : undefined,
      terminal: this.terminal,
      crlfDelay: Number.POSITIVE_INFINITY,
      historySize: 0,
    });
    this.lines = this.rl[Symbol.asyncIterator]();
    this.rl.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
    this.rl.on('line', () => {
      if (!this.asking) this.linesTypedAhead++;
    });
    // readline closes as soon as a pipe ends, while lines read before still wait
    // in the iterator: only the iterator says when the input is really over.
    this.rl.once('close', () => {
      this.inputClosed = true;
      if (this.open && !this.asking && this.linesTypedAhead === 0) for (const listener of [...this.giveUpListeners]) listener();
    });
  }

  /** True while a question waits for its answer (status lines must not be drawn then). */
  get isAsking(): boolean {
    return this.asking;
  }

  /** Writes a line of conversation on the prompt's output. */
  say(text: string): void {
    this.output.write(`${text}\n`);
  }

  /** Reads one line after showing `question`. Throws EndOfInput at EOF. */
  async line(question: string): Promise<string> {
    if (!this.open) throw new EndOfInput();
    this.asking = true;
    try {
      if (this.terminal) {
        // Keep the cursor where the typing left it: text typed while queued is still in
        // readline's line, and Node 24's prompt() would otherwise put the next key before it.
        this.showPrompt(question);
      } else if (this.transcript && question !== '') {
        this.output.write(question);
      }
      const typedAhead = this.linesTypedAhead > 0;
      if (typedAhead) this.linesTypedAhead--;
      const next = await this.lines.next();
      if (next.done === true) {
        // (Unless close() ended it: that said what it had to.)
        if (this.open && (this.terminal || (this.transcript && question !== ''))) this.output.write('\n');
        this.open = false;
        throw new EndOfInput();
      }
      // Typed while no question was on the screen: show it as the answer to this one.
      if (this.terminal && typedAhead) this.output.write(`${next.value}\n`);
      // A pipe does not echo: show the answer so the transcript reads right.
      if (!this.terminal && this.transcript && question !== '' && !this.interactive) this.output.write(`${next.value}\n`);
      return next.value;
    } finally {
      this.asking = false;
    }
  }

  /** A trimmed answer; an empty one is `defaultValue` when there is one, otherwise asked again. */
  async ask(question: string, defaultValue?: string): Promise<string> {
    for (;;) {
      const answer = (await this.line(defaultValue === undefined || defaultValue === '' ? `${question} ` : `${question} [${defaultValue}] `)).trim();
      if (answer !== '') return answer;
      if (defaultValue !== undefined && defaultValue !== '') return defaultValue;
    }
  }

  /** One of `choices`, by key or word, any case; asks again (listing them) until one fits. */
  async choose<T>(question: string, choices: readonly Choice<T>[]): Promise<T> {
    const keys = choices.map((c) => c.key).join('/');
    for (;;) {
      const answer = (await this.line(`${question} [${keys}] `)).trim().toLowerCase();
      const found = choices.find((c) => answer === c.key.toLowerCase() || answer === c.word.toLowerCase());
      if (found !== undefined) return found.value;
      this.say(`please answer ${choices.map((c) => `${c.key} (${c.word})`).join(', ')}`);
    }
  }

  /** Yes or no; an empty answer is `defaultValue`. */
  async confirm(question: string, defaultValue: boolean): Promise<boolean> {
    for (;;) {
      const answer = (await this.line(`${question} ${defaultValue ? '[Y/n]' : '[y/N]'} `)).trim().toLowerCase();
      if (answer === '') return defaultValue;
      if (answer === 'y' || answer === 'yes') return true;
      if (answer === 'n' || answer === 'no') return false;
      this.say('please answer y (yes) or n (no)');
    }
  }

  /**
   * A status line (the queue wait) sharing the terminal with what the user
   * types meanwhile: it is drawn as readline's prompt, so the text typed ahead
   * is redrawn after it instead of garbling it (and is kept for the first
   * question). Undefined without a terminal: the caller uses its own. One
   * display serves any number of waits (each reconnection's).
   */
  statusDisplay(): StatusDisplay | undefined {
    if (!this.terminal) return undefined;
    let text: string | null = null;
    let showsTyping = false;
    const render = () => {
      if (text === null || this.asking) return;
      showsTyping = this.rl.line !== '';
      this.showPrompt(showsTyping ? `${text}; typed ahead: ` : text);
    };
    // readline handled the key first (it listened first): redraw when typing starts or a line is done.
    const onKey = () => {
      if ((this.rl.line !== '') !== showsTyping) render();
    };
    return {
      enabled: true,
      onGiveUp: (listener) => {
        this.giveUpListeners.add(listener);
        return () => this.giveUpListeners.delete(listener);
      },
      draw: (status) => {
        if (text === null) this.input.on('keypress', onKey);
        text = status;
        render();
      },
      clear: () => {
        if (text === null) return;
        this.input.off('keypress', onKey);
        text = null;
        if (this.asking) return;
        // Down to the typed text alone (readline keeps track of its rows), then off the screen too:
        // it is still in readline's line, and the next question shows it again.
        this.showPrompt('');
        readline.cursorTo(this.output, 0);
        readline.clearScreenDown(this.output);
      },
    };
  }

  /**
   * Draws `text` as readline's prompt, the typed text after it. Once readline
   * has closed (Ctrl-D), the text alone: prompting a closed readline starts
   * reading the terminal again, and the program would then wait for a second
   * Ctrl-D after its last line.
   */
  private showPrompt(text: string): void {
    if (!this.inputClosed) {
      this.rl.setPrompt(text);
      this.rl.prompt(true);
      return;
    }
    readline.cursorTo(this.output, 0);
    readline.clearLine(this.output, 0);
    this.output.write(text);
  }

  /** Stops reading stdin (and gives the terminal back its normal mode). */
  close(): void {
    // A question left open on the terminal: what is said next goes below it.
    if (this.open && this.asking && this.terminal) this.output.write('\n');
    this.open = false;
    this.rl.close();
  }
}
