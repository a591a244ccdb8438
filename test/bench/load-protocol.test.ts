/**
 * `socklab load --protocol echo` on the command line: what it refuses, with
 * one sentence that names the fix, before any load process starts. (Runs
 * against real plain line servers: test/examples/python.test.ts.)
 */
import t from 'tap';
import { finished, runCli } from '../clients/run-cli.js';

delete process.env.NODE_OPTIONS;

const refusals: ReadonlyArray<{ readonly args: readonly string[]; readonly says: RegExp; readonly why: string }> = [
  {
    args: ['upload', '--protocol', 'echo'],
    says: /the upload scenario uses socklab's commands, so it needs a protocol-v1 server: leave out --protocol echo \(a plain line server can run chat\)/,
    why: 'a scenario made of socklab commands',
  },
  { args: ['ceiling', '--protocol', 'echo'], says: /the ceiling scenario .* needs a protocol-v1 server/, why: 'the PING bursts need protocol v1 too' },
  { args: ['chat', 'sequential', '--protocol', 'echo'], says: /socklab's sequential server speaks protocol v1, not plain lines/, why: "one of socklab's own servers" },
  { args: ['chat', '--protocol', 'echo', '--threads', '4'], says: /--threads is the pool size of socklab's workers server: .* --serves/, why: '--threads for a server of your own' },
  { args: ['chat', '--protocol', 'echo', '--ceiling'], says: /--ceiling is for socklab's own servers/, why: '--ceiling' },
  { args: ['chat', '--protocol', 'echo', '--serves', 'some'], says: /--serves takes a number of clients \(1 for a blocking server\) or "all", not "some"/, why: 'a --serves that is no count' },
  { args: ['chat', '--protocol', 'echo', '--serves', '0'], says: /--serves must be a whole number from 1/, why: '--serves 0' },
  { args: ['chat', 'async', '--serves', '1'], says: /--serves is for a server socklab did not start/, why: "--serves for socklab's own server" },
  { args: ['chat', '--protocol', 'telnet'], says: /Choices: "v1", "echo"/, why: 'an unknown protocol' },
];

for (const { args, says, why } of refusals) {
  t.test(`refused: ${why} (socklab load ${args.join(' ')})`, async (t) => {
    const r = await runCli(['load', ...args]);
    finished(t, r);
    t.equal(r.code, 2, 'a usage error');
    t.match(r.stderr, says);
    t.equal(r.stdout, '', 'nothing measured');
  });
}
