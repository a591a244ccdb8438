/**
 * Accepted sockets whose reads land in buffers of ours
 * (transport/accepted-reads.ts). Growing reads: every chunk keeps its bytes
 * after its event (nothing is read into it again), reads grow past Node's
 * 64 KiB while a client streams and shrink after. The shared buffer: every
 * byte still arrives, in order, for each of several sockets at once, as long
 * as the reader copies during the event. For both, pause and resume, the
 * client's end, half-open replies and the server's connection count behave as
 * for the socket Node accepted. Real sockets over loopback.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import {
  MAX_READ_BYTES,
  MIN_READ_BYTES,
  nextReadBytes,
  withGrowingReads,
  withSharedReadBuffer,
} from '../../transport/accepted-reads.js';
import { delay, eventually } from '../helpers/wire-fixture.js';

const WAYS = { 'growing reads': withGrowingReads, 'the shared buffer': withSharedReadBuffer } as const;
type Way = keyof typeof WAYS;

interface Harness {
  readonly server: net.Server;
  readonly port: number;
  /** The moved sockets, in the order they were accepted. */
  readonly accepted: net.Socket[];
  nextAccepted(): Promise<net.Socket>;
}

async function listen(t: Test, options: net.ServerOpts = {}, way: Way = 'the shared buffer'): Promise<Harness> {
  const accepted: net.Socket[] = [];
  const waiters: ((socket: net.Socket) => void)[] = [];
  const server = net.createServer({ pauseOnConnect: true, ...options }, (socket) => {
    const moved = WAYS[way](socket);
    moved.on('error', () => {});
    accepted.push(moved);
    waiters.shift()?.(moved);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of accepted) socket.destroy();
    server.close();
  });
  let taken = 0;
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    accepted,
    nextAccepted: () => {
      const index = taken++;
      const ready = accepted[index];
      return ready !== undefined ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function patterned(length: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + seed) & 0xff;
  return bytes;
}

t.test('two sockets read into the same memory at once, and each gets every byte of its own client, in order, when copied during the event', async (t) => {
  const { port, nextAccepted } = await listen(t);
  const clients = [await connect(port), await connect(port)];
  const servers = [await nextAccepted(), await nextAccepted()];
  const size = 3 * 1024 * 1024 + 11;
  const memories = new Set<ArrayBufferLike>();
  const received = servers.map((socket) => {
    const copies: Buffer[] = [];
    let bytes = 0;
    return new Promise<Buffer>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        memories.add(chunk.buffer);
        copies.push(Buffer.from(chunk));
        bytes += chunk.length;
        if (bytes >= size) resolve(Buffer.concat(copies));
      });
      socket.resume();
    });
  });
  clients.forEach((client, i) => client.end(patterned(size, i + 1)));
  const [first, second] = await Promise.all(received);
  t.ok(first?.equals(patterned(size, 1)), "the first socket's bytes, whole and in order");
  t.ok(second?.equals(patterned(size, 2)), "the second's, though both were read into the same buffer");
  t.equal(memories.size, 1, 'every chunk of both sockets lay in one shared buffer');
});

t.test('growing reads: every chunk keeps its bytes after its event, reads grow past 64 KiB while a client streams, and shrink after', async (t) => {
  const { port, nextAccepted } = await listen(t, {}, 'growing reads');
  const clients = [await connect(port), await connect(port)];
  const servers = [await nextAccepted(), await nextAccepted()];
  const size = 3 * 1024 * 1024 + 11;
  // Sent before either server socket reads, so that reads find more waiting than they can take.
  for (const [i, client] of clients.entries()) client.write(patterned(size, i + 1));
  await delay(200);
  const received = servers.map((socket) => {
    const kept: Buffer[] = [];
    let bytes = 0;
    return new Promise<Buffer[]>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        kept.push(chunk); // not copied
        bytes += chunk.length;
        if (bytes >= size) resolve(kept);
      });
      socket.resume();
    });
  });
  const [first, second] = await Promise.all(received);
  t.ok(first !== undefined && Buffer.concat(first).equals(patterned(size, 1)), "the first socket's chunks, kept as they came, hold its bytes");
  t.ok(second !== undefined && Buffer.concat(second).equals(patterned(size, 2)), "the second's too: no read landed in a chunk already handed out");
  const largest = Math.max(...[...(first ?? []), ...(second ?? [])].map((chunk) => chunk.length));
  t.ok(largest > 64 * 1024, `reads grew past Node's 64 KiB (largest ${largest} bytes)`);
  t.ok(largest <= MAX_READ_BYTES, 'and no read was larger than MAX_READ_BYTES');

  // Two small writes after the stream: the first lands in a buffer sized by the stream's last read, the next in a small one.
  const [client] = clients;
  const [socket] = servers;
  if (client === undefined || socket === undefined) throw new Error('no connection');
  const next = () => new Promise<Buffer>((resolve) => socket.once('data', resolve));
  let arrived = next();
  client.write('a');
  await arrived;
  arrived = next();
  client.write('b');
  const small = await arrived;
  t.equal(small.toString(), 'b');
  t.ok(small.buffer.byteLength <= Buffer.poolSize, `after small reads, a small buffer (${small.buffer.byteLength} bytes under the chunk)`);
});

