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
  readonly svgs: readonly string[];
}

/** `2025-11-27T17:05:12.345Z` → `2025-11-27T17-05-12Z`: sorts by time, and no colons for file systems that refuse them. */
export function resultStamp(createdAt: string): string {
  return createdAt.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
}

export function benchJson(report: BenchReport): string {
  return `${JSON.stringify(report, null, 1)}\n`;
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
  fs.writeFileSync(json, benchJson(report));
  fs.copyFileSync(json, path.join(dir, 'latest.json'));
  fs.writeFileSync(path.join(dir, 'latest.md'), latestPointer(report, stamp, report.scenarios.map((s) => svgName(s.scenario))));
  return { markdown, json, svgs };
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
