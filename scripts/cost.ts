// Cost of MobileNetV2 variants, from the graph description.
//   npm run cost -- --alpha 1.0 --resolution 224 [--classes 1001] [--layers]
//   npm run cost -- --table        all 22 released width/resolution combinations
//   npm run cost -- --detection    SSD and SSDLite on MobileNetV2, whole and prediction layers
//   npm run cost -- --segmentation DeepLabv3 on MobileNetV2 next to the paper's table
//   npm run cost -- --memory [--split 1,2,4,6] [--alpha --resolution]  memory per resolution,
//                                  plain and split schedules, next to the paper's Table 3
//   npm run cost -- --repository [dir]  every model of a repository (default: the built-in one)
//                                  with the architecture read from its weights, head included
import { parseArgs } from 'node:util';
import { costOf, type GraphCost } from '../src/model/cost.js';
import { mobileNetV2Classifier, STANDARD_RESOLUTIONS, WIDTH_MULTIPLIERS } from '../src/model/mobilenet-v2.js';
import { RELEASE_TABLE, releaseConventionParams } from '../src/model/release-table.js';
import { ssdMobileNetV2 } from '../src/model/ssdlite.js';
import { PAPER_RESOLUTION, segmentationCostTable } from '../src/model/deeplab-table.js';
import { memoryTable } from '../src/model/memory-table.js';
import { DEFAULT_MODEL_DIR, DEFAULT_REPOSITORY, indexRepository } from '../src/catalog/catalog.js';

const CONVENTION = `Convention: batch norm folded into each convolution (weight + one bias per output channel),
1001 classes (index 0 = background) unless --classes says otherwise, multiply-adds of convolutions
only (element-wise adds, pooling and softmax are not counted), activation memory as float32.
The official release table counts conv weights plus the classifier's bias only (batch norm not
counted): 'release params' uses that convention and matches the table to its last digit; the
table truncates multiply-adds to whole millions.`;

const formatAlpha = (alpha: number) => (Number.isInteger(alpha) ? alpha.toFixed(1) : String(alpha));
const millions = (n: number, digits = 2) => (n / 1e6).toFixed(digits);
const kib = (bytes: number) => `${Math.round(bytes / 1024)} KiB`;

function printLayers(cost: GraphCost): void {
  console.log(['layer'.padEnd(26), 'output [c,h,w]'.padEnd(16), 'params'.padStart(10), 'MACs'.padStart(13), 'output'.padStart(10)].join(' '));
  for (const l of cost.layers) {
    console.log([l.name.padEnd(26), JSON.stringify(l.shape).padEnd(16), String(l.params).padStart(10), String(l.multiplyAdds).padStart(13), kib(l.outputBytes).padStart(10)].join(' '));
  }
}

function printOne(alpha: number, resolution: number, classes: number, layers: boolean): void {
  const cost = costOf(mobileNetV2Classifier({ alpha, resolution, classes }).graph);
  if (layers) printLayers(cost);
  console.log(`MobileNetV2 ${formatAlpha(alpha)}/${resolution}, ${classes} classes`);
  console.log(`  multiply-adds      ${cost.multiplyAdds} (${millions(cost.multiplyAdds, 1)}M)`);
  console.log(`  params (BN folded) ${cost.params} (${millions(cost.params, 3)}M, of which ${cost.biases} biases)`);
  console.log(`  release params     ${releaseConventionParams(cost, classes)} (${millions(releaseConventionParams(cost, classes), 3)}M)`);
  console.log(`  peak activations   ${kib(cost.peakActivationBytes)} (float32, layers run in graph order)`);
  console.log(`\n${CONVENTION}`);
}

function printTable(): void {
  console.log(['model'.padEnd(22), 'MACs (M)'.padStart(9), 'release'.padStart(8), 'params (M)'.padStart(11), 'release'.padStart(8), 'folded (M)'.padStart(11), 'peak act.'.padStart(10)].join(' '));
  for (const row of RELEASE_TABLE) {
    const cost = costOf(mobileNetV2Classifier({ alpha: row.alpha, resolution: row.resolution }).graph);
    console.log([
      `mobilenet_v2_${formatAlpha(row.alpha)}_${row.resolution}`.padEnd(22),
      millions(cost.multiplyAdds, 1).padStart(9),
      String(row.multiplyAddsM).padStart(8),
      millions(releaseConventionParams(cost, 1001), 3).padStart(11),
      row.paramsM.toFixed(2).padStart(8),
      millions(cost.params, 3).padStart(11),
      kib(cost.peakActivationBytes).padStart(10),
    ].join(' '));
  }
  console.log(`\n${CONVENTION}`);
}

