// Maps the TF Object Detection API's SSD MobileNetV2 weights (as converted to a TensorFlow.js
// graph model) onto our graph, folding every batch norm into its convolution.
import type { Graph } from '../../model/graph.js';
import { filterShape, slimBackboneScope, tensorflowLayout, toOIHW, WeightImportError, type ImportedWeights } from '../common.js';
import { readTfjsGraphModel, type NamedTensor, type TfjsGraphModel } from './graph-model.js';

const FEATURE_EXTRACTOR = 'FeatureExtractor/MobilenetV2';

/** The Object Detection API's scope of a layer: the backbone and its extra layers under the feature extractor, the predictors as named. */
function detectorScope(layer: string): string {
  return slimBackboneScope(layer, FEATURE_EXTRACTOR) ?? (layer.startsWith('layer_19') ? `${FEATURE_EXTRACTOR}/${layer}` : layer);
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
    const scope = detectorScope(node.name);
    const filter = take(`${scope}/Conv2D/merged_input`) ?? take(`${scope}/weights`) ?? take(`${scope}/depthwise_weights`);
    if (!filter) throw new WeightImportError(`layer ${node.name}: no weights under '${scope}' in ${dir}`);
    const norm = batchNorm(model, scope);
    const layout = tensorflowLayout(node);
    expectShape(filter, filterShape(node, layout), node.name);
    weights.set(node.weight.name, toOIHW(node, filter.values, layout, norm?.scale));
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

