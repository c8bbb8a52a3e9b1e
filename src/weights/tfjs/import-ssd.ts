// Maps the TF Object Detection API's SSD MobileNetV2 weights (as converted to a TensorFlow.js
// graph model) onto our graph, folding every batch norm into its convolution.
import type { Conv2dOp, Graph, Node } from '../../model/graph.js';

import { WeightImportError, type ImportedWeights } from '../tflite/import.js';
import { readTfjsGraphModel, type NamedTensor, type TfjsGraphModel } from './graph-model.js';

const FEATURE_EXTRACTOR = 'FeatureExtractor/MobilenetV2';

/** TF-slim scope of a backbone layer named the Keras way (block_3_expand -> expanded_conv_3/expand). */
export function slimScope(layer: string): string {
  if (layer === 'Conv1') return `${FEATURE_EXTRACTOR}/Conv`;
  if (layer === 'out_relu') return `${FEATURE_EXTRACTOR}/Conv_1`;
  const block = /^(?:expanded_conv|block_(\d+))_(expand|depthwise|project)$/.exec(layer);
  if (block) return `${FEATURE_EXTRACTOR}/expanded_conv${block[1] ? `_${block[1]}` : ''}/${block[2]}`;
  if (layer.startsWith('layer_19')) return `${FEATURE_EXTRACTOR}/${layer}`;
  return layer;
}

/** Per-channel scale and shift of a batch norm, however the converter left it. */
function batchNorm(model: TfjsGraphModel, scope: string): { scale?: Float32Array; shift: Float32Array } | undefined {
  const t = (suffix: string) => model.tensors.get(`${scope}/${suffix}`)?.values;
  const folded = t('BatchNorm/batchnorm/sub');
  if (folded) return { scale: t('BatchNorm/batchnorm/mul'), shift: folded };
  const [gamma, beta, mean, variance] = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((p) => t(`BatchNorm/${p}`));
  if (!gamma || !beta || !mean || !variance) return undefined;
  const epsilon = model.nodes.get(`${scope}/BatchNorm/FusedBatchNorm`)?.attr?.epsilon?.f;
  if (epsilon === undefined) throw new WeightImportError(`${scope}: batch norm without a FusedBatchNorm epsilon`);
  const scale = gamma.map((g, c) => g / Math.sqrt(variance[c]! + epsilon));
  return { scale, shift: beta.map((b, c) => b - mean[c]! * scale[c]!) };
}

function expectShape(tensor: NamedTensor, expected: readonly number[], layer: string): void {
  if (tensor.shape.join() !== expected.join()) {
    throw new WeightImportError(`layer ${layer} expects ${JSON.stringify(expected)} but tensor '${tensor.name}' is ${JSON.stringify(tensor.shape)}`);
  }
}

/** HWIO (or HW,C,1 for depthwise) filter to our OIHW, with a per-output-channel scale folded in. */
function toOIHW(node: Node<Conv2dOp>, filter: NamedTensor, scale: Float32Array | undefined): Float32Array {
  const [out, inPerGroup, kh, kw] = node.weight.shape as [number, number, number, number];
  const depthwise = node.groups > 1;
  expectShape(filter, depthwise ? [kh, kw, out, 1] : [kh, kw, inPerGroup, out], node.name);
  const result = new Float32Array(filter.values.length);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inPerGroup; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          const source = depthwise ? (y * kw + x) * out + o : ((y * kw + x) * inPerGroup + i) * out + o;
          result[((o * inPerGroup + i) * kh + y) * kw + x] = filter.values[source]! * (scale?.[o] ?? 1);
        }
      }
    }
  }
  return result;
}

export function importSsdWeights(graph: Graph, dir: string): ImportedWeights {
  const model = readTfjsGraphModel(dir);
  const used = new Set<string>();
  const take = (name: string) => {
    const tensor = model.tensors.get(name);
    if (tensor) used.add(name);
    return tensor;
  };
  const weights = new Map<string, Float32Array>();
  for (const node of graph.nodes) {
    if (node.kind !== 'conv2d') continue;
    const scope = slimScope(node.name);
    const filter = take(`${scope}/Conv2D/merged_input`) ?? take(`${scope}/weights`) ?? take(`${scope}/depthwise_weights`);
    if (!filter) throw new WeightImportError(`layer ${node.name}: no weights under '${scope}' in ${dir}`);
    const norm = batchNorm(model, scope);
    weights.set(node.weight.name, toOIHW(node, filter, norm?.scale));
    const biases = norm ? undefined : take(`${scope}/biases`);
    if (norm) for (const key of model.tensors.keys()) if (key.startsWith(`${scope}/BatchNorm/`)) used.add(key);
    const shift = norm?.shift ?? biases?.values;
    if (!shift) throw new WeightImportError(`layer ${node.name}: neither a batch norm nor biases under '${scope}'`);
    if (shift.length !== node.bias.shape[0]) {
      throw new WeightImportError(`layer ${node.name} expects ${node.bias.shape[0]} biases but '${biases?.name ?? `${scope}/BatchNorm`}' has ${shift.length}`);
    }
    weights.set(node.bias.name, Float32Array.from(shift));
  }
  // Every learned weight of the network must have found its layer (int32 constants are shapes).
  const unused = [...model.tensors.values()]
    .filter((t) => /^(FeatureExtractor|BoxPredictor_)/.test(t.name) && t.dtype === 'float32' && !used.has(t.name))
    .map((t) => t.name);
  if (unused.length) throw new WeightImportError(`weights with no layer in graph ${graph.name}: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', ...' : ''}`);

  // The graph's own preprocessing: value = mul * pixel - sub.
  const [mul, sub] = ['Preprocessor/mul/x', 'Preprocessor/sub/y'].map((n) => model.tensors.get(n)?.values[0]);
  if (mul === undefined || sub === undefined) throw new WeightImportError(`${dir}: no Preprocessor/mul/x and Preprocessor/sub/y constants`);
  return { weights, input: { scale: mul, zeroPoint: sub / mul } };
}

