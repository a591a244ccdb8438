/**
 * The local side of a transfer: the file to upload (checked, hashed and read
 * through one open handle, so the bytes hashed are the bytes sent), and the
 * file a download lands in (a temporary file next to the target, renamed into
 * place only once the sha256 matched).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes } from '../protocol/index.js';
import { ClientFailure } from './messages.js';
import { shellWord } from './prompt.js';

const CHUNK_BYTES = 64 * 1024;
/** How much of a file the binary check looks at, like git and grep do. */
const SNIFF_BYTES = 8 * 1024;

/** `~/x` → the home directory's x; quotes and backslashes (from a drag and drop, or habit) read as a shell would. */
export function expandPath(typed: string): string {
  let text = shellWord(typed.trim());
  if (text === '~' || text.startsWith('~/')) text = path.join(os.homedir(), text.slice(1));
  return text;
}

/** Why `file` cannot be uploaded, in a sentence, or null when it can. */
export async function localFileProblem(file: string): Promise<string | null> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch (error) {
    return accessProblem(error, file);
  }
  if (stat.isDirectory()) return `${file} is a directory, not a file`;
  if (!stat.isFile()) return `${file} is not a regular file (a device, a pipe or a socket cannot be uploaded)`;
  try {
    await fs.promises.access(file, fs.constants.R_OK);
  } catch (error) {
    return accessProblem(error, file);
  }
  return null;
}

function accessProblem(error: unknown, file: string): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return `there is no file ${file}`;
    case 'ENOTDIR':
      return `there is no file ${file} (a part of the path is not a directory)`;
    case 'EACCES':
    case 'EPERM':
      return `${file} cannot be read: permission denied`;
    default:
      return `${file} cannot be read: ${(error as Error).message}`;
  }
}

/** An open local file to upload. */
export class LocalFile {
  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  /** Opens `file` for upload, or throws a ClientFailure saying why it cannot be. */
  static async open(file: string): Promise<LocalFile> {
    const problem = await localFileProblem(file);
    if (problem !== null) throw new ClientFailure(ErrorCodes.INVALID_ARGUMENT, problem);
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      throw new ClientFailure(ErrorCodes.INVALID_ARGUMENT, accessProblem(error, file), { cause: error });
    }
    const stat = await handle.stat();
    return new LocalFile(file, stat.size, handle);
  }

  get baseName(): string {
    return path.basename(this.path);
  }

  /** True when the first 8 KiB hold a NUL byte: most likely not text. */
  async looksBinary(): Promise<boolean> {
    const buffer = Buffer.alloc(Math.min(SNIFF_BYTES, this.size));
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).includes(0);
  }

  /** The sha256 of the first `size` bytes, read in chunks (never the whole file in memory). */
  async sha256(): Promise<string> {
    const hash = createHash('sha256');
    for await (const chunk of this.chunks()) hash.update(chunk);
    return hash.digest('hex');
  }

  /** The file's bytes, from the start, up to the size it had when opened. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    let position = 0;
    while (position < this.size) {
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, this.size - position));
      const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw await this.shrank(position);
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /** The file ended at `position`, before the size it had when opened: someone truncated or rewrote it meanwhile. */
  private async shrank(position: number): Promise<ClientFailure> {
    const now = await this.handle.stat().then((stats) => stats.size, () => position);
    return new ClientFailure(
      ErrorCodes.SOURCE_ENDED,
      `${this.path} changed while it was being read: it is now ${now} bytes, not the ${this.size} it had when the upload started; nothing was committed (upload it again once nothing is writing to it)`,
    );
  }
}

/**
 * Where a download is written: a temporary file in the target's directory (so
 * the final rename stays on one file system), moved into place by commit().
 */
export class DownloadTarget {
  private closed = false;

  private constructor(
    readonly target: string,
    readonly temporary: string,
    private readonly handle: FileHandle,
    private readonly force: boolean,
  ) {}

  static async create(target: string, force: boolean): Promise<DownloadTarget> {
    if (!force && fs.existsSync(target)) throw alreadyExists(target);
    const dir = path.dirname(target);
    const temporary = path.join(dir, `.${path.basename(target)}.${randomBytes(4).toString('hex')}.socklab-part`);
    const handle = await open(temporary, 'wx');
    return new DownloadTarget(target, temporary, handle, force);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
  }

  /** The bytes are verified: make them durable and give them the target's name. */
  async commit(): Promise<void> {
    await this.handle.sync();
    await this.closeHandle();
    if (this.force) {
      await fs.promises.rename(this.temporary, this.target);
      return;
    }
    // link() fails if the target appeared meanwhile: never overwrite without --force.
    try {
      await fs.promises.link(this.temporary, this.target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw alreadyExists(this.target);
      // A file system without hard links: check, then rename.
      if (fs.existsSync(this.target)) throw alreadyExists(this.target);
      await fs.promises.rename(this.temporary, this.target);
      return;
    }
    await fs.promises.unlink(this.temporary);
  }

  /** Removes the temporary file (after a failure); safe to call more than once. */
  async discard(): Promise<void> {
    await this.closeHandle().catch(() => {});
    await fs.promises.rm(this.temporary, { force: true });
  }

  /** discard() for a signal handler, which cannot wait. */
  discardNow(): void {
    fs.rmSync(this.temporary, { force: true });
  }

  private async closeHandle(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

function alreadyExists(target: string): ClientFailure {
  return new ClientFailure(ErrorCodes.EXISTS, `${target} already exists; pass --force to replace it, or --out to save elsewhere`);
}
