/**
 * A client to be killed: `node upload-child.js PORT NAME MODE SIZE OFFSET SEED`
 * connects, sends `PUT NAME SIZE mode=MODE`, then OFFSET bytes of the data
 * (OFFSET -1: not even the `150` is awaited), prints `ready` and waits forever
 * for its SIGKILL. Exits 2 (with the reason on stderr) if the server does not
 * play along. Used by crash.ts.
 */
import net from 'node:net';
import { randomBytesFrom, rng } from './processes.js';

const [port, name, mode, sizeText, offsetText, seedText] = process.argv.slice(2);
const size = Number(sizeText);
const offset = Number(offsetText);
const data = randomBytesFrom(rng(Number(seedText)), size);

function fail(why: string): never {
  process.stderr.write(`upload-child: ${why}\n`);
  process.exit(2);
}

const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
socket.on('error', (error) => fail(error.message));
let buffered = '';
let stage: 'greeting' | 'put' | 'sending' = 'greeting';

function ready(): void {
  process.stdout.write('ready\n');
  setInterval(() => {}, 60_000); // wait for the SIGKILL
}

socket.on('data', (chunk: Buffer) => {
  buffered += chunk.toString('latin1');
  for (let lf = buffered.indexOf('\n'); lf >= 0; lf = buffered.indexOf('\n')) {
    const line = buffered.slice(0, lf);
    buffered = buffered.slice(lf + 1);
    if (stage === 'greeting') {
      if (!line.startsWith('220 ')) fail(`greeting: ${line}`);
      socket.write(`PUT ${name} ${size} mode=${mode}\n`);
      stage = 'put';
      if (offset < 0) ready();
    } else if (stage === 'put' && offset >= 0) {
      if (line !== `150 send ${size} bytes`) fail(`PUT got ${line}`);
      stage = 'sending';
      socket.write(data.subarray(0, offset), () => ready());
    }
  }
});
