/**
 * One large upload over loopback, as the focused upload benchmark and the
 * bench's ceiling check send it, and the same bytes copied by a native
 * program (no Node in it): what this machine itself can do.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BYTE_SINKS, isByteSink, startServerProcess, type ServerProcess } from './server-process.js';
import { machineBusy, readCoreTicks } from '../load/cpu-time.js';

const MiB = 1024 * 1024;

/** `size` bytes of a fixed pattern, sent 1 MiB at a time, and their sha256. */
export class UploadData {
  private readonly block = Buffer.alloc(MiB);
  readonly sha256: string;

  constructor(readonly size: number) {
    for (let i = 0; i < this.block.length; i++) this.block[i] = (i * 2654435761) >>> 24;
    const hash = createHash('sha256');
    for (let sent = 0; sent < size; sent += MiB) hash.update(this.part(sent));
    this.sha256 = hash.digest('hex');
  }

  async sendTo(socket: net.Socket): Promise<void> {
    for (let sent = 0; sent < this.size; sent += MiB) {
      if (!socket.write(this.part(sent))) await new Promise((resolve) => socket.once('drain', resolve));
    }
  }

  private part(sent: number): Buffer {
    return this.size - sent >= MiB ? this.block : this.block.subarray(0, this.size - sent);
  }
}

export interface UploadTiming {
  readonly seconds: number;
  /** The server's resident memory before the upload and at most during it (0 for the native copy). */
  readonly rssBefore: number;
  readonly rssMax: number;
  /** CPU seconds the server used for the upload, all its threads together (null for the native copy). */
  readonly serverCpuSeconds: number | null;
  /** Busy share of all the machine's cores during the upload (1 = every core busy); null without /proc/stat. */
  readonly machineBusy: number | null;
}

export async function connectLoopback(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

/**
 * One upload to a server process: a socklab server gets `PUT` with the
 * sha256 (it computes and checks it, then commits durably); the copy-sink
 * and the hash-sink get their bare byte count (the hash-sink's 226 carries the
 * sha256 it computed, checked here). All answer `150` before the data. Timed
 * from the request to the final reply.
 */
export async function uploadTo(server: ServerProcess, data: UploadData): Promise<UploadTiming> {
  const bare = isByteSink(server.target);
  const socket = await connectLoopback(server.port);
  let text = '';
  let waiter: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    waiter?.();
  });
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (pattern.test(text) ? resolve() : /^[45]\d\d /m.test(text) ? reject(new Error(`${server.target}: ${text.trim()}`)) : undefined);
      waiter = check;
      check();
    });
  try {
    await until(/^220 /m);
    const rssBefore = server.rss();
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, server.rss())), 50);
    const cpuBefore = server.cpuSeconds();
    const coresBefore = readCoreTicks();
    const started = performance.now();
    socket.write(bare ? `${data.size}\n` : `PUT big.bin ${data.size} mode=overwrite sha256=${data.sha256}\n`);
    await until(/^150 /m);
    await data.sendTo(socket);
    await until(/^226/m);
    const seconds = (performance.now() - started) / 1000;
    if (server.target === 'hash-sink' && !text.includes(`226 ${data.sha256}`)) throw new Error(`hash-sink: computed a different sha256: ${text.trim()}`);
    const machine = machineBusy(coresBefore, readCoreTicks());
    const cpuAfter = server.cpuSeconds();
    clearInterval(sampler);
    return {
      seconds,
      rssBefore,
      rssMax: Math.max(rssMax, server.rss()),
      serverCpuSeconds: cpuAfter - cpuBefore,
      machineBusy: machine?.busyShare ?? null,
    };
  } finally {
    socket.destroy();
  }
}

export type NativeCopyTool = 'socat' | 'nc';

/** The native copy this machine has: socat (256 KiB buffers), else nc, else none. */
export function nativeCopyTool(): NativeCopyTool | null {
  for (const tool of ['socat', 'nc'] as const) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0) return tool;
  }
  return null;
}

export function describeNativeCopy(tool: NativeCopyTool): string {
  return tool === 'socat' ? 'socat -u -b 262144 from loopback into a file, then fsync' : 'nc from loopback into a file, then fsync';
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Loopback → file by a native program, then fsync of the file: from the first byte sent to the fsync's end. */
export async function nativeCopy(tool: NativeCopyTool, data: UploadData): Promise<UploadTiming> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-native-copy-'));
  const file = path.join(dir, 'copy.bin');
  try {
    const port = await freePort();
    const child =
      tool === 'socat'
        ? spawn('socat', ['-u', '-b', '262144', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, `OPEN:${file},creat,trunc`], { stdio: 'ignore' })
        : spawn('sh', ['-c', `exec nc -l 127.0.0.1 ${port} > "$0"`, file], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let socket: net.Socket | null = null;
    for (let attempt = 0; socket === null; attempt++) {
      try {
        socket = await connectLoopback(port);
      } catch (error) {
        if (attempt > 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const coresBefore = readCoreTicks();
    const started = performance.now();
    await data.sendTo(socket);
    socket.end();
    await exited;
    const fd = fs.openSync(file, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const seconds = (performance.now() - started) / 1000;
    const machine = machineBusy(coresBefore, readCoreTicks());
    const copied = fs.statSync(file).size;
    if (copied !== data.size) throw new Error(`the native copy (${tool}) wrote ${copied} bytes of ${data.size}`);
    return { seconds, rssBefore: 0, rssMax: 0, serverCpuSeconds: null, machineBusy: machine?.busyShare ?? null };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * How far the copy-sink ceiling is from the machine, and what computing the
 * sha256 costs on top of it (the hash-sink): the same upload each way, median
 * of rounds alternated. The hash fields are absent in reports from before they
 * were measured.
 */
export interface CeilingCheck {
  readonly bytes: number;
  readonly copySinkMiBps: number;
  readonly hashSinkMiBps?: number;
  /** Null when no native tool is installed. */
  readonly native: { readonly tool: string; readonly MiBps: number } | null;
}

export async function checkCopySinkCeiling(bytes: number, rounds: number): Promise<CeilingCheck> {
  const data = new UploadData(bytes);
  const tool = nativeCopyTool();
  const rates = { 'copy-sink': [] as number[], 'hash-sink': [] as number[], native: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    for (const sink of BYTE_SINKS) {
      const server = await startServerProcess(sink);
      try {
        rates[sink].push(bytes / MiB / (await uploadTo(server, data)).seconds);
      } finally {
        await server.stop();
      }
    }
    if (tool !== null) {
      const native = bytes / MiB / (await nativeCopy(tool, data)).seconds;
      rates.native.push(native);
    }
  }
  return {
    bytes,
    copySinkMiBps: median(rates['copy-sink']),
    hashSinkMiBps: median(rates['hash-sink']),
    native:
      tool === null
        ? null
        : { tool: describeNativeCopy(tool), MiBps: median(rates.native) },
  };
}

export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
}
