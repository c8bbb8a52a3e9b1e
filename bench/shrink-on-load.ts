// What shrink on load costs in accuracy and saves in decoding, on camera-sized photos: the ImageNet
// sample photos enlarged FACTOR times (lanczos3, JPEG q90), each decoded by the service's path and
// exactly (whole decode, central crop, TensorFlow's bilinear resize), both classified by
// mobilenet_v2_1.0_224 on ONNX Runtime. A report (docs/accuracy.md), not a test.
//
//   npx tsx bench/shrink-on-load.ts [FACTOR=4]
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { loadEngine } from '../src/engine/load.js';
import { decodeImage, centralCrop, resizeBilinear } from '../src/decode/decode.js';
import type { ClassifierGraph } from '../src/model/mobilenet-v2.js';
import { normalize } from '../src/worker/normalize.js';
sharp.cache(false);
const entry = findEntry('mobilenet_v2_1.0_224');
const { model, imported: { weights, input } } = buildWithWeights(entry);
const engine = await loadEngine('onnx', model.graph, weights, { threads: 1 });
const probName = (model as ClassifierGraph).probabilities.name;
const E = new URL('../../shared/eval/imagenet/', import.meta.url).pathname;
const rows = readFileSync(E + 'labels.tsv', 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
const factor = Number(process.argv[2] ?? 4);
// Above the service's default limit: an 8x photo is 12800 x 9600 at most.
const LIMITS = { maxPixels: 200e6, minSide: 1 };
let okA = 0, okB = 0, agree = 0, cpuA = 0, cpuB = 0, n = 0, meanDiff = 0;
// Index of the most probable class: the 1001-class files count background as 0.
const top = (p: Float32Array) => p.reduce((bi, v, i, a) => (v > a[bi]! ? i : bi), 0);
for (const [file, , idx1001] of rows) {
  const src = readFileSync(E + file);
  const m = await sharp(src).metadata();
  const big = await sharp(src).resize(Math.round(m.width! * factor), Math.round(m.height! * factor), { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  let c = process.cpuUsage();
  const a = await decodeImage(big, 224, LIMITS, entry.preprocess);
  let d = process.cpuUsage(c); cpuA += (d.user + d.system) / 1000;
  c = process.cpuUsage();
  const { data, info } = await sharp(big, { ignoreIcc: true }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const view = centralCrop(info.width, info.height, 0.875);
  const b = resizeBilinear(new Uint8Array(data.buffer, data.byteOffset, data.length), 3 * info.width, view, 224);
  d = process.cpuUsage(c); cpuB += (d.user + d.system) / 1000;
  let diff = 0; for (let i = 0; i < b.length; i++) diff += Math.abs(a.pixels[i]! - b[i]!); meanDiff += diff / b.length;
  const pa = (await engine.run({ data: normalize(a.pixels, input), batch: 1 })).get(probName)!;
  const ta = top(pa);
  const pb = (await engine.run({ data: normalize(b, input), batch: 1 })).get(probName)!;
  const tb = top(pb);
  n++; if (ta === Number(idx1001)) okA++; if (tb === Number(idx1001)) okB++; if (ta === tb) agree++;
}
console.log(`x${factor}: ${n} photos; top-1 shrink-on-load ${(100 * okA / n).toFixed(1)}, exact ${(100 * okB / n).toFixed(1)}, same top class ${agree}; decode CPU ms/photo ${(cpuA / n).toFixed(1)} vs ${(cpuB / n).toFixed(1)}; mean |diff| ${(meanDiff / n).toFixed(2)} grey levels`);
