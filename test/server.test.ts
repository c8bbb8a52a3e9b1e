// The process entry as `npm start` runs it: listens, becomes ready, exits 0 on SIGTERM.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MODEL_DIR, photo } from './helpers.js';
import { until } from './http-client.js';
import { startServer } from './server-process.js';

describe('server entry', () => {
  it('serves on PORT and HOST and shuts down cleanly on SIGTERM', async () => {
    const { child, base, log, exited } = await startServer();
    const response = await fetch(`${base}/v1/classify`, { method: 'POST', body: new Uint8Array(photo('hot_dog.jpg')) });
    expect(response.status).toBe(200);
    expect((await response.json()).predictions[0].label).toBe('hotdog, hot dog, red hot');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(log()).toContain('shutting down');
  });
});

describe('npm start', () => {
  it('runs the server itself: SIGTERM to npm drains and stops it, leaving no process behind', async () => {
    const child = spawn('npm', ['start', '--silent'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS: 'mobilenet_v2_1.0_224', POOL_SIZE: '1', MODEL_DIR },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await until(() => /models loaded; ready/.test(log), 60_000, 'ready');
    const pid = Number(/"pid":(\d+)/.exec(log)![1]);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until(() => !alive(pid), 10_000, 'the server process to end');
    expect(log).toMatch(/"signal":"SIGTERM"/);
  });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
