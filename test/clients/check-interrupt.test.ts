/**
 * Ctrl-C during `socklab check`, the real binary getting a real SIGINT while
 * it talks to a server over TCP: the first one ends the run the way its end
 * would (the case in progress cut short, the run's files removed from --root,
 * one line saying how far it got, exit 130), a second one at once (naming the
 * files to delete); one before the first case just stops; and a file the
 * check cannot remove is named, not silently left.
 */
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { INTERRUPTED_EXIT_CODE } from '../../clients/interrupt.js';
import { makeTempRoot } from '../helpers/server.js';
import type { Tap } from '../helpers/tap.js';
import { finished, readLines, runCli, unprivilegedUser, type RunResult } from './run-cli.js';

/** The cases of these runs: ping passes against the server below, put/new-file gets stuck in it. */
const CASES = ['--case', 'ping', '--case', 'put/new-file', '--case', 'put/empty'];

interface StuckServer {
  readonly port: number;
  /** 'put' (the name) once it has created a file; 'eof' when a client ends its side. */
  readonly events: EventEmitter;
  close(): Promise<void>;
}

/**
 * A student's server that serves `root` and gets stuck mid-upload: it greets,
 * answers PING, and on a PUT creates the named file in `root` and answers
 * nothing from then on. `ignoresEof`: it never closes a connection, not even
 * after the client's EOF (as a server stuck in a loop would).
 */
