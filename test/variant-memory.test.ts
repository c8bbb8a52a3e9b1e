// Segmentation settings other than a model's own (another output stride, multi-scale) each need
// engines of their own. They are kept in a cache bounded by VARIANT_MEMORY_MB and released when
// evicted, so requests cannot make a process hold memory for good. Measured as the operating
// system sees it (resident set size), on the process as npm start runs it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CATALOG, type SegmenterEntry } from '../src/catalog/catalog.js';
import { costOf } from '../src/model/cost.js';
import { MF_SCALES, STRATEGIES } from '../src/model/deeplab.js';
import { OUTPUT_STRIDES } from '../src/model/mobilenet-v2.js';
import { photo } from './helpers.js';
import { startScriptEnv, startServer } from './server-process.js';

const MIB = 2 ** 20;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const residentMib = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Default segmentation models, and every graph a request may make them build besides their own. */
const SEGMENTERS = CATALOG.filter((e): e is SegmenterEntry => e.task === 'segmentation' && e.loadByDefault !== false);
const otherSettings = (entry: SegmenterEntry) => OUTPUT_STRIDES.flatMap((outputStride) => [
  ...(outputStride === entry.outputStride ? [] : [entry.variant({ outputStride, scale: 1, output: 'classes' })]),
  ...MF_SCALES.map((scale) => entry.variant({ outputStride, scale, output: 'probabilities' })),
]);
/** The float32 parameters of all of them: what the cache would hold per worker without a bound. */
const unboundedMib = SEGMENTERS.reduce((sum, e) => sum + otherSettings(e).reduce((s, v) => s + 4 * costOf(v.graph).params, 0), 0) / MIB;

describe('engines of other segmentation settings (VARIANT_MEMORY_MB)', () => {
  it('give their memory back when released: resident memory drops back when the cache is emptied', () => {
    // One process, as a worker loads the full-width 513 model, every setting run once.
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/variant-memory-child.ts', 'deeplabv3_mobilenet_v2_1.0_513', '1000'], {
      cwd: ROOT,
      env: { ...process.env, ...startScriptEnv() },
      encoding: 'utf8',
    });
    const { loaded, swept, cleared, held } = JSON.parse(out.trim().split('\n').at(-1)!) as { loaded: number; swept: number; cleared: number; held: { count: number; bytes: number } };
    console.info(`variant engines: ${held.count} held (${(held.bytes / MIB).toFixed(0)} MiB of parameters); RSS ${loaded.toFixed(0)} MiB loaded, ${swept.toFixed(0)} after every setting, ${cleared.toFixed(0)} after the cache was emptied`);
    // 3 output strides x (6 MF scales + the classes graph) - the model's own setting.
    expect(held.count).toBe(20);
    // Not vacuous: the cached engines take at least their parameters' size.
    expect(swept - loaded).toBeGreaterThan(held.bytes / MIB);
    expect(cleared - loaded).toBeLessThan(0.3 * (swept - loaded));
  });

  it('stay within the budget when every setting runs once per worker, while unbounded they would not', async () => {
    const workers = 2;
    const growth: Record<number, number> = {};
    // 0: nothing kept, which measures what running the settings leaves behind without any cache.
    for (const budgetMib of [0, 200]) {
      const server = await startServer({ MODELS: SEGMENTERS.map((e) => e.name).join(','), POOL_SIZE: String(workers), VARIANT_MEMORY_MB: String(budgetMib), MAX_REQUEST_TIMEOUT_MS: '120000' });
      try {
        const segment = (query: string) => Promise.all(Array.from({ length: workers }, async () => {
          const response = await fetch(`${server.base}/v1/segment?${query}`, { method: 'POST', body: new Uint8Array(photo('pets.jpg')), headers: { 'x-request-timeout-ms': '120000' } });
          expect(response.status, query).toBe(200);
          await response.arrayBuffer();
        }));
        const heldMib = async () => Number(/^vision_segmentation_variant_bytes (\S+)$/m.exec(await (await fetch(`${server.base}/metrics`)).text())![1]) / MIB;
        for (const entry of SEGMENTERS) await segment(`model=${entry.name}`);
        const before = residentMib(server.child.pid!);
        let mostHeld = 0;
        for (const entry of SEGMENTERS) {
          for (const outputStride of OUTPUT_STRIDES) {
            for (const strategy of STRATEGIES) {
              await segment(`model=${entry.name}&outputStride=${outputStride}&strategy=${strategy}`);
              const held = await heldMib();
              expect(held, `${entry.name} ${outputStride}/${strategy}`).toBeLessThanOrEqual(budgetMib);
              mostHeld = Math.max(mostHeld, held);
            }
          }
        }
        growth[budgetMib] = residentMib(server.child.pid!) - before;
        console.info(`VARIANT_MEMORY_MB=${budgetMib}: RSS grew ${growth[budgetMib]!.toFixed(0)} MiB over the sweep; the cache held at most ${mostHeld.toFixed(0)} MiB (unbounded: ${(workers * unboundedMib).toFixed(0)} MiB)`);
        // The bound was reached: the sweep needed more than it allowed, so engines were evicted.
        if (budgetMib > 0) expect(mostHeld).toBeGreaterThan(0.8 * budgetMib);
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    }
    expect(workers * unboundedMib).toBeGreaterThan(2 * 200);
    // What the cache holds costs at most 1.5 times its parameters in resident memory.
    expect(growth[200]! - growth[0]!).toBeLessThan(1.5 * 200);
  }, 240_000);
});
