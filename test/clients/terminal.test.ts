/**
 * The chat in a real terminal (a pseudo-terminal from `script`), as a student
 * runs it: the "> " prompt, readline's line editing, keys typed while queued.
 * - typing while queued behind another client shows what was typed after the
 *   waiting line, which keeps counting (no `... 11.5 styp`), and the line typed
 *   ahead is sent once served; keys typed after the prompt shows go after it;
 * - a server SIGKILLed while the prompt waits: the reason on a line of its own
 *   at once, exit 1;
 * - Ctrl-D while queued gives up at once (exit 1, saying so); Ctrl-D after a
 *   line typed ahead keeps that line: it is sent once served, and the chat
 *   ends after it, without waiting for a second Ctrl-D.
 */
import fs from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { makeTempRoot } from '../helpers/server.js';
import { requireSystemTools } from '../helpers/system-tool.js';
import { Terminal } from '../docs/lesson-runner.js';
import { ServerProcess } from '../reliability/processes.js';
import { BIN } from './run-cli.js';
import type { Tap } from '../helpers/tap.js';

const SEE_MS = 20_000;

let workDir: string;
t.before(() => {
  workDir = makeTempRoot('socklab-terminal-');
});
t.teardown(() => fs.rmSync(workDir, { recursive: true, force: true }));

async function server(t: Tap, model: 'sequential' | 'async'): Promise<ServerProcess> {
  const root = makeTempRoot(`socklab-terminal-${model}-`);
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const started = await ServerProcess.start(model, { root, args: ['--quiet', '--idle-timeout', '0'] });
  t.teardown(() => started.crash());
  return started;
}

function chatInTerminal(t: Tap, port: number): Terminal {
  const terminal = new Terminal(1, `${process.execPath} ${BIN} chat --port ${port}`, workDir, 'terminal.test', false);
  t.teardown(() => void terminal.kill());
  return terminal;
}

/** `script` brings the pseudo-terminal: without it, a skip that names it (a failure in CI). */
function needsScript(t: Tap): boolean {
  return requireSystemTools(t, 'script');
}

/** Keys pressed without Enter (Terminal.type() presses Enter after them). */
function keys(terminal: Terminal, text: string): void {
  terminal['child'].stdin?.write(text);
}

/** A client that the sequential server serves (greeted) until `release`. */
async function occupy(port: number): Promise<{ release: () => void }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  return { release: () => socket.end('QUIT\n') };
}

/** A chat queued behind another client on a sequential server, with `typ` typed while it waits. */
async function typingWhileQueued(t: Tap): Promise<{ first: { release: () => void }; terminal: Terminal }> {
  const sequential = await server(t, 'sequential');
  const first = await occupy(sequential.port);
  const terminal = chatInTerminal(t, sequential.port);
  await terminal.started();
  t.ok(await terminal.see('waiting for the server to serve us (it is busy with other clients)... ', SEE_MS), 'it waits, and says so truthfully');
  keys(terminal, 'typ');
  t.ok(await terminal.see('; typed ahead: typ', SEE_MS), 'what is typed shows after the waiting line');
  return { first, terminal };
}

t.test('typing while queued: the waiting line keeps counting, the text typed shows after it, and is sent once served', async (t) => {
  if (!needsScript(t)) return;
  const { first, terminal } = await typingWhileQueued(t);
  t.ok(await waitForRedraw(terminal, terminal.text.length), 'the counter goes on, redrawn with the typed text after it');
  keys(terminal, 'ed ahead\r');
  first.release();
  t.ok(await terminal.see('served after', SEE_MS), 'served once the first client left');
  t.ok(await terminal.see('> typed ahead\ntyped ahead\n', SEE_MS), 'the line typed ahead was sent, shown after the prompt, and echoed', { shown: terminal.text });
  t.notMatch(terminal.text, /\d s(typ|ed ahead)/, 'never the typed text glued to the counter');
  await terminal.type('stop');
  const exit = await terminal.waitEnd(SEE_MS);
  t.equal(exit?.code, 0, 'lowercase stop ended the chat');
});

t.test('typing started while queued and finished once served: the keys go after the text typed ahead', async (t) => {
  if (!needsScript(t)) return;
  const { first, terminal } = await typingWhileQueued(t);
  first.release();
  t.ok(await terminal.see('socklab/1 sequential ready\n> typ', SEE_MS), 'the prompt shows the text typed ahead');
  keys(terminal, 'ed ahead\r');
  t.ok(await terminal.see('typed ahead\n', SEE_MS), 'the line as typed was sent and echoed', { shown: terminal.text });
  await terminal.type('stop');
  t.equal((await terminal.waitEnd(SEE_MS))?.code, 0);
});

/** Ctrl-D: the terminal's end of input, on an empty line. */
const END_OF_INPUT = '\x04';

t.test('Ctrl-D while queued, nothing typed: it gives up waiting at once, and says so', async (t) => {
  if (!needsScript(t)) return;
  const sequential = await server(t, 'sequential');
  const first = await occupy(sequential.port);
  t.teardown(first.release);
  const terminal = chatInTerminal(t, sequential.port);
  await terminal.started();
  t.ok(await terminal.see('waiting for the server to serve us', SEE_MS), 'queued');
  keys(terminal, END_OF_INPUT);
  t.ok(await terminal.see('socklab: gave up waiting for the server after ', SEE_MS), 'it gives up', { shown: terminal.text });
  t.ok(await terminal.see(' s (the input ended)\n', SEE_MS), '...saying why');
  t.equal((await terminal.waitEnd(SEE_MS))?.code, 1, 'exit 1, while the first client is still being served');
});

t.test('Ctrl-D while queued after a line typed ahead: the line is sent once served, then the chat ends by itself', async (t) => {
  if (!needsScript(t)) return;
  const { first, terminal } = await typingWhileQueued(t);
  keys(terminal, 'ed ahead\r');
  keys(terminal, END_OF_INPUT);
  // Still queued: the line typed ahead keeps it waiting.
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.notOk(terminal.hasEnded, 'it keeps waiting, with a line to send');
  first.release();
  t.ok(await terminal.see('typed ahead\ntyped ahead\n', SEE_MS), 'the line typed ahead was sent and echoed', { shown: terminal.text });
  t.equal((await terminal.waitEnd(SEE_MS))?.code, 0, 'and the chat ended without a second Ctrl-D');
});

/** True once the waiting line was drawn again (with a later count) after `from`. */
async function waitForRedraw(terminal: Terminal, from: number): Promise<boolean> {
  const until = performance.now() + SEE_MS;
  while (performance.now() < until) {
    if (/\.\.\. \d+\.\d s; typed ahead: typ/.test(terminal.text.slice(from))) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

t.test('the server SIGKILLed while the prompt waits: the reason at once, on its own line, exit 1', async (t) => {
  if (!needsScript(t)) return;
  const async = await server(t, 'async');
  const terminal = chatInTerminal(t, async.port);
  await terminal.started();
  t.ok(await terminal.see('socklab/1 async ready', SEE_MS));
  await terminal.type('hello');
  t.ok(await terminal.see('hello\n> ', SEE_MS), 'echoed; the prompt waits');
  keys(terminal, 'half a li');
  t.ok(await terminal.see('half a li', SEE_MS));
  await async.crash();
  t.ok(
    await terminal.see('\nsocklab: the server closed the connection without a word while we waited for your input (was it stopped or killed?)\n', SEE_MS),
    'said at once, below the prompt',
  );
  const exit = await terminal.waitEnd(SEE_MS);
  t.equal(exit?.code, 1, 'exit 1');
});
