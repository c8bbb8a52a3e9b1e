import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../src/config.js';

export const IMAGES_DIR = fileURLToPath(new URL('../../shared/images/', import.meta.url));
export const MODEL_DIR = fileURLToPath(new URL('../models/files/', import.meta.url));

export const photo = (name: string): Buffer => readFileSync(`${IMAGES_DIR}${name}`);
export const modelFile = (name: string): Buffer => readFileSync(`${MODEL_DIR}${name}`);

/** Deterministic random numbers (mulberry32), so a failing case can be replayed. */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Service configuration for tests: the real defaults, narrowed to what a test needs. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ MODEL_DIR, ENGINE_THREADS: '1', ...env });
}

/** A multipart/form-data body built by hand, so tests control every byte. */
export function multipart(parts: { name: string; filename?: string; type?: string; data: Buffer | string }[]) {
  const boundary = `----test${Date.now().toString(16)}`;
  const chunks = parts.flatMap(({ name, filename, type, data }) => [
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n` +
        `${type ? `Content-Type: ${type}\r\n` : ''}\r\n`,
    ),
    Buffer.isBuffer(data) ? data : Buffer.from(data),
    Buffer.from('\r\n'),
  ]);
  return {
    payload: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}
