// The demo page (/) and the API docs (/docs) in headless Chromium (Debian's, driven by
// playwright-core): one photo through classify, detect and segment, checking the labels, that
// boxes and the mask are drawn on the picture, and the latency and multiply-adds shown.
// Screenshots go to test-results/.
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGES_DIR, photo } from './helpers.js';
import { startServer, type ServerProcess } from './server-process.js';
import { requireTools } from './tools.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const tools = requireTools([CHROMIUM], 'apt-get install chromium');
const RESULTS = fileURLToPath(new URL('../test-results/', import.meta.url));
// Without the background-networking flags Chromium tries to reach Google's services at start.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PHOTO = 'pets.jpg';

interface ModelInfo {
  name: string;
  task: string;
  multiplyAdds: number;
}

describe.skipIf(tools.skip)('the demo page and the API docs in Chromium', () => {
  let server: ServerProcess;
  let profile: string;
  let browser: Browser | BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const foreignRequests: string[] = [];

  beforeAll(async () => {
    server = await startServer({ MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco,deeplabv3_mobilenet_v2_0.5_257', POOL_SIZE: '1' });
    profile = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
    // A fresh profile directory each run.
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 860 } });
    page = await browser.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    // Failed loads are reported with their URL below rather than as Chromium's console line.
    page.on('console', (msg) => msg.type() === 'error' && !msg.text().startsWith('Failed to load resource') && problems.push(`console: ${msg.text()}`));
    page.on('response', (response) => response.status() >= 400 && !response.url().includes('/v1/') && problems.push(`${response.status()} ${response.url()}`));
    page.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith(server.base) && !/^(data|blob):/.test(url)) foreignRequests.push(url);
    });
    mkdirSync(RESULTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    server?.child.kill('SIGTERM');
    await server?.exited;
  });

  /** Pixels of the result canvas that differ from the photo drawn alone: what the page drew on it. */
  const drawnPixels = () =>
    page.evaluate(async () => {
      const canvas = document.querySelector<HTMLCanvasElement>('#canvas')!;
      const file = document.querySelector<HTMLInputElement>('#photo')!.files![0]!;
      const plain = new OffscreenCanvas(canvas.width, canvas.height).getContext('2d')!;
      plain.drawImage(await createImageBitmap(file), 0, 0);
      const a = plain.getImageData(0, 0, canvas.width, canvas.height).data;
      const b = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let differing = 0;
      for (let i = 0; i < a.length; i += 4) if (Math.abs(a[i]! - b[i]!) + Math.abs(a[i + 1]! - b[i + 1]!) + Math.abs(a[i + 2]! - b[i + 2]!) > 30) differing++;
      return { differing, total: a.length / 4 };
    });

  async function runTask(task: string): Promise<{ results: string[]; macs: string; latency: string; server: string }> {
    await page.check(`input[name=task][value=${task}]`);
    await page.waitForFunction(() => document.querySelector<HTMLSelectElement>('#model')!.options.length > 0 && !document.querySelector<HTMLButtonElement>('#run')!.disabled);
    await page.evaluate(() => delete document.body.dataset.done);
    await page.click('#run');
    await page.waitForFunction((t) => document.body.dataset.done === t || document.querySelector('#status')!.classList.contains('error'), task, { timeout: 30_000 });
    const status = await page.textContent('#status');
    expect(await page.locator('#status.error').count(), `status: ${status}`).toBe(0);
    await page.screenshot({ path: join(RESULTS, `demo-${task}.png`), fullPage: true });
    return {
      results: await page.locator('#results li').allTextContents(),
      macs: (await page.textContent('#macs'))!,
      latency: (await page.textContent('#latency'))!,
      server: (await page.textContent('#server-time'))!,
    };
  }

  it('classifies, detects and segments a photo picked in the page, drawing the results and their cost', async () => {
    const models = ((await (await fetch(`${server.base}/v1/models`)).json()) as { models: ModelInfo[] }).models;
    const macsOf = (task: string) => models.find((m) => m.task === task)!.multiplyAdds;
    await page.goto(`${server.base}/`);
    await page.setInputFiles('#photo', join(IMAGES_DIR, PHOTO));

    const classified = await runTask('classification');
    // The page shows what the API answers for the same photo.
    const direct = (await (await fetch(`${server.base}/v1/classify?topk=5`, { method: 'POST', body: new Uint8Array(photo(PHOTO)) })).json()) as { predictions: { label: string }[] };
    expect(classified.results).toHaveLength(5);
    expect(classified.results[0]).toContain(direct.predictions[0]!.label);
    expect(classified.macs).toBe(`${(macsOf('classification') / 1e6).toFixed(2)} M`);
    expect(classified.latency).toMatch(/^\d+\.\d ms$/);
    expect(classified.server).toMatch(/^\d+\.\d ms \(decode \d+\.\d ms, queue \d+\.\d ms, inference \d+\.\d ms\)$/);
    expect((await drawnPixels()).differing).toBe(0);

    const detected = await runTask('detection');
    expect(detected.results.length).toBeGreaterThanOrEqual(2);
    expect(detected.results.filter((r) => r.startsWith('dog ')).length).toBeGreaterThanOrEqual(2);
    expect(detected.macs).toBe(`${(macsOf('detection') / 1e6).toFixed(2)} M`);
    // Two box outlines and their label tags: a small part of the picture, but not nothing.
    const boxes = await drawnPixels();
    expect(boxes.differing).toBeGreaterThan(1000);
    expect(boxes.differing).toBeLessThan(boxes.total * 0.2);

    const segmented = await runTask('segmentation');
    expect(segmented.results.map((r) => r.split(' ')[0])).toContain('dog');
    expect(segmented.macs).toMatch(/^\d+\.\d\d [MG]$/);
    // The dogs' pixels are tinted: far more of the picture than the box outlines.
    const mask = await drawnPixels();
    expect(mask.differing).toBeGreaterThan(mask.total * 0.1);

    expect(problems).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });

  it('serves the API docs at /docs from openapi.yaml, with nothing fetched from elsewhere', async () => {
    await page.goto(`${server.base}/docs`);
    await page.waitForSelector('.opblock-summary-path', { timeout: 30_000 });
    const paths = await page.locator('.opblock-summary-path').allTextContents();
    for (const path of ['/v1/classify', '/v1/detect', '/v1/segment', '/v1/models', '/healthz', '/readyz', '/metrics']) {
      expect(paths.map((p) => p.replace(/\u200b/g, ''))).toContain(path);
    }
    expect(await page.textContent('.info .title')).toContain('MobileNetV2 serving');
    await page.screenshot({ path: join(RESULTS, 'docs.png') });
    expect(problems).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
