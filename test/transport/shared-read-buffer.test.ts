/**
 * Accepted sockets whose reads land in one buffer shared by the thread
 * (transport/shared-read-buffer.ts): every byte still arrives, in order, for
 * each of several sockets at once, as long as the reader copies during the
 * event; pause and resume, the client's end, half-open replies and the
 * server's connection count behave as for the socket Node accepted. Real
 * sockets over loopback.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import { withSharedReadBuffer } from '../../transport/shared-read-buffer.js';

interface Harness {
  readonly server: net.Server;
  readonly port: number;
  /** The moved sockets, in the order they were accepted. */
  readonly accepted: net.Socket[];
  nextAccepted(): Promise<net.Socket>;
}

async function listen(t: Test, options: net.ServerOpts = {}): Promise<Harness> {
  const accepted: net.Socket[] = [];
  const waiters: ((socket: net.Socket) => void)[] = [];
  const server = net.createServer({ pauseOnConnect: true, ...options }, (socket) => {
    const moved = withSharedReadBuffer(socket);
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

t.test('paused as accepted: nothing is read until resume(); pause() stops the chunks, resume() brings the rest', async (t) => {
  const { port, nextAccepted } = await listen(t);
  const client = await connect(port);
  const socket = await nextAccepted();
  let seen = 0;
  socket.on('data', (chunk: Buffer) => (seen += chunk.length));
  client.write('hello');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(seen, 0, 'nothing read before resume()');
  socket.resume();
  await until(() => seen === 5);
  socket.pause();
  client.write('world!');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(seen, 5, 'nothing read while paused');
  socket.resume();
  await until(() => seen === 11);
  t.pass('resumed: the rest arrives');
});

t.test("the client's end is 'end' here; with half-open allowed, a reply still reaches it after", async (t) => {
  const { port, nextAccepted } = await listen(t, { allowHalfOpen: true });
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

t.test("the server counts the moved socket as its connection: close() completes once it is gone, not before", async (t) => {
  const { server, port, nextAccepted } = await listen(t);
  const client = await connect(port);
  t.teardown(() => client.destroy());
  const socket = await nextAccepted();
  const count = await new Promise<number>((resolve, reject) => server.getConnections((error, n) => (error ? reject(error) : resolve(n))));
  t.equal(count, 1, 'one connection');
  let closed = false;
  const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  void serverClosed.then(() => (closed = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(closed, false, 'close() waits for the connection');
  socket.destroy();
  await serverClosed;
  t.pass('and completes once it is gone');
});

t.test('a socket already destroyed is returned as it is', async (t) => {
  const server = net.createServer({ pauseOnConnect: true });
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const acceptedNow = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = await connect((server.address() as net.AddressInfo).port);
  t.teardown(() => client.destroy());
  const accepted = await acceptedNow;
  accepted.destroy();
  t.equal(withSharedReadBuffer(accepted), accepted);
});

async function until(check: () => boolean): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > 10_000) throw new Error('not within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
