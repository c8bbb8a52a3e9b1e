// TypeScript clients generated from openapi.yaml by two generators: openapi-typescript (types
// for openapi-fetch) and @hey-api/openapi-ts (a fetch client with SDK functions). Each must
// type-check with the project's compiler, refuse calls the document does not allow, and reach
// every documented route of a real server over HTTP on 127.0.0.1, errors included.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { photo } from './helpers.js';
import type { Outcome } from './client/outcome.js';
import { startServer, type ServerProcess } from './server-process.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const CODEGEN = join(ROOT, 'tools/openapi-codegen');

interface GeneratedClient {
  generator: string;
  /** Holds calls.ts and tsconfig.json; the client is generated into its `generated/`. */
  dir: string;
  generate(out: string): Promise<unknown>;
  /** A generated file and what it must contain. */
  marker: [file: string, content: RegExp];
  /** Three calls the document forbids: a string topk, GET on a POST route, an undocumented format. */
  misuse: string[];
}

const CLIENTS: GeneratedClient[] = [
  {
    generator: 'openapi-typescript, for openapi-fetch',
    dir: join(ROOT, 'test/client'),
    generate: (out) => run(process.execPath, [join(CODEGEN, 'generate.mjs'), 'openapi.yaml', join(out, 'openapi.ts')], { cwd: ROOT }),
    marker: ['openapi.ts', /"\/v1\/classify": \{/],
    misuse: [
      "import createClient from 'openapi-fetch';",
      "import type { paths } from './openapi.js';",
      "const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:1' });",
      "void client.POST('/v1/classify', { params: { query: { topk: 'five' } }, body: new Blob(), bodySerializer: (b) => b as BodyInit });",
      "void client.GET('/v1/classify');",
      "void client.POST('/v1/detect', { params: { query: { format: 'svg' } }, body: new Blob(), bodySerializer: (b) => b as BodyInit });",
    ],
  },
  {
    generator: '@hey-api/openapi-ts',
    dir: join(ROOT, 'test/hey-api'),
    generate: (out) => run(process.execPath, [join(CODEGEN, 'hey-api.mjs'), 'openapi.yaml', out], { cwd: ROOT }),
    marker: ['sdk.gen.ts', /export const v2Infer = /],
    misuse: [
      "import * as api from './sdk.gen.js';",
      "const image = { image: new Blob() };",
      '',
      "void api.classify({ query: { topk: 'five' }, body: image });",
      "void api.v2Infer({ path: { name: 'm' }, body: { inputs: 'none' } });",
      "void api.detect({ query: { format: 'svg' }, body: image });",
    ],
  },
];

async function typecheck(dir: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], { cwd: ROOT });
    return { ok: true, output: stdout };
  } catch (err) {
    const { stdout, stderr } = err as { stdout: string; stderr: string };
    return { ok: false, output: `${stdout}${stderr}` };
  }
}

const ADMIN_TOKEN = 'client-test';
let server: ServerProcess | undefined;
const serverReady = () => (server ? Promise.resolve(server) : startServer({ MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco,deeplabv3_mobilenet_v2_0.5_257', POOL_SIZE: '1', ADMIN_TOKEN }).then((s) => (server = s)));

afterAll(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
});

describe.each(CLIENTS)('a TypeScript client generated from openapi.yaml by $generator', ({ dir, generate, marker, misuse }) => {
  const generated = join(dir, 'generated');

  beforeAll(async () => {
    rmSync(generated, { recursive: true, force: true });
    mkdirSync(generated, { recursive: true });
    await generate(generated);
  });

  it('type-checks together with the calls made through it', async () => {
    expect(readFileSync(join(generated, marker[0]), 'utf8')).toMatch(marker[1]);
    const { ok, output } = await typecheck(dir);
    expect(output).toBe('');
    expect(ok).toBe(true);
  });

  it('refuses, at compile time, calls the document does not allow', async () => {
    const file = join(generated, 'misuse.ts');
    writeFileSync(file, `${misuse.join('\n')}\n`);
    try {
      const { ok, output } = await typecheck(dir);
      expect(ok).toBe(false);
      for (const line of [4, 5, 6]) expect(output, `line ${line}`).toMatch(new RegExp(`misuse\\.ts\\(${line},`));
      expect(output).not.toMatch(/calls\.ts/);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('calls every documented route of a running server, errors included', async () => {
    const { base } = await serverReady();
    // Imported by path: the root type-check leaves the client folders out until the clients exist.
    const { callEveryRoute } = (await import(pathToFileURL(join(dir, 'calls.ts')).href)) as { callEveryRoute: (base: string, photos: Record<string, Blob>, adminToken: string) => Promise<Outcome> };
    const blob = (name: string) => new Blob([new Uint8Array(photo(name))]);
    const outcome = await callEveryRoute(base, {
      classify: blob('parrot.jpg'),
      detect: blob('pets.jpg'),
      segment: blob('pets.jpg'),
      notAnImage: new Blob(['plain text, not an image']),
    }, 'client-test');

    expect(outcome.topClass).toBe('macaw');
    expect(outcome.multipartTopClass).toBe('macaw');
    expect(outcome.detected).toContain('dog');
    expect(outcome.detectionPicture.type).toBe('image/png');
    expect(outcome.detectionPicture.bytes).toBeGreaterThan(10_000);
    expect(outcome.segmented).toContain('dog');
    expect(outcome.maskBytes).toBeGreaterThan(100);
    expect(outcome.embeddingDimensions).toBe(1280);
    expect(new Set(outcome.models.map((m) => m.task))).toEqual(new Set(['classification', 'detection', 'segmentation']));
    expect([outcome.health, outcome.ready]).toEqual(['ok', 'ready']);
    expect(outcome.metrics).toMatch(/^vision_multiply_adds_total\{/m);
    expect(outcome.v2).toEqual({
      health: [200, 200, 200, 200],
      extensions: ['binary_tensor_data', 'classification', 'model_repository'],
      inputs: ['input', 'image'],
      sameVersioned: true,
      topClasses: [expect.stringMatching(/:89:macaw$/), expect.stringMatching(/:89:macaw$/)],
    });
    expect(outcome.errors).toEqual([
      { status: 415, code: 'unsupported_media_type' },
      { status: 400, code: 'unknown_model' },
      { status: 400, code: 'unknown_model' },
      { status: 401, code: 'unauthorized' },
    ]);
    expect(outcome.readyModels.sort()).toEqual(['deeplabv3_mobilenet_v2_0.5_257', 'mobilenet_v2_1.0_224', 'ssdlite_mobilenet_v2_coco']);
    expect([outcome.reloaded, outcome.unloaded]).toEqual(['1', 'deeplabv3_mobilenet_v2_0.5_257']);

    // Every operation of the document went through the generated client.
    const doc = parse(readFileSync(join(ROOT, 'openapi.yaml'), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => ['get', 'post', 'put', 'delete', 'patch'].includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.length).toBeGreaterThanOrEqual(17);
    expect([...new Set(outcome.called)].sort()).toEqual(documented.sort());
  });
});
