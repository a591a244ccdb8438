/**
 * Starts a real server of any model on 127.0.0.1, port 0, over a fresh temporary
 * root, for one test. Never 8020, never ./storage: parallel runs cannot collide.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, type RunningServer, type ServerModelName, type ServerOptions } from '../../servers/index.js';

export interface TestServer {
  readonly server: RunningServer;
  readonly port: number;
  readonly root: string;
  /** Every log line so far, without the timestamp. */
  readonly logs: string[];
  /** Graceful stop, then the root is removed. */
  close(): Promise<void>;
}

export function makeTempRoot(prefix = 'socklab-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startTestServer(model: ServerModelName, overrides: Partial<ServerOptions> = {}): Promise<TestServer> {
  const root = overrides.root ?? makeTempRoot();
  const logs: string[] = [];
  const server = await startServer(model, {
    host: '127.0.0.1',
    port: 0,
    root,
    maxFileSize: 64 * 1024 * 1024,
    idleTimeoutSeconds: 30,
    minUploadRate: 0,
    maxConnections: 1000,
    threads: 4,
    maxQueue: 1000,
    graceSeconds: 5,
    log: (line) => logs.push(line.replace(/^\S+ /, '')),
    ...overrides,
  });
  return {
    server,
    port: server.port,
    root,
    logs,
    async close() {
      await server.close();
      if (overrides.root === undefined) fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
