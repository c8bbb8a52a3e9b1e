// Run by test/variant-memory.test.ts in a process of its own, with npm start's allocator
// settings: a segmentation model loaded as a worker loads it, every setting run once, then the
// variant cache emptied. Prints the resident memory at each step as one JSON line.
import { readFileSync } from 'node:fs';
import { findEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { OUTPUT_STRIDES } from '../src/model/mobilenet-v2.js';
import { STRATEGIES } from '../src/model/deeplab.js';
import { loadModel } from '../src/worker/load.js';
import { variantCache, type SegmentationRunner } from '../src/worker/segmentation-runner.js';
import { IMAGES_DIR, MODEL_DIR } from './helpers.js';

const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});
const residentMb = () => { collect(); return rssNow(); };
const rssNow = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const [name, budgetMb] = process.argv.slice(2) as [string, string];
const entry = findEntry(name, 'segmentation');
const variants = variantCache(Number(budgetMb) * 2 ** 20);
const model = await loadModel(entry, { modelDir: MODEL_DIR, models: [name], engine: 'onnx', threads: 1, variantBudgetBytes: variants.budgetBytes }, variants);
const runner = model.runners[0] as SegmentationRunner;
const { pixels: decoded } = await decodeImage(readFileSync(`${IMAGES_DIR}pets.jpg`), entry.build().input.shape[1]!, { maxPixels: 5e7, minSide: 1 });
const pixels = { kind: 'pixels', pixels: decoded } as const;
const own = { task: 'segmentation', outputStride: entry.outputStride, strategy: 'single' } as const;
for (let i = 0; i < 3; i++) await runner.run(own, pixels);
const loaded = residentMb();
for (const outputStride of OUTPUT_STRIDES) for (const strategy of STRATEGIES) await runner.run({ task: 'segmentation', outputStride, strategy }, pixels);
const swept = residentMb();
const held = { count: variants.size, bytes: variants.bytes };
await variants.clear();
// The model's own setting keeps serving afterwards.
await runner.run(own, pixels);
console.log(JSON.stringify({ loaded, swept, cleared: residentMb(), held }));
await model.dispose();
