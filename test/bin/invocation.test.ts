/** How socklab's hints name socklab: as the user can run it where they are. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SOCKLAB_PROGRAM, socklabCommand } from '../../bin/invocation.js';

const CLONE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
delete process.env.SOCKLAB_COMMAND;

t.test('npx socklab inside the clone, in any of its folders; the node form outside it', async (t) => {
  t.equal(socklabCommand(CLONE, ''), 'npx socklab');
  t.equal(socklabCommand(path.join(CLONE, 'docs'), ''), 'npx socklab');
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-invocation-'));
  t.teardown(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
  t.equal(socklabCommand(elsewhere, ''), `node ${SOCKLAB_PROGRAM}`);
});

t.test('socklab once it is on the PATH as this program (npm link), but not through npx\'s or npm run\'s own folders', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socklab-invocation-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const linked = path.join(dir, 'bin');
  const npx = path.join(dir, '_npx', 'abc', 'node_modules', '.bin');
  const other = path.join(dir, 'other');
  for (const folder of [linked, npx, other]) fs.mkdirSync(folder, { recursive: true });
  fs.symlinkSync(SOCKLAB_PROGRAM, path.join(linked, 'socklab'));
  fs.symlinkSync(SOCKLAB_PROGRAM, path.join(npx, 'socklab'));
  fs.writeFileSync(path.join(other, 'socklab'), '#!/bin/sh\n');
  t.equal(socklabCommand(dir, linked), 'socklab', 'linked into a folder of the PATH');
  t.equal(socklabCommand(dir, [npx, linked].join(path.delimiter)), 'socklab', "npx's folder is passed over");
  t.equal(socklabCommand(dir, npx), `node ${SOCKLAB_PROGRAM}`, "npx's folder alone is not the user's PATH");
  t.equal(socklabCommand(CLONE, [other, linked].join(path.delimiter)), 'npx socklab', 'another program called socklab comes first: not ours');
});

t.test('SOCKLAB_COMMAND, from a program that runs socklab for the user under another name, wins', async (t) => {
  process.env.SOCKLAB_COMMAND = 'npx socklab';
  t.teardown(() => {
    delete process.env.SOCKLAB_COMMAND;
  });
  t.equal(socklabCommand(os.tmpdir(), ''), 'npx socklab');
});
