/**
 * Uploads and downloads with everything around the protocol call: progress,
 * the sha256 check against the local bytes, Ctrl-C, and where the bytes land.
 * Used by the interactive client and by the `put` / `get` subcommands alike.
 */
import { ErrorCodes, type ExistsDecision, type PutMode, type SocklabClient } from '../protocol/index.js';
import { INTERRUPTED_EXIT_CODE, withInterruptHandler } from './interrupt.js';
import { DownloadTarget, type LocalFile } from './local-file.js';
import { ClientFailure, downloadLeftover, exitWith, explainFailure, GaveUp } from './messages.js';
import { StatusLine, TransferProgress } from './progress.js';

export type UploadOutcome =
  | {
      readonly outcome: 'committed';
      readonly name: string;
      /** The file's size on the server now (more than what was sent after an append). */
      readonly size: number;
      readonly sha256: string;
      /** "N bytes in S s (R MiB/s)". */
      readonly summary: string;
    }
  | { readonly outcome: 'cancelled' };

export interface UploadOptions {
  readonly mode: PutMode;
  /** The server's `350` question: the file exists with this size. */
  readonly onExists: (currentSize: number) => Promise<ExistsDecision>;
  /** The file's sha256 if already known (a retry computed it once), so it is not read twice. */
  readonly sha256?: string;
}

/**
 * PUT `file` as `name` with the local sha256, then check the sha256 the server
 * computed over the bytes it received against it. Ctrl-C drops the
 * connection (the server discards a partial upload) and ends the program.
 */
export async function upload(client: SocklabClient, file: LocalFile, name: string, options: UploadOptions): Promise<UploadOutcome> {
  // `sent` lets a broken connection be worded right: before all the data, nothing was committed.
  const operation = { kind: 'put' as const, name, size: file.size, sent: 0, asked: false };
  const hashing = new StatusLine();
  if (options.sha256 === undefined) hashing.draw(`computing the sha256 of ${file.path}...`);
  const sha256 = options.sha256 ?? (await file.sha256().finally(() => hashing.clear()));
  const progress = new TransferProgress(`uploading ${name}`, file.size, { whenDone: "waiting for the server's checksum" });
  const cancel = () => {
    progress.abandon();
    client.close();
    exitWith(new GaveUp('upload cancelled; the server discards it', INTERRUPTED_EXIT_CODE));
  };
  let result;
  try {
    result = await withInterruptHandler(cancel, () =>
      client.put(name, file.size, file.chunks(), {
        mode: options.mode,
        sha256,
        onExists: async (currentSize) => {
          operation.asked = true;
          const decision = await options.onExists(currentSize);
          progress.restart(); // the time spent answering is not transfer time
          return decision;
        },
        onProgress: (sent) => {
          operation.sent = sent;
          progress.update(sent);
        },
      }),
    );
  } catch (error) {
    progress.abandon();
    throw explainFailure(error, operation);
  }
  if (result.outcome === 'cancelled') {
    progress.abandon();
    return result;
  }
  const summary = progress.finish();
  if (result.sha256 !== sha256) {
    throw new ClientFailure(
      ErrorCodes.CHECKSUM_MISMATCH,
      `the server committed ${name} but reports sha256 ${result.sha256} for the bytes it received, while ${file.path} has ${sha256}`,
    );
  }
  return { outcome: 'committed', name: result.name, size: result.size, sha256, summary };
}

export interface DownloadResult {
  readonly size: number;
  readonly sha256: string;
  readonly summary: string;
}

/**
 * GET `name` into `target` (a file path, written only once the sha256 matched)
 * or onto stdout (`-`: bytes flow as they come; a mismatch is reported after).
 */
export async function download(client: SocklabClient, name: string, target: string, force: boolean): Promise<DownloadResult> {
  const toStdout = target === '-';
  const operation: { kind: 'get'; name: string; written?: number; size?: number } = { kind: 'get', name, written: toStdout ? 0 : undefined };
  let file: DownloadTarget | null = null;
  let progress: TransferProgress | null = null;
  const cancel = () => {
    progress?.abandon();
    client.close();
    file?.discardNow();
    exitWith(new GaveUp(`download cancelled; ${downloadLeftover(operation)}`, INTERRUPTED_EXIT_CODE));
  };
  return withInterruptHandler(cancel, async () => {
    try {
      if (!toStdout) file = await DownloadTarget.create(target, force);
      const sink = file ?? stdoutSink;
      const digest = await client.get(
        name,
        async (chunk) => {
          await sink.write(chunk);
          if (toStdout) operation.written = (operation.written ?? 0) + chunk.length;
        },
        (received, size) => {
          operation.size = size;
          progress ??= new TransferProgress(`downloading ${name}`, size);
          progress.update(received);
        },
      );
      await file?.commit();
      progress ??= new TransferProgress(`downloading ${name}`, digest.size);
      return { ...digest, summary: progress.finish() };
    } catch (error) {
      progress?.abandon();
      await file?.discard();
      throw explainFailure(error, operation);
    }
  });
}

const stdoutSink = {
  write(chunk: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      process.stdout.write(chunk, (error) => (error ? reject(error) : resolve()));
    });
  },
};
