/**
 * What a load runs against: a socklab server model that the load generator
 * starts as its own process (so its CPU time and peak memory are its own), the
 * ceiling (the bare Node line server and raw copy sink, both started here), or
 * any server already running somewhere (--host/--port), which is measured from
 * the outside only: a socklab one, or a plain line server (--protocol echo).
 */
import dns from 'node:dns/promises';
import { ConnectionError, ErrorCodes } from '../../protocol/index.js';
import { SERVER_MODELS, type ServerModelName } from '../../servers/index.js';
import { DEFAULT_THREADS } from '../../servers/cli.js';
import type { LoadProtocol } from '../load/scenarios.js';
import { socklabEndpoints, type TargetEndpoints } from '../load/script-client.js';
import { startServerProcess, type ServerProcess } from './server-process.js';

export type TargetSpec =
  | { readonly kind: 'model'; readonly model: ServerModelName; readonly threads?: number }
  | { readonly kind: 'ceiling' }
  | {
      readonly kind: 'remote';
      readonly host: string;
      readonly port: number;
      readonly threads?: number;
      /** Absent: v1. */
      readonly protocol?: LoadProtocol;
      /** How many clients it serves at once, as the user says (--serves): what its greeting cannot tell. */
      readonly serves?: ServesAtOnce;
    };

/** A number of clients, or `all` (a server that never makes a client wait for another). */
export type ServesAtOnce = number | 'all';

/** What `socklab load` and `npm run bench` can start themselves: a server model, or the ceiling's bare servers. */
export const LOCAL_SERVERS = [...SERVER_MODELS, 'ceiling'] as const;
export type LocalServer = (typeof LOCAL_SERVERS)[number];

/** The target that starts `server` (with a pool of `threads`, when given). */
export function localTargetSpec(server: LocalServer, threads?: number): TargetSpec {
  if (server === 'ceiling') return { kind: 'ceiling' };
  return { kind: 'model', model: server, ...(threads === undefined ? {} : { threads }) };
}

export interface ServerUsage {
  /** User + system CPU seconds of the server's processes since they started. */
  readonly cpuSeconds: number;
  /** Their peak resident memory (VmHWM), summed over the processes. */
  readonly peakRssBytes: number;
}

export interface RunningTarget {
  readonly spec: TargetSpec;
  readonly label: string;
  readonly endpoints: TargetEndpoints;
  /** Null for a server this process did not start. */
  usage(): ServerUsage | null;
  stop(): Promise<void>;
}

/**
 * How tables and timelines name a target: `workers --threads 4`, `ceiling`;
 * a server elsewhere by the model its greeting named, once known, and its
 * address: `async at 192.168.1.20:8020`.
 */
export function targetLabel(spec: TargetSpec, greetedModel: string | null = null): string {
  switch (spec.kind) {
    case 'model':
      return modelLabel(spec.model, spec.threads ?? DEFAULT_THREADS);
    case 'ceiling':
      return 'ceiling';
    case 'remote': {
      const address = `${spec.host}:${spec.port}`;
      if (spec.protocol === 'echo') return `${address} (echo)`;
      return greetedModel === null ? address : `${modelLabel(greetedModel, spec.threads)} at ${address}`;
    }
  }
}

/** Its pool size only when known: a running server's cannot be seen from outside unless --threads gives it. */
function modelLabel(model: string, threads: number | undefined): string {
  return model === 'workers' && threads !== undefined ? `workers --threads ${threads}` : model;
}

/**
 * How many clients the server serves at once, for the ideal makespan; null
 * when that cannot be known. A remote server names its model in its
 * greeting; its pool size cannot be seen from outside, so --threads says it.
 * A plain line server does not greet: --serves says it.
 */
export function clientsServedAtOnce(spec: TargetSpec, greetedModel: string | null): number | null {
  if (spec.kind === 'ceiling') return Number.POSITIVE_INFINITY;
  if (spec.kind === 'remote' && spec.serves !== undefined) return spec.serves === 'all' ? Number.POSITIVE_INFINITY : spec.serves;
  const model = spec.kind === 'model' ? spec.model : greetedModel;
  switch (model) {
    case 'sequential':
      return 1;
    case 'workers':
      return spec.threads ?? DEFAULT_THREADS;
    case 'async':
      return Number.POSITIVE_INFINITY;
    default:
      return null;
  }
}

export async function startTarget(spec: TargetSpec): Promise<RunningTarget> {
  const label = targetLabel(spec);
  switch (spec.kind) {
    case 'remote':
      await checkHostResolves(spec.host);
      return {
        spec,
        label,
        endpoints: spec.protocol === 'echo' ? { kind: 'echo', host: spec.host, port: spec.port, pingPort: spec.port } : socklabEndpoints(spec.host, spec.port),
        usage: () => null,
        stop: async () => {},
      };
    case 'model': {
      const server = await startServerProcess(spec.model, spec.threads === undefined ? {} : { threads: spec.threads });
      return localTarget(spec, label, [server], socklabEndpoints('127.0.0.1', server.port));
    }
    case 'ceiling': {
      const [line, copy] = await Promise.all([startServerProcess('line-server'), startServerProcess('copy-sink')]);
      // Scripted sessions go to the copy sink (it answers lines too); PING bursts to the bare line server.
      return localTarget(spec, label, [line, copy], { kind: 'ceiling', host: '127.0.0.1', port: copy.port, pingPort: line.port });
    }
  }
}

/** Fails with one sentence before any load process starts, rather than in each of them. */
async function checkHostResolves(host: string): Promise<void> {
  try {
    await dns.lookup(host);
  } catch (error) {
    throw new ConnectionError(ErrorCodes.CONNECTION_FAILED, `no such host "${host}" (check --host)`, { cause: error });
  }
}

function localTarget(spec: TargetSpec, label: string, processes: readonly ServerProcess[], endpoints: TargetEndpoints): RunningTarget {
  return {
    spec,
    label,
    endpoints,
    usage: () => ({
      cpuSeconds: processes.reduce((sum, p) => sum + p.cpuSeconds(), 0),
      peakRssBytes: processes.reduce((sum, p) => sum + p.peakRss(), 0),
    }),
    stop: async () => {
      await Promise.all(processes.map((p) => p.stop()));
    },
  };
}
