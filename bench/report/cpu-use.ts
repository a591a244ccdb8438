/**
 * The CPU figures of a report: each target's runs summarized (how busy the
 * machine was, what the load processes used), the cores each side kept busy,
 * and the lines printed under each scenario's table. The sentences that
 * explain a result with them are in causes.ts.
 */
import type { LoadRunResult } from '../load/load-generator.js';
import { mean } from '../load/metrics.js';
import type { CpuUse, ScenarioReport, TargetReport } from './report-model.js';

/** Means per run; the machine's busy share only if every run could read it. */
export function summarizeCpu(runs: ReadonlyArray<Pick<LoadRunResult, 'cpu'>>): CpuUse {
  const machines = runs.map((run) => run.cpu.machine);
  const first = machines[0];
  const known = machines.length > 0 && machines.every((m) => m !== null && m.cores === first?.cores);
  return {
    windowMs: mean(runs.map((run) => run.cpu.windowMs)),
    loadCpuSeconds: mean(runs.map((run) => run.cpu.loadCpuSeconds)),
    machine:
      !known || first === null || first === undefined
        ? null
        : {
            cores: first.cores,
            busyShare: mean(machines.map((m) => m?.busyShare ?? 0)),
            coreBusyShares: first.coreBusyShares.map((_, core) => mean(machines.map((m) => m?.coreBusyShares[core] ?? 0))),
          },
    runs: runs.map((run) => run.cpu),
  };
}

/** A target's CPU figures per run, and the cores they amount to (CPU seconds ÷ the run's duration). */
export interface CpuFigures {
  /** The run's duration: the CPU window where it was recorded, else the makespan. */
  readonly runMs: number;
  readonly serverCpuSeconds: number | null;
  readonly serverCores: number | null;
  readonly loadCpuSeconds: number | null;
  readonly loadCores: number | null;
  readonly cores: number | null;
  readonly busyShare: number | null;
  readonly coreBusyShares: readonly number[] | null;
  /** Busy core-seconds that were neither the server's nor the load processes' (the bench itself, other programs); null if unknown. */
  readonly otherCpuSeconds: number | null;
}

export function cpuFigures(target: TargetReport): CpuFigures {
  const cpu = target.cpu;
  const runMs = cpu?.windowMs ?? target.summary.makespanMs.mean;
  const perCore = (seconds: number | null) => (seconds === null || runMs <= 0 ? null : seconds / (runMs / 1000));
  const serverCpuSeconds = target.resources?.cpuSecondsPerRun ?? null;
  const loadCpuSeconds = cpu?.loadCpuSeconds ?? null;
  const machine = cpu?.machine ?? null;
  const busyCoreSeconds = machine === null ? null : machine.busyShare * machine.cores * (runMs / 1000);
  return {
    runMs,
    serverCpuSeconds,
    serverCores: perCore(serverCpuSeconds),
    loadCpuSeconds,
    loadCores: perCore(loadCpuSeconds),
    cores: machine?.cores ?? null,
    busyShare: machine?.busyShare ?? null,
    coreBusyShares: machine?.coreBusyShares ?? null,
    otherCpuSeconds: busyCoreSeconds === null || serverCpuSeconds === null || loadCpuSeconds === null ? null : busyCoreSeconds - serverCpuSeconds - loadCpuSeconds,
  };
}

/** `97%`: busy shares need no decimals. */
export function formatShare(share: number): string {
  return `${Math.round(share * 100)}%`;
}

export const formatCpuSeconds = (seconds: number) => seconds.toFixed(2);
export const formatCores = (cores: number) => cores.toFixed(2);

/**
 * What goes under a scenario's table: a heading, then per target its server's
 * and load processes' CPU and the machine's busy share; null when nothing of
 * it was recorded (a remote server, a report from before these figures).
 */
export function cpuUseLines(report: ScenarioReport): { heading: string; lines: Array<{ label: string; figures: string }> } | null {
  const measured = report.targets.filter((t) => t.cpu !== undefined);
  if (measured.length === 0) return null;
  const cores = measured.map((t) => t.cpu?.machine?.cores).find((n) => n !== undefined);
  const lines = measured.map((target) => {
    const f = cpuFigures(target);
    const used = (seconds: number | null, cores: number | null) => (seconds === null ? '—' : `${formatCpuSeconds(seconds)} s (${formatCores(cores ?? 0)} cores)`);
    const eachCore = (f.coreBusyShares?.length ?? 0) > 1 ? ` (${(f.coreBusyShares ?? []).map(formatShare).join(', ')})` : '';
    return {
      label: target.label,
      figures: `server ${used(f.serverCpuSeconds, f.serverCores)}, clients ${used(f.loadCpuSeconds, f.loadCores)}, busy ${f.busyShare === null ? '—' : `${formatShare(f.busyShare)}${eachCore}`}`,
    };
  });
  return {
    heading: `CPU per run: CPU s (cores used) of the server and of the clients; busy share of the ${cores === undefined ? "machine's" : cores} cores (each)`,
    lines,
  };
}

/** The lines under a terminal table: the heading, then a target a line, labels aligned. */
export function cpuUseText(report: ScenarioReport): string {
  const use = cpuUseLines(report);
  if (use === null) return '';
  const width = Math.max(...use.lines.map((line) => line.label.length));
  return `${use.heading}:\n${use.lines.map((line) => `  ${line.label.padEnd(width)}  ${line.figures}\n`).join('')}`;
}

/** The same under a Markdown table: a paragraph and a list. */
export function cpuUseMarkdown(report: ScenarioReport): string {
  const use = cpuUseLines(report);
  if (use === null) return '';
  return `${use.heading}:\n\n${use.lines.map((line) => `- ${line.label}: ${line.figures}\n`).join('')}`;
}
