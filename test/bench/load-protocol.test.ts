/**
 * `socklab load --protocol echo` on the command line: what it refuses, with
 * one sentence that names the fix, before any load process starts; a run
 * against a line server in this process; and the opposite mistake, a line
 * server loaded as a socklab one. (The Python examples, measured:
 * test/examples/python.test.ts.)
 */
import t from 'tap';
import type { ScenarioReport } from '../../bench/report/report-model.js';
import { finished, runCli } from '../clients/run-cli.js';
import { withLineServer } from '../helpers/line-server.js';

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

t.test('--protocol echo runs the chat against a line server: every line answered, each client served from its first answer', async (t) => {
  await withLineServer(async ({ port }) => {
    const r = await runCli(['load', 'chat', '--protocol', 'echo', '--port', String(port), '--clients', '2', '--echoes', '2', '--think-ms', '50', '--serves', 'all', '--json']);
    finished(t, r);
    t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
    const { report } = JSON.parse(r.stdout) as { report: ScenarioReport };
    const target = report.targets[0];
    t.equal(target?.label, `127.0.0.1:${port} (echo)`);
    t.same(target?.spec, { kind: 'remote', protocol: 'echo', host: '127.0.0.1', port, serves: 'all' }, 'the spec says what was loaded, as given');
    t.equal(target?.summary.idealMs, 50, 'ideal: one script of (2 − 1) × 50 ms, everyone served at once');
    for (const s of target?.timeline.sessions ?? []) {
      t.same(
        s.replies.map((reply) => `${reply.request} ${reply.code}`),
        ['line null', 'line null'],
        `client ${s.client + 1}: two lines, each answered`,
      );
      const first = s.replies[0];
      t.ok(first !== undefined && s.greeted !== null && s.greeted > first.sentAt && s.greeted <= first.at, 'served when the first answer came');
      t.ok(s.quitSent !== null && s.error === null, 'then hung up, without error');
    }
  });
});

t.test('a line server loaded as a socklab one: each session ends at its timeout, saying to add --protocol echo', async (t) => {
  await withLineServer(async ({ port }) => {
    const r = await runCli(['load', 'chat', '--host', '127.0.0.1', '--port', String(port), '--clients', '1', '--timeout', '1']);
    finished(t, r);
    t.equal(r.code, 1);
    t.match(r.stderr, /every session failed; the first: session timed out .*no greeting came: if the server does not greet \(a plain line server\), add --protocol echo/);
  });
});
