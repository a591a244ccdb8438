/**
 * A server process to fuzz (fuzz.ts, fuzz.test.ts), and what must hold after:
 * it still answers PING, it logged no failed session, no temporary file is
 * left, nothing appeared next to its root, and SIGTERM stops it with exit 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ServerModelName } from '../../servers/index.js';
import { tempFilesIn } from '../helpers/wire-fixture.js';
import { FUZZ_MAX_FILE_SIZE, stillAnswersPing } from './fuzz-runner.js';
import { ServerProcess } from './processes.js';

export interface FuzzTarget {
  readonly server: ServerProcess;
  /** Holds the root and a sentinel file, nothing else. */
  readonly outer: string;
}

const SENTINEL = 'sentinel.txt';

export async function startFuzzTarget(model: ServerModelName, outer: string): Promise<FuzzTarget> {
  const root = path.join(outer, 'root');
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(outer, SENTINEL), 'outside the root');
  const server = await ServerProcess.start(model, {
    root,
    args: ['--max-file-size', String(FUZZ_MAX_FILE_SIZE), '--idle-timeout', '30', '--threads', '8', '--grace', '2'],
  });
  return { server, outer };
}

/** Every problem found after fuzzing (empty: all well); stops the server. */
export async function checkAfterFuzzing(target: FuzzTarget): Promise<string[]> {
  const problems: string[] = [];
  const ping = await stillAnswersPing(target.server.port);
  if (ping !== null) problems.push(ping);
  const failedSessions = target.server.lines.filter((line) => / failed: /.test(line));
  if (failedSessions.length > 0) problems.push(`${failedSessions.length} sessions failed in the server, e.g. ${failedSessions[0]}`);
  const exit = await target.server.stop();
  if (exit.code !== 0) problems.push(`SIGTERM: the server exited with ${exit.code ?? exit.signal}`);
  const temps = tempFilesIn(target.server.root);
  if (temps.length > 0) problems.push(`temporary files left: ${temps.join(', ')}`);
  const outside = fs.readdirSync(target.outer).sort();
  if (JSON.stringify(outside) !== JSON.stringify(['root', SENTINEL])) problems.push(`next to the root: ${outside.join(', ')}`);
  if (fs.readFileSync(path.join(target.outer, SENTINEL), 'utf8') !== 'outside the root') problems.push('the sentinel outside the root changed');
  return problems;
}
