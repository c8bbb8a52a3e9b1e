// A TypeScript client generated from openapi.yaml (openapi-typescript, for openapi-fetch): it must
// type-check with the project's compiler, refuse calls the document does not allow, and reach
// every documented route of a real server over HTTP on 127.0.0.1.
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
const CLIENT_DIR = join(ROOT, 'test/client');
const GENERATED = join(CLIENT_DIR, 'generated');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

async function typecheck(): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [TSC, '-p', join(CLIENT_DIR, 'tsconfig.json')], { cwd: ROOT });
    return { ok: true, output: stdout };
  } catch (err) {
    const { stdout, stderr } = err as { stdout: string; stderr: string };
    return { ok: false, output: `${stdout}${stderr}` };
  }
}

describe('a TypeScript client generated from openapi.yaml', () => {
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    rmSync(GENERATED, { recursive: true, force: true });
    mkdirSync(GENERATED, { recursive: true });
    await run(process.execPath, [join(ROOT, 'tools/openapi-codegen/generate.mjs'), 'openapi.yaml', join(GENERATED, 'openapi.ts')], { cwd: ROOT });
  });

  afterAll(async () => {
    server?.child.kill('SIGTERM');
    await server?.exited;
  });

  it('type-checks together with the calls made through it', async () => {
    const generated = readFileSync(join(GENERATED, 'openapi.ts'), 'utf8');
    expect(generated).toMatch(/"\/v1\/classify": \{/);
    const { ok, output } = await typecheck();
    expect(output).toBe('');
    expect(ok).toBe(true);
  });

  it('refuses, at compile time, calls the document does not allow', async () => {
    const misuse = join(GENERATED, 'misuse.ts');
    writeFileSync(
      misuse,
      [
        "import createClient from 'openapi-fetch';",
        "import type { paths } from './openapi.js';",
        "const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:1' });",
        "void client.POST('/v1/classify', { params: { query: { topk: 'five' } }, body: new Blob(), bodySerializer: (b) => b as BodyInit });",
        "void client.GET('/v1/classify');",
        "void client.POST('/v1/detect', { params: { query: { format: 'svg' } }, body: new Blob(), bodySerializer: (b) => b as BodyInit });",
        '',
      ].join('\n'),
    );
    try {
      const { ok, output } = await typecheck();
      expect(ok).toBe(false);
      for (const line of [4, 5, 6]) expect(output, `line ${line}`).toMatch(new RegExp(`misuse\\.ts\\(${line},`));
      expect(output).not.toMatch(/calls\.ts/);
    } finally {
      rmSync(misuse, { force: true });
    }
  });

  it('calls every documented route of a running server, errors included', async () => {
    server = await startServer({ MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco,deeplabv3_mobilenet_v2_0.5_257', POOL_SIZE: '1' });
    // Imported by path: the root type-check leaves test/client out until the client exists.
    const { callEveryRoute } = (await import(pathToFileURL(join(CLIENT_DIR, 'calls.ts')).href)) as { callEveryRoute: (base: string, photos: Record<string, Blob>) => Promise<Outcome> };
    const blob = (name: string) => new Blob([new Uint8Array(photo(name))]);
    const outcome = await callEveryRoute(server.base, {
      classify: blob('parrot.jpg'),
      detect: blob('pets.jpg'),
      segment: blob('pets.jpg'),
      notAnImage: new Blob(['plain text, not an image']),
    });

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
      extensions: ['binary_tensor_data', 'classification'],
      inputs: ['input', 'image'],
      sameVersioned: true,
      topClasses: [expect.stringMatching(/:89:macaw$/), expect.stringMatching(/:89:macaw$/)],
    });
    expect(outcome.errors).toEqual([
      { status: 415, code: 'unsupported_media_type' },
      { status: 400, code: 'unknown_model' },
      { status: 400, code: 'unknown_model' },
    ]);

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