/** The paper's Table 5 and section 6.2 figures, in millions. */
const PAPER_DETECTION = {
  regular: { headParams: 14.8, headMultiplyAdds: 1250 },
  separable: { params: 4.3, multiplyAdds: 800, headParams: 2.1, headMultiplyAdds: 350 },
} as const;

function printDetection(): void {
  console.log(['network'.padEnd(9), 'input'.padEnd(6), 'logits'.padStart(6), 'params (M)'.padStart(11), 'MACs (M)'.padStart(9), 'pred. params (M)'.padStart(17), 'pred. MACs (M)'.padStart(15)].join(' '));
  for (const predictor of ['separable', 'regular'] as const) {
    for (const [resolution, classes] of [[300, 91], [320, 81]] as const) {
      const ssd = ssdMobileNetV2({ alpha: 1, resolution, classes, predictor });
      const cost = costOf(ssd.graph);
      const predictionLayers = new Set(ssd.predictionLayers);
      const head = cost.layers.filter((l) => predictionLayers.has(l.name));
      const sum = (key: 'params' | 'multiplyAdds') => head.reduce((total, l) => total + l[key], 0);
      console.log([
        (predictor === 'separable' ? 'SSDLite' : 'SSD').padEnd(9),
        String(resolution).padEnd(6),
        String(classes).padStart(6),
        millions(cost.params, 3).padStart(11),
        millions(cost.multiplyAdds, 1).padStart(9),
        millions(sum('params'), 3).padStart(17),
        millions(sum('multiplyAdds'), 1).padStart(15),
      ].join(' '));
    }
  }
  const { regular, separable } = PAPER_DETECTION;
  console.log(`
paper (320x320, 80 classes + background): SSDLite ${separable.params}M params, ${separable.multiplyAdds}M MACs;` +
    ` prediction layers SSD ${regular.headParams}M / ${regular.headMultiplyAdds}M, SSDLite ${separable.headParams}M / ${separable.headMultiplyAdds}M`);
  console.log('The served model is the 300x300 row with 91 logits (90 COCO ids + background). Batch norm folded;');
  console.log('multiply-adds of convolutions only. docs/cost-model.md explains each difference from the paper.');
}

function printSegmentation(): void {
  const billions = (n: number) => (n / 1e9).toFixed(n < 1e10 ? 3 : 1);
  console.log(['DeepLabv3, width 1.0'.padEnd(21), 'params (M)'.padStart(10), 'TF conv.'.padStart(8), 'paper'.padStart(6), 'MACs (B) 512'.padStart(12), '513'.padStart(7), '513 TF'.padStart(7), 'paper'.padStart(6)].join(' '));
  for (const row of segmentationCostTable()) {
    console.log([
      `OS ${row.outputStride} ${row.head === 'aspp' ? 'ASPP' : 'lite'} ${row.strategy === 'mf' ? 'MF' : 'single'}`.padEnd(21),
      millions(row.params, 3).padStart(10),
      millions(row.trainableParams, 3).padStart(8),
      (row.paper ? row.paper.paramsM.toFixed(2) : '').padStart(6),
      billions(row.multiplyAdds512).padStart(12),
      billions(row.multiplyAdds513).padStart(7),
      billions(row.spaceToBatchMultiplyAdds513).padStart(7),
      (row.paper ? String(row.paper.multiplyAddsB) : '').padStart(6),
    ].join(' '));
  }
  console.log(`
Heads on the last bottleneck (320 channels), 21 classes. 'params' is ours (batch norm folded), 'TF conv.'
TensorFlow's trainable variables (batch norm's gamma and beta, the logits' bias). MACs: ours at 512 and at
${PAPER_RESOLUTION}; '${PAPER_RESOLUTION} TF' counts each atrous convolution as TensorFlow runs it (SpaceToBatchND pads the
map to a multiple of the rate). MF: six scales, each also mirrored. docs/cost-model.md explains each difference.`);
}

