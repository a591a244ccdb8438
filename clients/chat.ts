/**
 * Homework 1, `socklab chat`: every line typed goes to the server as ECHO and
 * its reply is printed, until the user types STOP (or stdin ends). Works the
 * same from a terminal (with a "> " prompt) and from a pipe (no prompt).
 *
 * While it waits for the next line it watches the connection: a server that
 * times us out (`421 idle timeout`), shuts down or is killed ends the chat at
 * once, with the reason and exit code 1, not at the next line typed.
 */
import { MAX_LINE_BYTES } from '../protocol/index.js';
import { explainFailure, MAX_ECHO_TEXT_BYTES } from './messages.js';
import { EndOfInput, Prompter } from './prompt.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { openSession, quit, unlessLost, type ConnectionArgs, type Session } from './session.js';

/** Typed alone on a line (spaces around it and case do not matter: `stop` too), ends the chat. */
export const STOP_WORD = 'STOP';

export function isStop(line: string): boolean {
  return line.trim().toUpperCase() === STOP_WORD;
}

const utf8 = new TextEncoder();

export async function chat(args: ConnectionArgs): Promise<void> {
  // The prompter first: what is typed while queued is kept, and does not garble the waiting line.
  const prompter = new Prompter();
  let session: Session;
  try {
    session = await openSession(args, prompter.statusDisplay());
  } catch (error) {
    prompter.close();
    throw error;
  }
  if (prompter.interactive) {
    process.stderr.write(`connected to ${session.host}:${session.port}; every line you type is sent as ECHO, ${STOP_WORD} ends\n`);
  }
  process.stdout.write(`${session.greeting.reply.text}\n`);
  const interrupted = () => {
    prompter.close();
    session.client.close();
    process.exit(INTERRUPTED_EXIT_CODE);
  };
  try {
    await withInterruptHandler(interrupted, () => converse(session, prompter));
  } catch (error) {
    prompter.close();
    session.client.close();
    throw error;
  }
  prompter.close();
  await quit(session);
}

async function converse(session: Session, prompter: Prompter): Promise<void> {
  for (;;) {
    let line: string;
    try {
      line = await unlessLost(session, prompter.line(prompter.interactive ? '> ' : ''));
    } catch (error) {
      if (error instanceof EndOfInput) break;
      throw error;
    }
    if (isStop(line)) break;
    const bytes = utf8.encode(line).length;
    if (bytes > MAX_ECHO_TEXT_BYTES) {
      process.stderr.write(
        `socklab: line not sent: it is ${bytes} bytes, and ECHO carries at most ${MAX_ECHO_TEXT_BYTES} (a request line is at most ${MAX_LINE_BYTES} bytes)\n`,
      );
      continue;
    }
    let reply: string;
    try {
      reply = await session.client.echo(line);
    } catch (error) {
      throw explainFailure(error, { kind: 'echo' });
    }
    process.stdout.write(`${reply}\n`);
  }
}