async function startStuckServer(t: Tap, root: string, { ignoresEof = false } = {}): Promise<StuckServer> {
  const events = new EventEmitter();
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: ignoresEof }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('end', () => events.emit('eof'));
    socket.write('220 socklab/1 stuck ready\n');
    readLines(socket, (line) => {
      if (/^ping$/i.test(line)) socket.write('200 PONG\n');
      const name = /^PUT (socklab-check-[\w.-]+) /i.exec(line)?.[1];
      if (name === undefined) return;
      fs.writeFileSync(path.join(root, name), '');
      events.emit('put', name);
      return 'stop';
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  t.teardown(close);
  return { port: (server.address() as net.AddressInfo).port, events, close };
}

function tempRoot(t: Tap): string {
  const root = makeTempRoot();
  t.teardown(() => {
    fs.chmodSync(root, 0o755);
    fs.rmSync(root, { recursive: true, force: true });
  });
  fs.writeFileSync(path.join(root, 'notes.txt'), "the student's own file\n");
  return root;
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

t.test('Ctrl-C during a case that never ends: the run stops, its files are removed, one line says so, exit 130', async (t) => {
  const root = tempRoot(t);
  const server = await startStuckServer(t, root);
  let interruptedAt = 0;
  const r = await runCli(['check', '--port', String(server.port), '--root', root, ...CASES, '--timeout', '60'], {
    onSpawn: (child) => {
      void once(server.events, 'put').then(() => {
        interruptedAt = performance.now();
        child.kill('SIGINT');
      });
    },
  });
  finished(t, r);
  t.ok(interruptedAt > 0, 'the check got as far as the upload, and was interrupted there');
  t.equal(r.code, INTERRUPTED_EXIT_CODE, 'exit 130, as for any command ended by Ctrl-C', { signal: r.signal, stderr: r.stderr });
  t.ok(performance.now() - interruptedAt < 10_000, "it ends within seconds of the Ctrl-C, not at the case's 60 s timeout");
  t.match(r.stdout, /^ {2}pass {2}ping /m, 'the case that ended before it is reported');
  t.notMatch(r.stdout, /put\/new-file|put\/empty/, 'the case cut short has no verdict; the next one never started');
  t.match(
    r.stdout,
    new RegExp(`\\n\\nInterrupted \\(Ctrl-C\\) after 1 of 3 cases\\. Removed 1 file named socklab-check-[0-9a-f]{8}-\\* from ${escaped(root)}\\.\\n$`),
    'one line: how far it got, and what it removed',
  );
  t.same(fs.readdirSync(root), ['notes.txt'], "the run's file is gone; the student's own file is kept");
  t.equal(r.stderr, '', 'nothing on stderr');
});

t.test('Ctrl-C twice: the second one ends the check at once and names the files to delete', async (t) => {
  const root = tempRoot(t);
  // The first Ctrl-C waits (a moment) for the server to close what the case left: this one never does.
  const server = await startStuckServer(t, root, { ignoresEof: true });
  let interrupts = 0;
  const r = await runCli(['check', '--port', String(server.port), '--root', root, ...CASES, '--timeout', '2'], {
    onSpawn: (child) => {
      void once(server.events, 'put')
        .then(() => {
          const left = once(server.events, 'eof');
          child.kill('SIGINT');
          interrupts++;
          return left;
        })
        .then(() => {
          child.kill('SIGINT');
          interrupts++;
        });
    },
  });
  finished(t, r);
  t.equal(interrupts, 2, 'two Ctrl-Cs, the second while the first was waiting for the server');
  t.equal(r.code, INTERRUPTED_EXIT_CODE, 'exit 130', { signal: r.signal });
  const prefix = /files named (socklab-check-[0-9a-f]{8}-)\*/.exec(r.stdout)?.[1] ?? 'no prefix announced';
  t.equal(
    r.stderr,
    `socklab check: stopped at once (a second Ctrl-C); files named ${prefix}* may be left in ${root}: delete them yourself.\n`,
    'one line naming the prefix to delete, and where',
  );
  t.notMatch(r.stdout, /Interrupted \(Ctrl-C\) after/, 'no removal was waited for');
  t.equal(fs.readdirSync(root).filter((name) => name.startsWith(prefix)).length, 1, 'the file it names is the one left');
});

t.test('Ctrl-C before the first case (waiting for the server to close the probe): it stops, nothing was written', async (t) => {
  const root = tempRoot(t);
  const server = await startStuckServer(t, root, { ignoresEof: true });
  const r = await runCli(['check', '--port', String(server.port), '--root', root, '--timeout', '60'], {
    onSpawn: (child) => void once(server.events, 'eof').then(() => child.kill('SIGINT')),
  });
  finished(t, r);
  t.equal(r.code, INTERRUPTED_EXIT_CODE, 'exit 130', { signal: r.signal });
  t.equal(r.stdout, '', 'no report: no case ran');
  t.equal(r.stderr, 'socklab check: interrupted (Ctrl-C) before the first case; nothing was written.\n');
  t.same(fs.readdirSync(root), ['notes.txt']);
});

/** `socklab check`, interrupted at the server's first PUT; as nobody when this user is root, whom no permission stops. */
function runInterruptedCheck(args: readonly string[], server: StuckServer, beforeInterrupt: () => void): Promise<RunResult> {
  return runCli(args, {
    user: unprivilegedUser(),
    onSpawn: (child) =>
      void once(server.events, 'put').then(() => {
        beforeInterrupt();
        child.kill('SIGINT');
      }),
  });
}

t.test('a file the check cannot remove: the line names it and says to delete the files of the run', async (t) => {
  const root = tempRoot(t);
  const server = await startStuckServer(t, root);
  // The check may list the folder, not remove from it.
  fs.chmodSync(root, 0o755);
  const r = await runInterruptedCheck(['check', '--port', String(server.port), '--root', root, ...CASES, '--timeout', '60'], server, () => fs.chmodSync(root, 0o555));
  finished(t, r);
  t.equal(r.code, INTERRUPTED_EXIT_CODE, 'exit 130', { signal: r.signal, stderr: r.stderr });
  const left = fs.readdirSync(root).filter((name) => name !== 'notes.txt');
  t.equal(left.length, 1, 'the file is still there');
  const prefix = /^(socklab-check-[0-9a-f]{8}-)/.exec(left[0] ?? '')?.[1] ?? 'no file';
  t.match(
    r.stdout,
    new RegExp(
      `\\nInterrupted \\(Ctrl-C\\) after 1 of 3 cases\\. Could not remove ${escaped(left[0] ?? '')} from ${escaped(root)} \\((EACCES|EPERM)\\): ` +
        `delete the files named ${escaped(prefix)}\\* there yourself\\.\\n$`,
    ),
    'the line names the file left, why, and the prefix of the files to delete',
  );
});
