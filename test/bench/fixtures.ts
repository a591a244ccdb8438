/**
 * Known timelines for the aggregation and report tests: chat runs drawn the
 * way an ideal server of each model would serve them, on round numbers, so
 * every expected figure can be worked out by hand.
 */
import type { LoadRunResult } from '../../bench/load/load-generator.js';
import { scenarioParams, SCENARIOS } from '../../bench/load/scenarios.js';
import type { ReplyEvent, SessionTimeline } from '../../bench/load/timeline.js';
import { buildScenarioReport } from '../../bench/report/build-report.js';
import type { MachineInfo } from '../../bench/report/machine.js';
import type { BenchReport } from '../../bench/report/report-markdown.js';
import type { TargetMeasurement } from '../../bench/report/report-model.js';
import type { TargetSpec } from '../../bench/targets/targets.js';

/** The start instant of every fixture run: an arbitrary shared-clock value. */
export const T0 = 1_700_000_000_000;

export function session(fields: Partial<SessionTimeline> & Pick<SessionTimeline, 'client' | 'done'>): SessionTimeline {
  return {
    process: fields.client,
    role: 'chat',
    scheduledStart: T0,
    connectStart: T0,
    connected: T0,
    greeted: T0,
    replies: [],
    quitSent: fields.done,
    uploadedBytes: 0,
    error: null,
    ...fields,
  };
}

/**
 * A chat of `clients` clients each needing `scriptMs`, on a server serving
 * `atOnce` at a time: client k (from 0) is greeted at ⌊k ÷ atOnce⌋ × scriptMs,
 * sends QUIT at the end of its script and is done 1 ms later.
 */
export function chatRun(clients: number, scriptMs: number, atOnce: number): LoadRunResult {
  const sessions = Array.from({ length: clients }, (_, client) => {
    const greeted = T0 + Math.floor(client / atOnce) * scriptMs;
    const quitSent = greeted + scriptMs;
    const replies: ReplyEvent[] = [
      { request: 'ECHO', sentAt: greeted, at: greeted + 1, code: 200, count: 1 },
      { request: 'QUIT', sentAt: quitSent, at: quitSent + 1, code: 221, count: 1 },
    ];
    return session({ client, greeted, quitSent, done: quitSent + 1, replies });
  });
  const makespan = Math.ceil(clients / atOnce) * scriptMs + 1;
  return {
    startAt: T0,
    processStarts: sessions.map((_, i) => T0 + i * 0.5),
    startSkewMs: (clients - 1) * 0.5,
    serverModel: null,
    planned: sessions.map((s) => ({ client: s.client, role: 'chat', offsetMs: 0 })),
    sessions,
    // A quiet machine: a chat's clients and server need next to no CPU.
    cpu: { windowMs: makespan + 2, loadCpuSeconds: 0.1, serverCpuSeconds: 0.25, machine: { cores: 2, busyShare: 0.2, coreBusyShares: [0.25, 0.15] } },
  };
}

export function measurement(spec: TargetSpec, label: string, runs: readonly LoadRunResult[]): TargetMeasurement {
  return {
    spec,
    label,
    runs,
    // No warm-up, as in the --quick runs the fixture reports stand for.
    stats: { warmupRuns: 0, samples: runs.length, meanMs: 0, rmePercent: 1.5, sdMs: 0 },
    resources: spec.kind === 'remote' ? null : { cpuSecondsPerRun: 0.25, peakRssBytes: 64 * 1024 * 1024 },
    plainLoop: null,
  };
}

/** Chat with 8 clients and a 0.8 s script (5 ECHO 200 ms apart) against each server, as the ideal servers would run it. */
export function chatMeasurements(): TargetMeasurement[] {
  return [
    measurement({ kind: 'model', model: 'sequential' }, 'sequential', [chatRun(8, 800, 1)]),
    measurement({ kind: 'model', model: 'workers', threads: 4 }, 'workers --threads 4', [chatRun(8, 800, 4)]),
    measurement({ kind: 'model', model: 'async' }, 'async', [chatRun(8, 800, 8)]),
    measurement({ kind: 'ceiling' }, 'ceiling', [chatRun(8, 800, 8)]),
  ];
}

/**
 * A whole bench report of three scenarios against every server, on round
 * numbers: what the HTML report's browser test opens, and what the docs'
 * screenshot shows (`npm run screenshot`). Synthetic, not a measured run.
 */
export function fixtureReport(): BenchReport {
  const machine: MachineInfo = { cpuModel: 'Classroom CPU', cores: 2, memoryGiB: 24, os: 'Linux 6.1', node: 'v20.19.0', gitCommit: 'abc1234' };
  const servers = (scriptMs: number) => [
    measurement({ kind: 'model', model: 'sequential' }, 'sequential', [chatRun(8, scriptMs, 1)]),
    measurement({ kind: 'model', model: 'workers', threads: 8 }, 'workers --threads 8', [chatRun(8, scriptMs, 8)]),
    measurement({ kind: 'model', model: 'workers', threads: 4 }, 'workers --threads 4', [chatRun(8, scriptMs, 4)]),
    measurement({ kind: 'model', model: 'async' }, 'async', [chatRun(8, scriptMs, 8)]),
    measurement({ kind: 'ceiling' }, 'ceiling', [chatRun(8, scriptMs * 0.9, 8)]),
  ];
  return {
    schema: 'socklab-bench/1',
    run: { createdAt: '2025-03-04T09:15:00.000Z', command: 'npm run bench -- --quick', quick: true, warmupRuns: 0, measuredRuns: 1, durationSeconds: 95 },
    machine,
    scenarios: [
      buildScenarioReport('chat', scenarioParams(SCENARIOS.chat), null, chatMeasurements()),
      buildScenarioReport('upload', scenarioParams(SCENARIOS.upload), null, servers(1200)),
      buildScenarioReport('slow-client', scenarioParams(SCENARIOS['slow-client']), null, servers(500)),
    ],
  };
}
