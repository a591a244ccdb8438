/** How the bench writes numbers for people: durations, sizes, rates. */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** The unit a duration reads best in: s from 1 s, ms below. */
export function durationUnit(ms: number): 's' | 'ms' {
  return Math.abs(ms) >= 1000 ? 's' : 'ms';
}

/** A duration in the given unit, without the unit: 3 significant digits or so. */
export function durationIn(ms: number, unit: 's' | 'ms'): string {
  const value = unit === 's' ? ms / 1000 : ms;
  if (value === 0) return '0';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatMs(ms: number): string {
  const unit = durationUnit(ms);
  return `${durationIn(ms, unit)} ${unit}`;
}

/** Several durations in one unit (that of the largest): `0.00 / 2.41 / 5.61 s`. */
export function formatMsSeries(values: readonly number[]): string {
  const unit = durationUnit(Math.max(0, ...values));
  return `${values.map((v) => durationIn(v, unit)).join(' / ')} ${unit}`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(bytes >= 100 * MiB ? 0 : 1)} MiB`;
  if (bytes >= KiB) return `${(bytes / KiB).toFixed(0)} KiB`;
  return `${bytes} B`;
}

/** A rate with no more digits than it deserves: 12345 → `12345`, 3.14159 → `3.14`. */
export function formatRate(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(fraction >= 0.995 ? 0 : 1)}%`;
}

/** A sentence that starts with a server's name: `async: …` → `Async: …`. */
export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Prose broken into lines of at most `width` characters at spaces (a word
 * longer than that keeps its own line). A line's own indentation is kept, and
 * its continuation lines get the same; Infinity leaves the text as it is.
 */
export function wrapText(text: string, width: number): string {
  if (!Number.isFinite(width)) return text;
  return text
    .split('\n')
    .map((paragraph) => {
      const indent = /^ */.exec(paragraph)?.[0] ?? '';
      const lines: string[] = [];
      let line = '';
      for (const word of paragraph.slice(indent.length).split(' ')) {
        const candidate = line === '' ? `${indent}${word}` : `${line} ${word}`;
        if (line !== '' && candidate.length > width) {
          lines.push(line);
          line = `${indent}${word}`;
        } else {
          line = candidate;
        }
      }
      lines.push(line);
      return lines.join('\n');
    })
    .join('\n');
}

/** `1 thread`, `2 threads`: a count with its noun. */
export function counted(count: number, noun: string): string {
  return `${count} ${count === 1 ? noun : `${noun}s`}`;
}
