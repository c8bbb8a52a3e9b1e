// The process entry as `npm start` runs it: listens, becomes ready, exits 0 on SIGTERM.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MODEL_DIR, photo } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('server entry', () => {
  it('serves on PORT and HOST and shuts down cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS: 'mobilenet_v2_1.0_224', MODEL_DIR, ENGINE_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const address = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${log}`)));
    });
    const base = await address;
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      ready = (await fetch(`${base}/readyz`)).ok;
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(true);
    const response = await fetch(`${base}/v1/classify`, { method: 'POST', body: new Uint8Array(photo('hot_dog.jpg')) });
    expect(response.status).toBe(200);
    expect((await response.json()).predictions[0].label).toBe('hotdog, hot dog, red hot');

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(log).toContain('shutting down');
  });
});
