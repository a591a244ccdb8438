/**
 * "226 only after the data is on disk", checked from the system calls of a
 * real server process under `strace -f` (every thread: the workers' threads
 * and libuv's pool included), for every model:
 *
 * - new and overwrite: fsync of the temporary file holding the data, then its
 *   link (new, and an append to an absent name: link never replaces a file
 *   another server created meanwhile) or rename (overwrite) onto the name,
 *   then fsync of the root directory, then the `226`;
 * - append to an existing file (written in place): the intent record taken
 *   (linked into place: the lock), then the record with the file's size
 *   (fsync'd, renamed over it, the directory fsync'd) before the first byte
 *   goes into the file, then fsync of the file after its last byte, then the
 *   intent removed and the directory fsync'd, then the `226`.
 *
 * A SIGKILL keeps the page cache, so the crash tests cannot see a missing
 * fsync; this test can.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SERVER_MODELS } from '../../servers/index.js';
import { makeTempRoot } from '../helpers/server.js';
import { requireSystemTools } from '../helpers/system-tool.js';
import { WireClient } from '../helpers/wire.js';
import { sha256 } from '../helpers/wire-fixture.js';
import { ServerProcess } from './processes.js';

const TRACED = 'fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat,write,writev,pwrite64,pwritev';

/** One system call in strace's output: its index in call order, name, and arguments as printed. */
interface Call {
  readonly index: number;
  readonly name: string;
  readonly args: string;
}

/** The calls in the order they started (an `<unfinished ...>` line is the start; its `resumed` line is skipped). */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  for (const line of text.split('\n')) {
    const match = /^\d+ +([a-z0-9_]+)\((.*)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) calls.push({ index: calls.length, name: match[1], args: match[2] });
  }
  return calls;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

class Trace {
  constructor(
    private readonly calls: readonly Call[],
    private readonly root: string,
  ) {}

  /** The first call at or after `from` (and before `to`) named one of `names` whose arguments match. */
  find(names: readonly string[], args: RegExp, from = 0, to = Number.POSITIVE_INFINITY): Call | undefined {
    return this.calls.find((c) => c.index >= from && c.index < to && names.includes(c.name) && args.test(c.args));
  }

  findLast(names: readonly string[], args: RegExp, from: number, to: number): Call | undefined {
    return [...this.calls].reverse().find((c) => c.index >= from && c.index < to && names.includes(c.name) && args.test(c.args));
  }

  /** The reply `226 <name> ...` going to a socket. */
  reply226(name: string, from: number): Call | undefined {
    return this.find(['write', 'writev'], new RegExp(`"226 ${escape(name)} `), from);
  }

  fsyncOf(file: string, from: number, to: number): Call | undefined {
    return this.find(['fsync', 'fdatasync'], new RegExp(`^\\d+<${escape(file)}>`), from, to);
  }

  fsyncOfRoot(from: number, to: number): Call | undefined {
    return this.fsyncOf(this.root, from, to);
  }
}

async function upload(c: WireClient, name: string, mode: string, data: Buffer): Promise<string> {
  const first = await c.request(`PUT ${name} ${data.length} mode=${mode}`);
  if (first !== `150 send ${data.length} bytes`) return first;
  await c.send(data);
  return c.readLine();
}

t.jobs = SERVER_MODELS.length;

