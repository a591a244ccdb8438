/**
 * A TCP proxy between a client and a socklab server that breaks chosen
 * connections on purpose, for the client tests: the nth connection can be
 * cut after the client has sent some bytes (mid-upload: the server discards
 * the upload); held after some bytes (so that a test can kill the server
 * while the client is surely mid-upload); or cut right when the server's
 * `226` comes, which is then never delivered (the upload committed, and the
 * client cannot know). Counts the PUT lines clients send, so a test can tell
 * how often an upload was sent.
 */
import net from 'node:net';
import { startFakeServer } from '../clients/run-cli.js';

export type Fault =
  | { readonly kind: 'pass' }
  /** Cut both sides once the client has sent this many bytes in total. */
  | { readonly kind: 'cut-after-client-bytes'; readonly bytes: number }
  /**
   * Forward this many bytes from the client, then read no more from it: a test can then break the
   * server at leisure, knowing the client is still in the middle of its upload.
   */
  | { readonly kind: 'hold-after-client-bytes'; readonly bytes: number }
  /** Cut both sides when a `226 ` line comes from the server, without forwarding it; then call `onDrop`. */
  | { readonly kind: 'drop-226'; readonly onDrop?: () => void };

export interface FaultyProxy {
  readonly port: number;
  /** PUT request lines seen from clients, over all connections. */
  readonly puts: string[];
  close(): Promise<void>;
}

export async function startFaultyProxy(targetPort: number, faultFor: (connection: number) => Fault): Promise<FaultyProxy> {
  const puts: string[] = [];
  let count = 0;
  // The fake server tracks the client sides; each upstream side goes when its client side does.
  const fake = await startFakeServer((client) => {
    const fault = faultFor(++count);
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    upstream.on('error', () => {});
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    let fromClient = 0;
    let clientText = '';
    client.on('data', (chunk: Buffer) => {
      // Request lines, for counting PUTs (data blocks may add noise, never a line starting with "PUT " in these tests).
      clientText = (clientText + chunk.toString('latin1')).slice(-4096);
      for (let lf = clientText.indexOf('\n'); lf >= 0; lf = clientText.indexOf('\n')) {
        const line = clientText.slice(0, lf);
        if (line.startsWith('PUT ')) puts.push(line);
        clientText = clientText.slice(lf + 1);
      }
      if (fault.kind === 'cut-after-client-bytes' && fromClient + chunk.length >= fault.bytes) {
        // Read no more: otherwise, while the cut waits for the server to take the prefix, the
        // client could hand the proxy the rest of the upload and believe all of it was sent.
        client.pause();
        upstream.write(chunk.subarray(0, Math.max(0, fault.bytes - fromClient)), cut);
        fromClient = fault.bytes;
        return;
      }
      if (fault.kind === 'hold-after-client-bytes' && fromClient + chunk.length >= fault.bytes) {
        client.pause(); // for good: what the client sent past the limit is never forwarded
        upstream.write(chunk.subarray(0, fault.bytes - fromClient));
        fromClient = fault.bytes;
        return;
      }
      fromClient += chunk.length;
      // Backpressure, as a real path has: the client may run ahead of the server only by what sockets buffer.
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    let serverText = '';
    upstream.on('data', (chunk: Buffer) => {
      if (fault.kind !== 'drop-226') {
        client.write(chunk);
        return;
      }
      // Forward whole lines until the 226, which is swallowed.
      serverText += chunk.toString('latin1');
      for (let lf = serverText.indexOf('\n'); lf >= 0; lf = serverText.indexOf('\n')) {
        const line = serverText.slice(0, lf + 1);
        serverText = serverText.slice(lf + 1);
        if (line.startsWith('226 ')) {
          cut();
          fault.onDrop?.();
          return;
        }
        client.write(Buffer.from(line, 'latin1'));
      }
    });
  });
  return { port: fake.port, puts, close: () => fake.close() };
}
