// The source layout's rules, read from the code's own import statements: each part imports only
// the parts below it (the table), and no files import each other in a circle.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/**
 * What each part may import, besides itself. A part is a folder of src/ or a file at its top.
 * Lower parts know nothing of higher ones: only http/ knows HTTP, only the worker runs models,
 * metrics are fed and import nothing of ours.
 */
const ALLOWED: Record<string, readonly string[]> = {
  'model': [],
  'metrics': [],
  'decode': [],
  // Metrics of the evaluation (COCO AP, mIoU, top-k): pure, and used by scripts/eval.ts only.
  'eval': [],
  'weights': ['model'],
  'engine': ['model'],
  'tasks.ts': ['model'],
  // The engine contract only: which engines and precisions a model config may name.
  'catalog': ['decode', 'model', 'weights', 'tasks.ts', 'engine/engine.ts'],
  'render': ['decode', 'tasks.ts'],
  'pool': ['tasks.ts', 'engine'],
  // The worker shares only the message contract with the pool's side.
  // decode: an int8 model's calibration photos, decoded at load as requests' photos are.
  'worker': ['catalog', 'decode', 'engine', 'model', 'weights', 'tasks.ts', 'pool/messages.ts'],
  'pipeline': ['catalog', 'decode', 'engine', 'metrics', 'model', 'pool', 'render', 'tasks.ts'],
  // The Open Inference Protocol's data model, shared by its REST and gRPC front-ends.
  'oip': ['model', 'pipeline', 'pool', 'render', 'tasks.ts'],
  'config.ts': ['catalog', 'decode', 'engine'],
  'http': ['catalog', 'config.ts', 'decode', 'engine', 'metrics', 'model', 'oip', 'pipeline', 'pool', 'render', 'tasks.ts'],
  'app.ts': ['config.ts', 'http', 'pipeline'],
  // The Open Inference Protocol over gRPC: a front-end beside http/, never through it.
  'grpc': ['decode', 'metrics', 'oip', 'pipeline', 'pool'],
  'server.ts': ['app.ts', 'config.ts', 'grpc'],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? sources(path) : e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file (static, type-only and dynamic), as paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => relative(SRC, resolve(dirname(file), s.replace(/\.js$/, '.ts'))));
}

const partOf = (path: string) => (path.includes('/') ? path.split('/')[0]! : path);
const files = sources(SRC).map((f) => relative(SRC, f));
const graph = new Map(files.map((f) => [f, importsOf(join(SRC, f))]));

/** Imports that break the table. */
function violations(edges: Map<string, string[]>): string[] {
  const broken: string[] = [];
  for (const [file, imports] of edges) {
    const part = partOf(file);
    for (const target of imports) {
      const to = partOf(target);
      const allowed = ALLOWED[part] ?? [];
      if (to !== part && !allowed.includes(to) && !allowed.includes(target)) broken.push(`${file} -> ${target}`);
    }
  }
  return broken;
}

/** Each circle of imports, as the files around it. */
function cycles(edges: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      found.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const target of edges.get(file) ?? []) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of edges.keys()) visit(file, []);
  return found;
}

describe('source layout', () => {
  it('has a rule for every part of src/, and reads real imports', () => {
    expect([...new Set(files.map(partOf))].filter((p) => !(p in ALLOWED))).toEqual([]);
    for (const [file, imports] of graph) for (const target of imports) expect(files, `${file} imports ${target}`).toContain(target);
    expect(graph.get('app.ts')).toContain('http/errors.ts');
    expect(graph.get('worker/load.ts')).toContain('engine/load.ts');
  });

  it('imports only downwards: no part reaches a part above it', () => {
    expect(violations(graph)).toEqual([]);
  });

  it('keeps the evaluation out of the service: no part of src/ imports eval/', () => {
    const importers = [...graph].filter(([file, imports]) => partOf(file) !== 'eval' && imports.some((t) => partOf(t) === 'eval'));
    expect(importers.map(([file]) => file)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('the checks see what they look for: an HTTP import in the pool, a circle of two engine files', () => {
    expect(violations(new Map([['pool/pool.ts', ['http/errors.ts', 'tasks.ts']]]))).toEqual(['pool/pool.ts -> http/errors.ts']);
    expect(cycles(new Map([['engine/engine.ts', ['engine/onnx/engine.ts']], ['engine/onnx/engine.ts', ['engine/engine.ts']]]))).toEqual([
      'engine/engine.ts -> engine/onnx/engine.ts -> engine/engine.ts',
    ]);
  });
});
