/**
 * No module of socklab imports itself back, through any number of others.
 * A circle makes the load order decide which side sees the other half-built,
 * and it means neither file can be read, tested or moved without the other.
 * This reads the TypeScript sources (type-only imports count: they tie the
 * files together just the same) and names every circle it finds.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCE_FOLDERS = ['protocol', 'transport', 'servers', 'clients', 'bench', 'bin', 'test'];

/** A relative path after `import … from`, `export … from`, a bare `import`, or in a dynamic `import()`. */
const RELATIVE_SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;
const COMPILED_TO_SOURCE: Readonly<Record<string, string>> = { '.js': '.ts', '.cjs': '.cts', '.mjs': '.mts' };

type ImportGraph = ReadonlyMap<string, readonly string[]>;

function sourceFiles(folder: string): string[] {
  return fs.readdirSync(path.join(REPO, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.(c|m)?ts$/.test(name) && !name.endsWith('.d.ts'))
    .map((name) => path.posix.join(folder, name.split(path.sep).join('/')));
}

/** Every source file, with the project files it imports (repo-relative paths). */
function readImportGraph(): ImportGraph {
  const graph = new Map<string, string[]>();
  for (const file of SOURCE_FOLDERS.flatMap(sourceFiles)) {
    const text = fs.readFileSync(path.join(REPO, file), 'utf8');
    const imported = new Set<string>();
    for (const match of text.matchAll(RELATIVE_SPECIFIER)) {
      const specifier = match[2] ?? '';
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      const extension = path.posix.extname(target);
      imported.add(target.slice(0, target.length - extension.length) + (COMPILED_TO_SOURCE[extension] ?? extension));
    }
    graph.set(file, [...imported].sort());
  }
  return graph;
}

/** One circle per strongly connected group of modules (Tarjan), written `a → b → a`. */
function importCycles(graph: ImportGraph): string[] {
  const index = new Map<string, number>();
  const lowest = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    lowest.set(node, index.get(node) ?? 0);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        lowest.set(node, Math.min(lowest.get(node) ?? 0, lowest.get(next) ?? 0));
      } else if (onStack.has(next)) {
        lowest.set(node, Math.min(lowest.get(node) ?? 0, index.get(next) ?? 0));
      }
    }
    if (lowest.get(node) !== index.get(node)) return;
    const group: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      group.push(member);
    } while (member !== node);
    if (group.length > 1 || (graph.get(node) ?? []).includes(node)) groups.push(group);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return groups.map((group) => circleThrough(graph, new Set(group)).join(' → '));
}

/** A shortest path from the group's first module (by name) back to itself, inside the group. */
function circleThrough(graph: ImportGraph, group: ReadonlySet<string>): string[] {
  const start = [...group].sort()[0] ?? '';
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head] ?? '';
    for (const next of graph.get(node) ?? []) {
      if (!group.has(next)) continue;
      if (next === start) {
        const circle: string[] = [];
        for (let at: string | undefined = node; at !== undefined && at !== start; at = cameFrom.get(at)) circle.unshift(at);
        return [start, ...circle, start];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start];
}

t.test('the cycle finder names a circle and passes a line', async (t) => {
  const circle = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts', 'd.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', []],
  ]);
  t.same(importCycles(circle), ['a.ts → b.ts → c.ts → a.ts']);
  t.same(importCycles(new Map([['a.ts', ['a.ts']]])), ['a.ts → a.ts'], 'a module importing itself');
  t.same(importCycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', []]])), [], 'a line of imports is no circle');
});

t.test("socklab's modules import one another without a circle", async (t) => {
  const graph = readImportGraph();
  // The reader must have seen the project, or an empty graph would pass.
  t.ok(graph.size > 100, `${graph.size} source files read`);
  t.ok(graph.get('bench/run.ts')?.includes('bench/report/build-report.ts'), 'it sees an import: bench/run.ts → bench/report/build-report.ts');
  t.ok(graph.get('bench/load/load-command.ts')?.includes('bench/load/load-run.ts'), 'it sees a dynamic import(): bench/load/load-command.ts → bench/load/load-run.ts');
  const unread = [...graph].flatMap(([file, imported]) => imported.filter((target) => !graph.has(target)).map((target) => `${file} → ${target}`));
  t.same(unread, [], 'every import resolves to a source file read here');
  t.same(importCycles(graph), [], 'no import circles');
});
