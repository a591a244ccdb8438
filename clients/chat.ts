/**
 * Homework 1, `socklab chat`: every line typed goes to the server as ECHO and
 * its reply is printed, until the user types STOP (or stdin ends). Works the
 * same from a terminal (with a "> " prompt) and from a pipe (no prompt).
 */
import { MAX_LINE_BYTES } from '../protocol/index.js';
import { explainFailure, MAX_ECHO_TEXT_BYTES } from './messages.js';
import { EndOfInput, Prompter } from './prompt.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { openSession, quit, type ConnectionArgs, type Session } from './session.js';

/** Typed alone on a line (spaces around it do not matter, case does), ends the chat. */
export const STOP_WORD = 'STOP';

const utf8 = new TextEncoder();

export async function chat(args: ConnectionArgs): Promise<void> {
  const session = await openSession(args);
  const prompter = new Prompter();
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
      line = await prompter.line(prompter.interactive ? '> ' : '');
    } catch (error) {
      if (error instanceof EndOfInput) break;
      throw error;
    }
    if (line.trim() === STOP_WORD) break;
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
