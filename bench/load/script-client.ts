/**
 * What a scenario's script talks to: a few operations (ECHO, LIST, PUT, QUIT),
 * each recorded on the session's timeline. Against a socklab
 * server they go through SocklabClient. Against the ceiling they go to the
 * bare Node servers that stand for the machine's limits: small requests to the
 * line server (which greets and answers every line with `200 PONG`), uploads to
 * the raw copy sink (`<size>` line, `150`, the bytes, `226` once fsync'd; QUIT,
 * `221`: the round trips of a socklab session), so the very same script
 * measures what socklab costs on top. Against a plain line server
 * (a student's homework server, `--protocol echo`) only lines go: each is sent
 * and its one answering line awaited.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { ConnectionError, ErrorCodes, ReplyError, SocklabClient, type ByteChannel } from '../../protocol/index.js';
import { connectTcp, type TcpChannel } from '../../transport/tcp-client.js';
import { sleepUntil, sharedNow } from './shared-clock.js';
import type { SessionRecorder } from './timeline.js';

export interface TargetEndpoints {
  /** echo: a plain line server, with no greeting and no commands (only `lines` scripts run there). */
  readonly kind: 'socklab' | 'ceiling' | 'echo';
  readonly host: string;
  /** Where scripted sessions connect: the socklab server, or the ceiling's copy sink (greets, answers lines, copies uploads). */
  readonly port: number;
  /** Where PING bursts go: the same socklab server, or the ceiling's bare line server. */
  readonly pingPort: number;
}

/** A socklab server's endpoints: everything goes to its one port. */
export function socklabEndpoints(host: string, port: number): TargetEndpoints {
  return { kind: 'socklab', host, port, pingPort: port };
}

/** Bytes to upload, hashed once per load process. */
export interface Payload {
  readonly bytes: Buffer;
  readonly sha256: string;
}

/** A fixed key and counter: the same bytes in every process. */
const PAYLOAD_KEY = Buffer.alloc(16, 0x5a);
const PAYLOAD_COUNTER = Buffer.alloc(16, 0);

/** A cipher's update() takes less than 2 GiB at once: the keystream is made, and hashed, this much at a time. */
const PAYLOAD_PIECE_BYTES = 64 * 1024 * 1024;

