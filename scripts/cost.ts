// Cost of MobileNetV2 variants, from the graph description.
//   npm run cost -- --alpha 1.0 --resolution 224 [--classes 1001] [--layers]
//   npm run cost -- --table        all 22 released width/resolution combinations
import { parseArgs } from 'node:util';
import { costOf, type GraphCost } from '../src/model/cost.js';
import { mobileNetV2Classifier, STANDARD_RESOLUTIONS, WIDTH_MULTIPLIERS } from '../src/model/mobilenet-v2.js';
import { RELEASE_TABLE, releaseConventionParams } from '../src/model/release-table.js';

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
  const cost = costOf(mobileNetV2Classifier({ alpha, resolution, classes }));
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
    const cost = costOf(mobileNetV2Classifier({ alpha: row.alpha, resolution: row.resolution }));
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

const { values } = parseArgs({
  options: {
    alpha: { type: 'string', default: '1.0' },
    resolution: { type: 'string', default: '224' },
    classes: { type: 'string', default: '1001' },
    layers: { type: 'boolean', default: false },
    table: { type: 'boolean', default: false },
  },
});

try {
  if (values.table) printTable();
  else printOne(Number(values.alpha), Number(values.resolution), Number(values.classes), values.layers);
} catch (err) {
  console.error(`cost: ${(err as Error).message}`);
  console.error(`widths: ${WIDTH_MULTIPLIERS.join(', ')}; standard resolutions: ${STANDARD_RESOLUTIONS.join(', ')}`);
  process.exitCode = 2;
}
