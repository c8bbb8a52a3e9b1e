// The process entry as `npm start` runs it: listens, becomes ready, exits 0 on SIGTERM.
import { describe, expect, it } from 'vitest';
import { photo } from './helpers.js';
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