export function makePayload(size: number, pieceBytes = PAYLOAD_PIECE_BYTES): Payload {
  // A keystream, not zeros or a short pattern, so nothing on the way can compress it away. Made by
  // OpenSSL, so at its speed: a load process runs on baseline code (loadCompilerFor), where a
  // JavaScript loop over every byte of a large payload would take seconds.
  const keystream = createCipheriv('aes-128-ctr', PAYLOAD_KEY, PAYLOAD_COUNTER);
  const hash = createHash('sha256');
  const bytes = Buffer.allocUnsafe(size);
  const zeros = Buffer.alloc(Math.min(size, pieceBytes));
  for (let at = 0; at < size; at += zeros.length) {
    const piece = bytes.subarray(at, at + zeros.length);
    keystream.update(zeros.subarray(0, piece.length)).copy(piece);
    hash.update(piece);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** What a script can do on any line server, socklab's or a plain one: send a line, wait for its answer. */
export interface LineScriptClient {
  /** ECHO on a socklab server; on a plain line server, the line itself. */
  echo(text: string): Promise<void>;
}

export interface ScriptClient extends LineScriptClient {
  /** Waits for the greeting; returns the model the server names (`line-server` for the ceiling). */
  greet(): Promise<string>;
  list(): Promise<void>;
  /** Uploads the payload as `name`; paced at `bytesPerSecond` when given (a slow client). */
  put(name: string, payload: Payload, bytesPerSecond?: number): Promise<void>;
  quit(): Promise<void>;
  /** Drops every connection at once (a session past its deadline). */
  close(): void;
}

export interface ConnectOptions {
  readonly target: TargetEndpoints;
  readonly recorder: SessionRecorder;
  readonly connectTimeoutMs: number;
}

/** TCP-connects to the target's main port (recording when) and returns the script's client. */
export async function connectScriptClient({ target, recorder, connectTimeoutMs }: ConnectOptions): Promise<ScriptClient> {
  // The load command lets only `lines` scripts run against a plain line server: reaching here is a bug.
  if (target.kind === 'echo') throw new Error('a plain line server has no greeting and no commands: connect to it with connectEchoClient');
  const channel = await connectRecorded(target, recorder, connectTimeoutMs);
  return target.kind === 'socklab' ? new SocklabScriptClient(channel, recorder) : new CeilingScriptClient(channel, recorder);
}

/** TCP-connects to a plain line server (recording when). */
export async function connectEchoClient({ target, recorder, connectTimeoutMs }: ConnectOptions): Promise<EchoScriptClient> {
  try {
    return new EchoScriptClient(await connectRecorded(target, recorder, connectTimeoutMs), recorder);
  } catch (error) {
    // The transport's advice ("start one with socklab server") is wrong here: the server is the student's own.
    if (error instanceof ConnectionError && error.code === ErrorCodes.CONNECTION_REFUSED) {
      throw new ConnectionError(error.code, `could not connect to ${target.host}:${target.port}: connection refused (is your server running, on that port?)`, { cause: error });
    }
    throw error;
  }
}

async function connectRecorded(target: TargetEndpoints, recorder: SessionRecorder, connectTimeoutMs: number): Promise<TcpChannel> {
  recorder.markConnectStart();
  const channel = await connectTcp({ host: target.host, port: target.port, connectTimeoutMs });
  recorder.markConnected(channel.socket.localPort);
  return channel;
}

/** The request name a line sent to a plain line server is recorded under. */
export const PLAIN_LINE_REQUEST = 'line';

/** How a socklab server's greeting starts: a sign that `--protocol echo` was given by mistake. */
const SOCKLAB_GREETING = /^220 socklab\/1 /;

/**
 * A plain line server (homework 1 and 2: the lecture's server, answering each
 * line with one line): no greeting, no commands, no codes. It is serving this
 * client once the first line is answered, so that answer marks the end of the
 * queue wait, where a socklab server's greeting would.
 */
export class EchoScriptClient implements LineScriptClient {
  private readonly line: SocklabClient;
  private served = false;

  constructor(
    channel: ByteChannel,
    private readonly recorder: SessionRecorder,
  ) {
    this.line = new SocklabClient(channel);
  }

  async echo(text: string): Promise<void> {
    await this.recorder.exchange(PLAIN_LINE_REQUEST, null, async () => {
      await this.line.sendLine(text);
      const answer = await this.line.readLine();
      if (this.served) return;
      if (SOCKLAB_GREETING.test(answer)) {
        throw new ConnectionError(
          ErrorCodes.MALFORMED_REPLY,
          `the server greeted with "${answer.slice(0, 60)}": it speaks socklab's protocol v1, not plain lines (leave out --protocol echo)`,
        );
      }
      this.served = true;
      this.recorder.markGreeted();
    });
  }

  /** A plain line server knows no QUIT: saying goodbye is closing. */
  quit(): void {
    this.recorder.markQuitSent();
    this.close();
  }

  close(): void {
    this.line.close();
  }
}

/** Large writes are split so a paced upload can be paced and a fast one still moves big blocks. */
const UNPACED_CHUNK_BYTES = 256 * 1024;
/** A paced upload sends this many chunks a second: smooth enough, few enough timers. */
const PACED_CHUNKS_PER_SECOND = 16;

/**
 * The payload in chunks. Paced, chunk k (from 1) is released only once
 * k × chunk / rate has passed since the first, so the whole upload takes
 * size / rate, as the slow-client scenario's ideal assumes.
 */
async function* chunksOf(payload: Payload, bytesPerSecond: number | undefined, onFirst: () => void): AsyncGenerator<Uint8Array> {
  const paced = bytesPerSecond !== undefined && bytesPerSecond > 0;
  const chunkBytes = paced ? Math.max(1024, Math.floor(bytesPerSecond / PACED_CHUNKS_PER_SECOND)) : UNPACED_CHUNK_BYTES;
  const started = sharedNow();
  onFirst();
  for (let offset = 0; offset < payload.bytes.length; offset += chunkBytes) {
    const end = Math.min(payload.bytes.length, offset + chunkBytes);
    if (paced) await sleepUntil(started + (end / bytesPerSecond) * 1000);
    yield payload.bytes.subarray(offset, end);
  }
}

/** What both kinds of target do alike: the greeting and ECHO on the line connection. */
abstract class RecordedScriptClient implements ScriptClient {
  protected readonly line: SocklabClient;

  constructor(
    protected readonly lineChannel: ByteChannel,
    protected readonly recorder: SessionRecorder,
  ) {
    this.line = new SocklabClient(lineChannel);
  }

  async greet(): Promise<string> {
    const greeting = await this.line.greeting();
    this.recorder.markGreeted();
    return greeting.model;
  }

  async echo(text: string): Promise<void> {
    await this.recorder.exchange('ECHO', 200, () => this.line.echo(text));
  }

  abstract list(): Promise<void>;
  abstract put(name: string, payload: Payload, bytesPerSecond?: number): Promise<void>;
  abstract quit(): Promise<void>;

  close(): void {
    this.line.close();
  }

  /** Streams the payload, recording when the data started to flow (the `150`) and when it was committed. */
  protected async upload(commit: (chunks: AsyncIterable<Uint8Array>) => Promise<void>, payload: Payload, bytesPerSecond?: number): Promise<void> {
    const sentAt = sharedNow();
    let dataFrom = sentAt;
    const chunks = chunksOf(payload, bytesPerSecond, () => {
      dataFrom = sharedNow();
      this.recorder.reply('PUT', sentAt, 150);
    });
    // The commit's reply counts from when the data started to flow, not from the PUT line.
    await this.recorder.exchange('PUT data', 226, () => commit(chunks), () => dataFrom);
    this.recorder.addUploadedBytes(payload.bytes.length);
  }
}

class SocklabScriptClient extends RecordedScriptClient {
  async list(): Promise<void> {
    await this.recorder.exchange('LIST', 211, () => this.line.list());
  }

  async put(name: string, payload: Payload, bytesPerSecond?: number): Promise<void> {
    await this.upload(
      async (chunks) => {
        await this.line.put(name, payload.bytes.length, chunks, { mode: 'overwrite', sha256: payload.sha256 });
      },
      payload,
      bytesPerSecond,
    );
  }

  async quit(): Promise<void> {
    const sentAt = this.recorder.markQuitSent();
    await this.line.quit();
    this.recorder.reply('QUIT', sentAt, 221);
  }
}

/**
 * The copy sink: a byte count gets `150`, then takes the bytes and answers
 * `226`; QUIT gets `221`; every other line `200 PONG`. The round trips of a
 * session are those of a socklab server's, so the ceiling bounds the same
 * conversation.
 */
class CeilingScriptClient extends RecordedScriptClient {
  async list(): Promise<void> {
    await this.recorder.exchange('LIST', 200, () => this.line.request({ command: 'LIST' }));
  }

  /** The size line and its `150` (as a socklab server's PUT), the bytes, the `226`. */
  async put(_name: string, payload: Payload, bytesPerSecond?: number): Promise<void> {
    await this.upload(
      async (chunks) => {
        await this.line.sendLine(String(payload.bytes.length));
        const go = await this.line.readReply();
        if (go.code !== 150) throw new ReplyError(go, 'upload to the copy sink');
        for await (const chunk of chunks) await this.lineChannel.write(chunk);
        const done = await this.line.readReply();
        if (done.code !== 226) throw new ReplyError(done, 'upload to the copy sink');
      },
      payload,
      bytesPerSecond,
    );
  }

  /** QUIT and its one answer (the copy sink's `221`; a bare line server's, or the load processes' warm-up server's, `200 PONG`), then closing. */
  async quit(): Promise<void> {
    const sentAt = this.recorder.markQuitSent();
    try {
      const bye = await this.line.request({ command: 'QUIT' });
      this.recorder.reply('QUIT', sentAt, bye.code);
    } finally {
      this.close();
    }
  }
}
