/**
 * A TCP connection to a socklab server as the ByteChannel the protocol client
 * reads and writes through. Connection failures become ConnectionErrors whose
 * messages say what happened and what to do, so every CLI can print them as is.
 */
import net from 'node:net';
import { socklabCommand } from '../bin/invocation.js';
import { ConnectionError, ErrorCodes, type ByteChannel } from '../protocol/index.js';
import { afterPendingIO } from './drain.js';
import type { ClientInput } from './session-io.js';
import { SocketSessionIO } from './socket-io.js';

export interface TcpChannel extends ByteChannel {
  readonly socket: net.Socket;
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Gives up on the TCP handshake after this long (not on the greeting: a queue may be long). */
  readonly connectTimeoutMs?: number;
}

export async function connectTcp({ host, port, connectTimeoutMs = 10_000 }: ConnectOptions): Promise<TcpChannel> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true, allowHalfOpen: true });
    let settled = false;
    const timer = setTimeout(() => {
      // Due timers run before the poll: a handshake that completed while this process was held up
      // (a loaded machine) shows only after it.
      afterPendingIO(() => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(new ConnectionError(ErrorCodes.TIMEOUT, `could not connect to ${host}:${port} within ${connectTimeoutMs / 1000} s`));
      });
    }, connectTimeoutMs);
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(connectError(error, host, port));
    });
  });
  const io = new SocketSessionIO(socket, 0);
  return {
    socket,
    read() {
      return new Promise<Uint8Array | null>((resolve) => {
        const deliver = (input: ClientInput) => resolve(input instanceof Uint8Array ? input : null);
        const ready = io.read(deliver);
        if (ready !== null) deliver(ready);
      });
    },
    async write(bytes) {
      const wait = io.write(bytes);
      io.flush();
      await wait;
    },
    close() {
      socket.destroy();
    },
  };
}

function connectError(error: NodeJS.ErrnoException, host: string, port: number): ConnectionError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new ConnectionError(
        ErrorCodes.CONNECTION_REFUSED,
        `could not connect to ${host}:${port}: connection refused (is a server running there? start one with "${socklabCommand()} server async --port ${port}")`,
        { cause: error },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConnectionError(ErrorCodes.CONNECTION_FAILED, `could not connect: no such host "${host}" (check --host)`, { cause: error });
    default:
      return new ConnectionError(ErrorCodes.CONNECTION_FAILED, `could not connect to ${host}:${port}: ${error.message}`, { cause: error });
  }
}
