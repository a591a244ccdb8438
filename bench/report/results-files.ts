/**
 * Where a bench run is kept: results/<stamp>.md (the report), <stamp>.json
 * (the same data, every number and the median run's timelines),
 * <stamp>-<scenario>.svg (a timeline picture per scenario), and
 * results/latest.md + results/latest.json for the newest run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { markdownReport, type BenchReport } from './report-markdown.js';
import { timelineSvg } from './report-svg.js';

export interface WrittenResults {
  readonly markdown: string;
  readonly json: string;
  /** What was written to `json`, for a caller that also prints it. */
  readonly jsonText: string;
  readonly svgs: readonly string[];
}

/** `2025-11-27T17:05:12.345Z` → `2025-11-27T17-05-12Z`: sorts by time, and no colons for file systems that refuse them. */
export function resultStamp(createdAt: string): string {
  return createdAt.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
}

/** Stands in for a sessions array while the rest is indented; no report text contains it. */
const SESSIONS_MARK = '@@socklab-sessions:';

/**
 * The report as JSON, indented, except that each session of a timeline takes
 * one line: still readable, and the crowd's thousands of sessions take about
 * half the bytes they would fully indented.
 */
export function benchJson(report: BenchReport): string {
  const sessionLines: string[] = [];
  const marked = JSON.stringify(
    report,
    (key, value: unknown) => {
      if (key !== 'sessions' || !Array.isArray(value)) return value;
      sessionLines.push(value.map((session) => JSON.stringify(session)).join(',\n'));
      return `${SESSIONS_MARK}${sessionLines.length - 1}`;
    },
    1,
  );
  return `${marked.replace(new RegExp(`"${SESSIONS_MARK}(\\d+)"`, 'g'), (_, index: string) => `[\n${sessionLines[Number(index)] ?? ''}\n]`)}\n`;
}

export function writeResults(dir: string, report: BenchReport): WrittenResults {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = resultStamp(report.run.createdAt);
  const svgName = (scenario: string) => `${stamp}-${scenario}.svg`;
  const svgs = report.scenarios.map((scenario) => {
    const file = path.join(dir, svgName(scenario.scenario));
    fs.writeFileSync(file, timelineSvg(scenario));
    return file;
  });
  const markdown = path.join(dir, `${stamp}.md`);
  const json = path.join(dir, `${stamp}.json`);
  fs.writeFileSync(markdown, markdownReport(report, svgName));
  const jsonText = benchJson(report);
  fs.writeFileSync(json, jsonText);
  fs.copyFileSync(json, path.join(dir, 'latest.json'));
  fs.writeFileSync(path.join(dir, 'latest.md'), latestPointer(report, stamp, report.scenarios.map((s) => svgName(s.scenario))));
  return { markdown, json, jsonText, svgs };
}

function latestPointer(report: BenchReport, stamp: string, svgs: readonly string[]): string {
  const { machine, run } = report;
  return [
    '# Newest socklab bench run',
    '',
    `**[${stamp}](${stamp}.md)**: \`${run.command}\` on ${machine.cpuModel} (${machine.cores} cores), Node ${machine.node}, commit ${machine.gitCommit}.`,
    '',
    `- Report: [${stamp}.md](${stamp}.md)`,
    `- Data: [${stamp}.json](${stamp}.json) (also [latest.json](latest.json))`,
    ...svgs.map((svg) => `- Timeline: [${svg}](${svg})`),
    '',
  ].join('\n');
}