for (const model of SERVER_MODELS) {
  t.test(`${model}: fsync of the data, then link, rename or in-place append, then fsync of the directory, and only then 226`, async (t) => {
    if (!requireSystemTools(t, 'strace')) return;
    const root = fs.realpathSync(makeTempRoot(`socklab-durable-${model}-`));
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-strace-'));
    t.teardown(() => {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(logDir, { recursive: true, force: true });
    });
    const log = path.join(logDir, 'trace');
    const server = await ServerProcess.start(model, {
      root,
      args: ['--threads', '2', '--quiet'],
      launcher: ['strace', '-f', '-qq', '-y', '-s', '120', '-e', `trace=${TRACED}`, '-o', log],
    });
    t.teardown(async () => {
      // strace's first line is the traced node process: kill it, or it outlives a killed strace.
      const pid = Number(/^(\d+) /.exec(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '')?.[1]);
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await server.crash();
    });
    const c = await WireClient.connect(server.port, { timeoutMs: 30_000 });
    t.teardown(() => c.destroy());
    await c.readLine(30_000);
    // An append to a name that does not exist yet is committed like a new file: linked into place.
    const steps = [
      { name: 'durable.txt', mode: 'new', data: Buffer.alloc(70_000, 'n'), placed: 'linked' },
      { name: 'durable.txt', mode: 'overwrite', data: Buffer.alloc(50_000, 'o'), placed: 'renamed' },
      { name: 'durable.txt', mode: 'append', data: Buffer.alloc(90_000, 'a'), placed: 'in place' },
      { name: 'durable.txt', mode: 'append', data: Buffer.from('!'), placed: 'in place' },
      { name: 'fresh.txt', mode: 'append', data: Buffer.alloc(40_000, 'f'), placed: 'linked' },
    ] as const;
    const sizes = new Map<string, number>();
    for (const step of steps) {
      const size = (step.mode === 'append' ? (sizes.get(step.name) ?? 0) : 0) + step.data.length;
      sizes.set(step.name, size);
      t.equal(await upload(c, step.name, step.mode, step.data), `226 ${step.name} ${size} ${sha256(step.data)}`, `${step.mode} of ${step.data.length} bytes to ${step.name}`);
    }
    t.equal(await c.request('PING', 30_000), '200 PONG');
    const trace = new Trace(parseTrace(fs.readFileSync(log, 'utf8')), root);

    let from = 0;
    for (const step of steps) {
      const what = `${step.mode} of ${step.data.length} bytes to ${step.name}`;
      const { name } = step;
      const target = path.join(root, name);
      const reply = trace.reply226(name, from);
      if (reply === undefined) {
        t.fail(`${what}: no 226 write in the trace`);
        break;
      }
      if (step.placed !== 'in place') {
        const calls = step.placed === 'renamed' ? ['rename', 'renameat', 'renameat2'] : ['link', 'linkat'];
        const placing = trace.findLast(calls, new RegExp(`"${escape(target)}"`), from, reply.index);
        const temp = placing === undefined ? undefined : /"([^"]+)"/.exec(placing.args)?.[1];
        t.ok(placing !== undefined && temp !== undefined, `${what}: the data is ${step.placed} onto the name before the 226`);
        if (placing !== undefined && temp !== undefined) {
          t.ok(trace.fsyncOf(temp, from, placing.index), `${what}: the data (${path.basename(temp)}) is fsync'd before it is ${step.placed}`);
          t.ok(trace.fsyncOfRoot(placing.index, reply.index), `${what}: the directory is fsync'd after that and before the 226`);
        }
      } else {
        const writes = new RegExp(`^\\d+<${escape(target)}>`);
        const first = trace.find(['pwrite64', 'pwritev', 'write', 'writev'], writes, from, reply.index);
        const last = trace.findLast(['pwrite64', 'pwritev', 'write', 'writev'], writes, from, reply.index);
        t.ok(first !== undefined && last !== undefined, `${what}: the new bytes are written into the file itself`);
        if (first === undefined || last === undefined) break;
        const intentRecord = new RegExp(`"${escape(root)}/\\.socklab-tmp-append-[^"]*"`);
        const taken = trace.findLast(['link', 'linkat'], intentRecord, from, first.index);
        t.ok(taken, `${what}: the intent record is taken (linked into place) before the first byte`);
        if (taken === undefined) break;
        const recorded = trace.findLast(['rename', 'renameat', 'renameat2'], intentRecord, taken.index, first.index);
        t.ok(recorded, `${what}: then the record with the file's size is renamed over it, before the first byte`);
        if (recorded === undefined) break;
        const [staged, intentPath] = [...recorded.args.matchAll(/"([^"]+)"/g)].map((match) => match[1] ?? '');
        t.ok(staged !== undefined && trace.fsyncOf(staged, taken.index, recorded.index), `${what}: that record is fsync'd before it is renamed`);
        t.ok(trace.fsyncOfRoot(recorded.index, first.index), `${what}: the directory is fsync'd after the rename, before the first byte`);
        const synced = trace.fsyncOf(target, last.index, reply.index);
        t.ok(synced, `${what}: the file is fsync'd after its last byte and before the 226`);
        if (synced === undefined || intentPath === undefined) break;
        const removed = trace.find(['unlink', 'unlinkat'], new RegExp(`"${escape(intentPath)}"`), synced.index, reply.index);
        t.ok(removed, `${what}: the intent record is removed after that fsync`);
        if (removed !== undefined) t.ok(trace.fsyncOfRoot(removed.index, reply.index), `${what}: the directory is fsync'd after the removal, before the 226`);
      }
      from = reply.index + 1;
    }
  });
}
