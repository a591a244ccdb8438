/**
 * Both storage flavours behind one interface, for the suites that check they
 * behave the same: SyncStorage is wrapped into promises, so the same test code
 * drives both, which is how "identical semantics" is checked rather than
 * promised. Plus the fixtures those suites share (fresh roots, uploads).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { CommitMode } from '../../../protocol/index.js';
import { AsyncStorage } from '../../../servers/storage/async.js';
import { SyncStorage } from '../../../servers/storage/sync.js';
import { TEMP_PREFIX, type AsyncStorageOps, type StorageOps, type UploadHandle, type UploadPlan } from '../../../servers/storage/types.js';

export interface HasTeardown {
  teardown(fn: () => void): void;
}

export function freshDir(t: HasTeardown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-storage-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The synchronous flavour behind the asynchronous interface, so that one suite drives both. */
export function promised(storage: StorageOps): AsyncStorageOps {
  return {
    list: async () => storage.list(),
    probe: async (name) => storage.probe(name),
    stat: async (name) => storage.stat(name),
    openRead: async (name) => storage.openRead(name),
    readChunk: async (handle, maxBytes) => storage.readChunk(handle, maxBytes),
    closeRead: async (handle) => storage.closeRead(handle),
    beginUpload: async (plan) => storage.beginUpload(plan),
    writeUpload: async (handle, bytes) => storage.writeUpload(handle, bytes),
    commitUpload: async (handle) => storage.commitUpload(handle),
    abortUpload: async (handle) => storage.abortUpload(handle),
  };
}

/** What both flavours' `open` take besides their own lock and slots. */
export interface FlavourOptions {
  readonly maxRootSize?: number;
}

export interface Flavour {
  readonly name: string;
  open(root: string, options?: FlavourOptions): Promise<AsyncStorageOps>;
  attach(root: string): AsyncStorageOps;
}

export const flavours: readonly Flavour[] = [
  {
    name: 'SyncStorage',
    open: async (root, options) => promised(SyncStorage.open(root, options)),
    attach: (root) => promised(SyncStorage.attach(root)),
  },
  { name: 'AsyncStorage', open: (root, options) => AsyncStorage.open(root, options), attach: (root) => AsyncStorage.attach(root) },
];

/**
 * An error as a failed fs call throws it (code, negative errno, syscall), for a
 * test to inject; `detail` stands for the system's text, which may name a path.
 */
export function errnoError(code: keyof typeof os.constants.errno, syscall: string, detail = 'injected'): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${detail}, ${syscall}`), { code, errno: -os.constants.errno[code], syscall });
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function bytesOf(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** A block of `length` bytes all equal to `value`: easy to find whole, or broken, in a file. */
export function block(value: number, length: number): Buffer {
  return Buffer.alloc(length, value);
}

export function plan(name: string, size: number, mode: CommitMode): UploadPlan {
  return { name, size, mode, sha256: null };
}

export async function upload(
  storage: AsyncStorageOps,
  name: string,
  data: Uint8Array,
  mode: CommitMode,
  sha256: string | null = null,
): Promise<{ size: number; sha256: string }> {
  const handle = await storage.beginUpload({ name, size: data.length, mode, sha256 });
  // Several writes, so the running hash and the offsets are exercised.
  const piece = Math.max(1, Math.ceil(data.length / 3));
  for (let offset = 0; offset < data.length; offset += piece) {
    await storage.writeUpload(handle, data.subarray(offset, offset + piece));
  }
  return storage.commitUpload(handle);
}

/** Writes `data` to an upload already begun, then commits it. */
export async function finish(storage: AsyncStorageOps, handle: UploadHandle, data: Uint8Array): Promise<{ size: number; sha256: string }> {
  await storage.writeUpload(handle, data);
  return storage.commitUpload(handle);
}

export function tempFilesIn(root: string): string[] {
  return fs.readdirSync(root).filter((name) => name.startsWith(TEMP_PREFIX));
}

/** A fresh root (and a directory beside it, "outside"), and the flavour's storage over the root. */
export async function setUpRoot(t: HasTeardown, flavour: Flavour, options: FlavourOptions = {}): Promise<{ root: string; outside: string; storage: AsyncStorageOps }> {
  const dir = freshDir(t);
  const root = path.join(dir, 'root');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  const storage = await flavour.open(root, options); // also checks that open() creates the root
  return { root, outside, storage };
}

/**
 * Runs `rounds` rounds in two worker threads at once, each with its own
 * SyncStorage on `root` and so its own lock: two server processes on one
 * root, as far as the storage can tell. `round` is the JavaScript of one
 * round, run with `storage`, `i` (the round), `value` (1 in one thread, 2 in
 * the other), `outcomes` (an array: what each thread returns) and `meet()`
 * (returns once both threads called it, so that what follows it in the two
 * threads falls close together) in scope.
 */
export async function inTwoServerThreads(
  root: string,
  { rounds, maxRootSize, round }: { readonly rounds: number; readonly maxRootSize?: number; readonly round: string },
): Promise<[string[], string[]]> {
  const meeting = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
  const workerSource = `
    const { workerData, parentPort } = require('node:worker_threads');
    (async () => {
      const { SyncStorage } = await import(workerData.syncUrl);
      const storage = SyncStorage.attach(workerData.root, { maxRootSize: workerData.maxRootSize });
      const value = workerData.value;
      const met = new Int32Array(workerData.meeting);
      let arrivals = 0;
      const meet = () => {
        arrivals += 2;
        Atomics.add(met, 0, 1);
        Atomics.notify(met, 0);
        for (let seen = Atomics.load(met, 0); seen < arrivals; seen = Atomics.load(met, 0)) Atomics.wait(met, 0, seen, 1000);
      };
      const outcomes = [];
      for (let i = 0; i < workerData.rounds; i++) {
        ${round}
      }
      parentPort.postMessage(outcomes);
    })();
  `;
  const run = (value: number): Promise<string[]> => {
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: { syncUrl: new URL('../../../servers/storage/sync.js', import.meta.url).href, root, meeting, rounds, value, maxRootSize },
    });
    return new Promise<string[]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    }).finally(() => worker.terminate());
  };
  return Promise.all([run(1), run(2)]);
}
