/**
 * Waiting for a socket that is behind on our writes, with a bound: a client
 * that stays connected but stops reading would otherwise hold the session,
 * its thread or its open file for ever. Progress (any queued byte taken by the
 * kernel) restarts the clock, so a slow reader is served; only a client that
 * takes nothing for the whole stall time is cut off.
 *
 * The kernel takes more only once the client freed room in the send buffer,
 * and says so in steps (on Linux, writable again when about half of it is
 * free, and the buffer grows to tcp_wmem's maximum, 4 MiB here): a client
 * reading slower than half a buffer per stall time looks stopped. Node 20
 * shows neither the kernel's queue nor a way to shrink the buffer, so
 * PROTOCOL.md states the limit as what a server can see.
 */
import type { Socket } from 'node:net';
import { ConnectionError, ErrorCodes } from '../protocol/index.js';

export function clientGone(): ConnectionError {
  return new ConnectionError(ErrorCodes.CONNECTION_CLOSED, 'the client is gone');
}

export function stalledWriteError(stallMs: number): ConnectionError {
  return new ConnectionError(ErrorCodes.WRITE_STALLED, `the client stopped reading: no progress on a reply for ${stallMs / 1000} s`);
}

/**
 * Runs `verdict` once the event loop has polled its sockets. A timer that
 * judges a client (idle, stalled) can come due while this thread was busy
 * or not scheduled, and due timers run before the poll that would deliver
 * what the client did meanwhile (bytes it sent, bytes it took): the verdict
 * must look after that poll, or a client that kept up would be cut off for
 * the server's own delay.
 */
export function afterPendingIO(verdict: () => void): void {
  setImmediate(verdict);
}

/**
 * Resolves on 'drain'. Rejects when the socket closes, or when no queued byte
 * moved for `stallMs` (0: never): then `onStall` is called and the socket is
 * destroyed, since the client cannot read a 421 either.
 */
export function drained(socket: Socket, stallMs: number, onStall?: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let queued = socket.writableLength;
    let lastProgress = performance.now();
    let settled = false;
    const finish = (error: ConnectionError | null) => {
      if (settled) return;
      settled = true;
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      clearInterval(watch);
      if (error === null) resolve();
      else reject(error);
    };
    const onDrain = () => finish(null);
    const onClose = () => finish(clientGone());
    socket.on('drain', onDrain);
    socket.on('close', onClose);
    /** True when a queued byte moved since the last look. */
    const progressed = (): boolean => {
      const left = socket.writableLength;
      if (left >= queued) return false;
      queued = left;
      lastProgress = performance.now();
      return true;
    };
    const watch =
      stallMs > 0
        ? setInterval(() => {
            if (progressed() || performance.now() - lastProgress < stallMs) return;
            // Bytes the client took while this thread was busy show only after the next poll.
            afterPendingIO(() => {
              if (settled || progressed()) return;
              const error = stalledWriteError(stallMs);
              finish(error);
              onStall?.();
              socket.destroy(error);
            });
          }, Math.min(1000, Math.max(10, stallMs / 4)))
        : undefined;
    watch?.unref();
  });
}
