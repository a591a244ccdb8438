/**
 * transport/port-bridge.ts over a real TCP connection and a real worker
 * thread (bridge-worker.ts): bytes both ways, flow control both ways, and a
 * client that goes away waking a worker blocked in a read or a write.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import t from 'tap';
import { ErrorCodes } from '../../protocol/index.js';
import { ControlSlot, createControl, FLOW_WINDOW_BYTES, SocketPortBridge } from '../../transport/port-bridge.js';
import { delay, eventually } from '../helpers/wire-fixture.js';
import type { BridgeWorkerReport, BridgeWorkerScript } from './bridge-worker.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
type Script = Partial<Omit<BridgeWorkerScript, 'port' | 'control'>>;

const MiB = 1024 * 1024;
/** The most a socket hands over in one 'data' event. */
const SOCKET_READ_BYTES = 64 * 1024;

function startWorker(port: MessagePort, control: SharedArrayBuffer, script: Script): { report: Promise<BridgeWorkerReport>; worker: Worker } {
  const workerData: BridgeWorkerScript = { idleTimeoutMs: 0, sleepBeforeReadingMs: 0, echo: false, writeFirstBytes: 0, ...script, port, control };
  const worker = new Worker(new URL('./bridge-worker.js', import.meta.url), { workerData, transferList: [port] });
  const report = new Promise<BridgeWorkerReport>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the worker exited (${code}) without a report`)));
  });
  return { report, worker };
}

interface Bridged {
  readonly client: net.Socket;
  /** The server's end of the connection, the one the bridge relays. */
  readonly served: net.Socket;
  readonly report: Promise<BridgeWorkerReport>;
  /** Ends the server's side once every write of the worker's is in the socket, as the workers server does. */
  endWhenRelayed(): Promise<void>;
  /** Bytes the bridge has read from the socket so far. */
  relayed(): number;
}

/** A loopback connection; its server end is accepted paused and half-open, as the servers' shell accepts. */
async function acceptedPair(): Promise<{ client: net.Socket; served: net.Socket }> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const served = await accepted;
  served.on('error', () => {});
  server.close();
  return { client, served };
}

/** A connection whose server end is relayed to a worker thread running `script`; everything is torn down with `t`. */
async function bridged(t: Tap, script: Script): Promise<Bridged> {
  const { client, served } = await acceptedPair();
  let relayed = 0;
  served.on('data', (chunk: Buffer) => (relayed += chunk.length));
  const { port1, port2 } = new MessageChannel();
  const control = createControl();
  let announced = () => {};
  const started = new Promise<void>((resolve) => (announced = resolve));
  const bridge = new SocketPortBridge(served, port1, control, () => announced());
  const { report, worker } = startWorker(port2, control, script);
  t.teardown(async () => {
    client.destroy();
    served.destroy();
    bridge.close();
    await worker.terminate();
  });
  await started; // from here on the bridge relays the socket
  const endWhenRelayed = async () => {
    await bridge.finished;
    served.end();
  };
  return { client, served, report, endWhenRelayed, relayed: () => relayed };
}

function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

/** Resolves once `value()` has not changed for `quietMs`: the two sides have stopped moving bytes. */
async function settled(value: () => number, quietMs = 150): Promise<number> {
  for (let last = value(); ; ) {
    await delay(quietMs);
    const now = value();
    if (now === last) return now;
    last = now;
  }
}

t.test('bytes go both ways unchanged and in order; the end of input reaches the worker as eof', async (t) => {
  const { client, report, endWhenRelayed } = await bridged(t, { echo: true });
  const sent = randomBytes(3 * MiB);
  const echoed = readAll(client);
  client.end(sent);
  const seen = await report;
  await endWhenRelayed();
  t.same(seen, { received: sent.length, signals: ['eof'], written: sent.length, writeErrorCode: null });
  t.ok((await echoed).equals(sent), 'the client got back exactly what it sent');
});

t.test('a worker that falls behind pauses the socket, and catching up resumes it, without losing a byte', async (t) => {
  const size = 16 * MiB;
  const data = randomBytes(size);
  // The worker's nap is long enough that the check below sees the first pause, not a later one, even on a busy machine.
  const { client, served, report, relayed } = await bridged(t, { sleepBeforeReadingMs: 1500 });
  client.end(data);
  await eventually(() => relayed() > 0 && served.isPaused(), 'the socket is paused while the worker sleeps');
  t.ok(relayed() <= FLOW_WINDOW_BYTES.input + SOCKET_READ_BYTES, `at most the input window is held for the worker (${relayed()} bytes)`);
  const seen = await report;
  t.same(seen.signals, ['eof']);
  t.equal(seen.received, size, 'every byte reached the worker');
});

t.test('a pause decided from a stale count is undone: a worker with nothing to read asks for a resume before it sleeps', async (t) => {
  // Staged race: the main thread saw the worker behind, paused the socket, and
  // set INPUT_PAUSED just after the worker had taken the last byte. Nothing
  // more will come unless the worker notices on its way to sleep.
  const { port1, port2 } = new MessageChannel();
  const control = createControl();
  Atomics.store(new Int32Array(control), ControlSlot.INPUT_PAUSED, 1);
  const fromWorker: unknown[] = [];
  port1.on('message', (message: unknown) => fromWorker.push(message instanceof Uint8Array ? 'bytes' : message));
  const { report, worker } = startWorker(port2, control, { idleTimeoutMs: 300 });
  t.teardown(async () => {
    port1.close();
    await worker.terminate();
  });
  t.same((await report).signals, ['idle-timeout']);
  await eventually(() => fromWorker.includes('done'), 'the worker said it is done');
  t.same(fromWorker, ['started', 'resume-input', 'done'], 'the worker asked the main thread to read the socket again');
  t.equal(Atomics.load(new Int32Array(control), ControlSlot.INPUT_PAUSED), 0);
});

t.test('pausing also wakes the worker, so that one asleep in a read sees the pause', async (t) => {
  // The worker's half of the race is above; this is the main thread's. Play the
  // worker by hand, taking nothing: each post bumps WAKE once, and the pause must
  // bump it once more, or a worker that took the last byte just before the pause
  // (and went to sleep on the WAKE it had seen) would sleep on with the socket paused.
  const { client, served } = await acceptedPair();
  const { port1, port2 } = new MessageChannel();
  const control = createControl();
  const slots = new Int32Array(control);
  const bridge = new SocketPortBridge(served, port1, control, () => {});
  t.teardown(() => {
    client.destroy();
    served.destroy();
    bridge.close();
    port2.close();
  });
  port2.postMessage('started');
  client.write(randomBytes(FLOW_WINDOW_BYTES.input + 4 * SOCKET_READ_BYTES));
  await eventually(() => Atomics.load(slots, ControlSlot.INPUT_PAUSED) === 1, 'the bridge pauses the socket');
  let posts = 0;
  while (receiveMessageOnPort(port2) !== undefined) posts++;
  t.ok(served.isPaused());
  t.equal(Atomics.load(slots, ControlSlot.WAKE), posts + 1, `${posts} posts and one more wake for the pause`);
});

t.test('a client that does not read holds the worker at the output window; the main thread never buffers the whole output', async (t) => {
  const size = 32 * MiB;
  const { client, served, report, endWhenRelayed } = await bridged(t, { writeFirstBytes: size });
  client.pause();
  await settled(() => served.bytesWritten);
  t.ok(served.writableLength <= FLOW_WINDOW_BYTES.output + SOCKET_READ_BYTES, `at most the output window waits in the main thread (${served.writableLength} bytes)`);
  t.ok(served.bytesWritten < size, 'the worker is held back, not done'); // bytesWritten counts what is buffered too
  const received = readAll(client);
  client.resume();
  client.end();
  const seen = await report;
  await endWhenRelayed();
  t.equal(seen.written, size);
  t.equal((await received).length, size, 'every byte reached the client once it read');
});

t.test('a client that goes away wakes a worker blocked in a read', async (t) => {
  const { client, report } = await bridged(t, { idleTimeoutMs: 0 });
  await delay(100); // the worker is asleep in read(), with no timeout
  client.resetAndDestroy();
  t.same((await report).signals, ['abort']);
});

t.test('a client that goes away wakes a worker blocked on the output window, and its write fails as CONNECTION_CLOSED', async (t) => {
  const size = 256 * MiB;
  const { client, served, report } = await bridged(t, { writeFirstBytes: size });
  client.pause();
  await settled(() => served.bytesWritten);
  client.resetAndDestroy();
  const seen = await report;
  t.equal(seen.writeErrorCode, ErrorCodes.CONNECTION_CLOSED);
  t.ok(seen.written < size, 'the write stopped part-way');
  t.same(seen.signals, ['abort'], 'and the next read says why');
});