function printMemory(alpha: number, resolution: number, splits: number[]): void {
  const table = memoryTable(alpha, resolution, splits);
  const k = (bytes: number) => `${(bytes / 1000).toFixed(1)}K`;
  console.log(`MobileNetV2 ${formatAlpha(alpha)}/${resolution}: activation memory per resolution, 16-bit floats, K = 1000 bytes`);
  console.log(['side'.padStart(4), 'paper'.padStart(12), 'ch x side² x 2B'.padStart(16), 'largest bottleneck tensor here'.padEnd(38), ...splits.map((s) => (s === 1 ? 'live, plain' : `live, split ${s}`).padStart(13))].join('  '));
  for (const row of table.rows) {
    console.log([
      String(row.side).padStart(4),
      (row.paper ? `${row.paper.channels} / ${row.paper.kilobytes}K` : '-').padStart(12),
      (row.paper ? k(row.paper.channels * row.side * row.side * 2) : '-').padStart(16),
      (row.bottleneck ? `${row.bottleneck.channels} ch ${k(row.bottleneck.bytes)} (${row.bottleneck.name})` : '-').padEnd(38),
      ...row.live.map((l) => k(l.bytes).padStart(13)),
    ].join('  '));
  }
  console.log(['peak'.padStart(4), ''.padStart(12), ''.padStart(16), ''.padEnd(38), ...table.peaks.map((p) => k(p).padStart(13))].join('  '));
  console.log(`
paper: Table 3 lists channels / memory; its figures are those channels x side² x 2 bytes / 1000 (the
  ch x side² x 2B column), one tensor per resolution. At 56, 28 and 14 it lists the output width of
  the stride-2 row that starts there (32, 64, 160), whose tensor lives at half that side; our graph
  has 24, 32 and 96 channels there. 112 and 7 agree (16, 320); it leaves out the 3-channel input
  and the last 1x1 conv (1280 channels at 7x7), and counts the first layer as split (its remark).
live: bytes alive while a layer of that output side runs, layers one at a time in graph order
  (inputs still read later, the output, partial sums); split k computes every inverted-residual
  block, the first layer included, as k slices of its expanded channels (src/model/split.ts).`);
}

function printRepository(repository: string, modelDir: string): void {
  console.log(['model'.padEnd(34), 'version'.padStart(7), 'format'.padEnd(11), 'alpha'.padStart(5), 'input'.padStart(5), 'classes'.padStart(7), 'head'.padEnd(16), 'params (M)'.padStart(10), 'MACs (M)'.padStart(9), 'peak act.'.padStart(10)].join(' '));
  for (const model of indexRepository(repository, modelDir)) {
    try {
      if (!model.entry) throw new Error(model.problem);
      const built = model.entry.build();
      const cost = costOf(built.graph);
      const head = 'head' in built ? built.head.map((t) => t.shape[0]).join('-') : '';
      console.log([
        model.name.padEnd(34), String(model.version).padStart(7), model.entry.format.padEnd(11), formatAlpha(model.entry.alpha).padStart(5),
        String(built.input.shape[1]).padStart(5), String('classes' in built ? built.classes : '').padStart(7), head.padEnd(16),
        millions(cost.params, 3).padStart(10), millions(cost.multiplyAdds, 1).padStart(9), kib(cost.peakActivationBytes).padStart(10),
      ].join(' '));
    } catch (err) {
      console.log(`${model.name.padEnd(34)} cannot be read: ${(err as Error).message}`);
    }
  }
  console.log(`\nClassifiers: width, input, head and classes read from the weights; head = the dense layers after the pool,\nthe class layer last (each in x out multiply-adds). Detection and segmentation: as their configs state.\n${CONVENTION}`);
}

const { values } = parseArgs({
  options: {
    alpha: { type: 'string', default: '1.0' },
    resolution: { type: 'string', default: '224' },
    classes: { type: 'string', default: '1001' },
    layers: { type: 'boolean', default: false },
    table: { type: 'boolean', default: false },
    detection: { type: 'boolean', default: false },
    segmentation: { type: 'boolean', default: false },
    memory: { type: 'boolean', default: false },
    split: { type: 'string', default: '1,2,4,6' },
    repository: { type: 'string' },
    'model-dir': { type: 'string', default: DEFAULT_MODEL_DIR },
  },
});

try {
  if (values.repository !== undefined) printRepository(values.repository || DEFAULT_REPOSITORY, values['model-dir']);
  else if (values.table) printTable();
  else if (values.detection) printDetection();
  else if (values.segmentation) printSegmentation();
  else if (values.memory) printMemory(Number(values.alpha), Number(values.resolution), values.split.split(',').map(Number));
  else printOne(Number(values.alpha), Number(values.resolution), Number(values.classes), values.layers);
} catch (err) {
  console.error(`cost: ${(err as Error).message}`);
  console.error(`widths: ${WIDTH_MULTIPLIERS.join(', ')}; standard resolutions: ${STANDARD_RESOLUTIONS.join(', ')}`);
  process.exitCode = 2;
}