t.test('nextReadBytes: four times larger after a full read, else the power of two that holds what came, within the bounds', async (t) => {
  t.equal(nextReadBytes(MIN_READ_BYTES, MIN_READ_BYTES), MIN_READ_BYTES * 4, 'a full read: four times the buffer');
  t.equal(nextReadBytes(256 * 1024, 256 * 1024), MAX_READ_BYTES, 'up to the most');
  t.equal(nextReadBytes(MAX_READ_BYTES, MAX_READ_BYTES), MAX_READ_BYTES, 'and no further');
  t.equal(nextReadBytes(600 * 1024, MAX_READ_BYTES), MAX_READ_BYTES, 'a read of more than half: the same size again');
  t.equal(nextReadBytes(300 * 1024, MAX_READ_BYTES), 512 * 1024, 'of less: the power of two that holds it');
  t.equal(nextReadBytes(6, MAX_READ_BYTES), MIN_READ_BYTES, 'a request line: the least');
  t.equal(nextReadBytes(0, MIN_READ_BYTES), MIN_READ_BYTES, 'nothing: the least');
  t.equal(nextReadBytes(4096, MAX_READ_BYTES), 4096, 'a power of two holds itself');
  t.equal(nextReadBytes(4097, MAX_READ_BYTES), 8192, 'one byte more: the next one');
  // Every size a read can bring, against the definition in plain arithmetic (the code counts bits instead).
  let differing = 0;
  for (let bytes = 0; bytes < MAX_READ_BYTES; bytes++) {
    const holds = Math.min(MAX_READ_BYTES, Math.max(MIN_READ_BYTES, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1)))));
    if (nextReadBytes(bytes, MAX_READ_BYTES) !== holds) differing++;
  }
  t.equal(differing, 0, 'the power of two that holds it, for every size below the most');
});

for (const way of Object.keys(WAYS) as Way[]) {
  t.test(`${way}: paused as accepted: nothing is read until resume(); pause() stops the chunks, resume() brings the rest`, async (t) => {
    const { port, nextAccepted } = await listen(t, {}, way);
    const client = await connect(port);
    const socket = await nextAccepted();
    let seen = 0;
    socket.on('data', (chunk: Buffer) => (seen += chunk.length));
    client.write('hello');
    await delay(100);
    t.equal(seen, 0, 'nothing read before resume()');
    socket.resume();
    await eventually(() => seen === 5, 'the first bytes', 10_000);
    socket.pause();
    client.write('world!');
    await delay(100);
    t.equal(seen, 5, 'nothing read while paused');
    socket.resume();
    await eventually(() => seen === 11, 'the rest', 10_000);
    t.pass('resumed: the rest arrives');
  });

  t.test(`${way}: pause() right after the first resume() holds what comes (the deferred read(0) starts reading again); resume() brings it, in order`, async (t) => {
    const { port, nextAccepted } = await listen(t, {}, way);
    const client = await connect(port);
    const socket = await nextAccepted();
    const seen: string[] = [];
    socket.on('data', (chunk: Buffer) => seen.push(chunk.toString()));
    socket.resume();
    socket.pause();
    client.write('hello ');
    await delay(100);
    client.write('world');
    await delay(100);
    t.same(seen, [], 'nothing delivered while paused');
    socket.resume();
    await eventually(() => seen.join('') === 'hello world', 'the held bytes', 10_000);
    t.pass('resumed: every byte, in order');
    client.write('!');
    await eventually(() => seen.join('') === 'hello world!', 'the bytes after', 10_000);
    t.pass('and reading goes on after');
  });

  t.test(`${way}: the client's end is 'end' here; with half-open allowed, a reply still reaches it after`, async (t) => {
    const { port, nextAccepted } = await listen(t, { allowHalfOpen: true }, way);
    const client = await connect(port);
    const socket = await nextAccepted();
    const text: string[] = [];
    socket.on('data', (chunk: Buffer) => text.push(chunk.toString()));
    const ended = new Promise<void>((resolve) => socket.once('end', resolve));
    socket.resume();
    client.end('last words');
    await ended;
    t.equal(text.join(''), 'last words', 'every byte before the end');
    const reply = new Promise<string>((resolve) => {
      let got = '';
      client.on('data', (chunk: Buffer) => (got += chunk.toString()));
      client.once('end', () => resolve(got));
    });
    socket.end('heard you');
    t.equal(await reply, 'heard you', 'the reply after the end');
  });

  t.test(`${way}: the server counts the moved socket as its connection: close() completes once it is gone, not before`, async (t) => {
    const { server, port, nextAccepted } = await listen(t, {}, way);
    const client = await connect(port);
    t.teardown(() => client.destroy());
    const socket = await nextAccepted();
    const count = await new Promise<number>((resolve, reject) => server.getConnections((error, n) => (error ? reject(error) : resolve(n))));
    t.equal(count, 1, 'one connection');
    let closed = false;
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    void serverClosed.then(() => (closed = true));
    await delay(100);
    t.equal(closed, false, 'close() waits for the connection');
    socket.destroy();
    await serverClosed;
    t.pass('and completes once it is gone');
  });

  t.test(`${way}: a socket already destroyed is returned as it is`, async (t) => {
    const server = net.createServer({ pauseOnConnect: true });
    t.teardown(() => server.close());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const acceptedNow = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = await connect((server.address() as net.AddressInfo).port);
    t.teardown(() => client.destroy());
    const accepted = await acceptedNow;
    accepted.destroy();
    t.equal(WAYS[way](accepted), accepted);
  });
}
