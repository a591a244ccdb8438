/**
 * Reads of an accepted socket that land in one buffer shared by every socket
 * of the thread, for a reader that copies each chunk before its 'data' event
 * returns (the thread relay copies it into its ring at once).
 *
 * Node reads an accepted socket into a fresh 64 KiB buffer per read (an
 * allocation, fresh pages, a realloc down to what came): receiving a large
 * upload, that was most of a workers server's main thread. A socket Node
 * connects itself can read into a buffer of ours (`onread`), but `net.Server`
 * offers no such option for the sockets it accepts (Node 20 and 24), so the
 * accepted socket's handle moves into a Socket made with one, before anything
 * is read (the server must pause on connect). One buffer serves every socket:
 * libuv reads one socket at a time on this thread and the bytes are handed
 * over before the next read. The price is the contract: a chunk is valid
 * only during its 'data' event.
 *
 * Measured (`put-throughput.js --rounds 3 --targets native,workers`, the tree
 * without it and with it alternating, twice): workers 0.46 and 0.54 of the
 * native copy before, 0.56 and 0.70 after; its server CPU per GiB 3.24 and
 * 2.56 before, 2.20 and 2.16 after.
 */
import net from 'node:net';

/** As large as a socket read is worth: up to four of Node's reads in one system call. */
const SHARED_READ_BYTES = 256 * 1024;

let sharedBuffer: Buffer | null = null;

/** The parts of an accepted socket this move needs: its handle, and the server that counts it. */
interface AcceptedInternals {
  _handle: object | null;
  _server: net.Server | null;
  server: net.Server | null;
}

/**
 * The accepted, not yet read `socket` as one whose reads land in this
 * thread's shared buffer, its 'data' chunks valid only during the event; the
 * socket given must not be used again. Paused (resume() starts reading) and
 * half-open allowed, as the server accepted it. Where the handle cannot be
 * moved (another Node version's internals), the same socket, reading as Node does.
 */
export function withSharedReadBuffer(accepted: net.Socket): net.Socket {
  const internals = accepted as unknown as AcceptedInternals;
  const handle = internals._handle;
  if (handle === null || typeof handle !== 'object' || accepted.destroyed) return accepted;
  const server = internals._server;
  internals._handle = null;
  // The server counts its connections through the socket's _server until 'close': the new socket carries the count.
  internals._server = null;
  sharedBuffer ??= Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
  const options = {
    handle,
    allowHalfOpen: accepted.allowHalfOpen,
    pauseOnCreate: true,
    readable: true,
    writable: true,
    onread: {
      buffer: sharedBuffer,
      callback: (bytes: number, buffer: Uint8Array): void => {
        socket.emit('data', buffer.subarray(0, bytes));
      },
    },
  };
  const socket = new net.Socket(options as net.SocketConstructorOpts);
  const moved = socket as unknown as AcceptedInternals;
  moved._server = server;
  moved.server = server;
  return socket;
}
