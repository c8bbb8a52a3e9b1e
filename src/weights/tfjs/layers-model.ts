// A TensorFlow.js layers model (a Keras model saved for TensorFlow.js: model.json holds the Keras
// config, the shards the weights, batch norm not folded, weights possibly quantized) as the
// neutral classifier description. Layers are read by their Keras class and wiring, never by
// name: ZeroPadding2D becomes the pads of the convolution after it, BatchNormalization is
// folded into the convolution before it, ReLU / Activation become its activation, Dropout and
// Flatten do nothing at inference. A Functional model nested in a Sequential one (Keras'
// transfer-learning recipe) is read as one network.
import type { Activation } from '../../model/graph.js';
import { foldedValues, type FileClassifier, type FileLayer, type FoldedNorm, type Pads } from '../classifier.js';
import { WeightImportError } from '../common.js';
import { readModelJson, readWeights, TfjsFormatError, type NamedTensor, type WeightsManifest } from './graph-model.js';

interface KerasLayer {
  name?: string;
  class_name: string;
  config: Record<string, unknown> & { name?: string; layers?: KerasLayer[] };
  /** Functional models: [[[source layer, node index, tensor index, kwargs], ...], ...]. */
  inbound_nodes?: [string, number, number, unknown?][][];
}

interface LayersModelJson {
  modelTopology: { model_config?: KerasLayer } & Partial<KerasLayer>;
  weightsManifest: WeightsManifest;
}

/** One layer with the layer its single input comes from (undefined for inputs; Add has two). */
interface Wired {
  layer: KerasLayer;
  name: string;
  inputs: string[];
}

/** Layers in execution order with their inputs, nested models inlined (a model's output stands for it). */
function flatten(model: KerasLayer, outer?: string): Wired[] {
  const layers = (Array.isArray(model.config) ? model.config : model.config.layers) as KerasLayer[] | undefined;
  if (!layers) throw new TfjsFormatError(`Keras ${model.class_name} without layers`);
  const sequential = model.class_name === 'Sequential';
  const wired: Wired[] = [];
  let previous = outer;
  for (const layer of layers) {
    const name = layer.config.name ?? layer.name ?? '';
    const inputs = sequential ? (previous === undefined ? [] : [previous]) : (layer.inbound_nodes?.[0] ?? []).map((n) => n[0]);
    if (['Model', 'Functional', 'Sequential'].includes(layer.class_name)) {
      const inner = flatten(layer, inputs[0]);
      wired.push(...inner);
      // What read the nested model reads its last layer.
      wired.push({ layer: { class_name: 'Identity', config: { name } }, name, inputs: [inner.at(-1)!.name] });
    } else if (layer.class_name === 'InputLayer' && inputs.length === 0 && outer !== undefined) {
      wired.push({ layer: { class_name: 'Identity', config: { name } }, name, inputs: [outer] });
    } else {
      wired.push({ layer, name, inputs });
    }
    previous = name;
  }
  return wired;
}

const pair = (v: unknown): [number, number] => (typeof v === 'number' ? [v, v] : (v as [number, number]));

/** ZeroPadding2D's padding as [top, left, bottom, right]. */
function zeroPadding(v: unknown): Pads {
  if (typeof v === 'number') return [v, v, v, v];
  const [h, w] = v as [unknown, unknown];
  const [top, bottom] = pair(h);
  const [left, right] = pair(w);
  return [top, left, bottom, right];
}

const ACTIVATIONS: Record<string, Activation | 'softmax'> = { linear: 'none', relu: 'relu', relu6: 'relu6', softmax: 'softmax' };

export function readLayersClassifier(dir: string): FileClassifier {
  const json = readModelJson(dir) as LayersModelJson;
  const model = json.modelTopology?.model_config ?? (json.modelTopology?.class_name ? (json.modelTopology as KerasLayer) : undefined);
  if (!model || !Array.isArray(json.weightsManifest)) throw new TfjsFormatError(`${dir}/model.json is not a TensorFlow.js layers model (no Keras model_config)`);
  const tensors = readWeights(dir, json.weightsManifest);
  const used = new Set<string>();
  // Weights are named layer/param, under the model's name when nested.
  const weight = (layer: string, param: string): NamedTensor | undefined => {
    const matches = [...tensors.values()].filter((t) => t.name === `${layer}/${param}` || t.name.endsWith(`/${layer}/${param}`));
    if (matches.length > 1) throw new WeightImportError(`weights ${matches.map((t) => t.name).join(', ')} all fit layer ${layer}`);
    if (matches[0]) used.add(matches[0].name);
    return matches[0];
  };
  const needed = (layer: string, param: string) => weight(layer, param) ?? (() => {
    throw new WeightImportError(`layer ${layer}: no weight ${layer}/${param} in ${dir}`);
  })();

  const backbone: FileLayer[] = [];
  const head: FileLayer[] = [];
  /** What each Keras tensor is: the output of file layer i, padding in front of one, or something a convolution cannot absorb. */
  const origin = new Map<string, { layer: FileLayer } | { pads: Pads; from: string } | { other: string }>();
  const layerOf = (name: string, what: string) => {
    const o = origin.get(name);
    if (!o || !('layer' in o)) throw new WeightImportError(`${what} reads ${name}, which is not a convolution's or dense layer's output`);
    return o.layer;
  };
  let inputSize: [number, number] | undefined;
  let pooled = false;
  let softmax = false;
  let adds = 0;

  for (const { layer, name, inputs } of flatten(model)) {
    const c = layer.config;
    const what = `layer ${name} (${layer.class_name})`;
    const input = inputs[0] ?? '';
    switch (layer.class_name) {
      case 'InputLayer': {
        const [, h, w, channels] = (c.batch_input_shape ?? c.batch_shape) as (number | null)[];
        if (channels !== 3) throw new WeightImportError(`${what} takes ${channels} channels, not 3 (RGB)`);
        inputSize = h && w ? [h, w] : undefined;
        origin.set(name, { other: 'input' });
        break;
      }
      case 'ZeroPadding2D':
        origin.set(name, { pads: zeroPadding(c.padding), from: input });
        break;
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const depthwise = layer.class_name === 'DepthwiseConv2D';
        if ((c.data_format ?? 'channels_last') !== 'channels_last') throw new WeightImportError(`${what} is ${String(c.data_format)}`);
        if (depthwise && (c.depth_multiplier ?? 1) !== 1) throw new WeightImportError(`${what} has depth multiplier ${String(c.depth_multiplier)}`);
        const [stride, strideW] = pair(c.strides);
        const [dilation, dilationW] = pair(c.dilation_rate ?? 1);
        if (stride !== strideW || dilation !== dilationW) throw new WeightImportError(`${what} has unequal strides or dilations`);
        const before = origin.get(input);
        const padded = before && 'pads' in before;
        if (padded && c.padding !== 'valid') throw new WeightImportError(`${what} pads 'same' after a ZeroPadding2D`);
        const kernel = needed(name, depthwise ? 'depthwise_kernel' : 'kernel');
        const bias = c.use_bias ? needed(name, 'bias') : undefined;
        const activation = ACTIVATIONS[String(c.activation ?? 'linear')];
        if (!activation || activation === 'softmax') throw new WeightImportError(`${what} has activation ${String(c.activation)}`);
        const out = kernel.shape[depthwise ? 2 : 3]!;
        const fileLayer: FileLayer & { norm?: FoldedNorm } = {
          source: `${what} kernel '${kernel.name}' [${kernel.shape}]`,
          depthwise,
          filterShape: kernel.shape,
          layout: depthwise ? 'HWOI' : 'HWIO',
          stride,
          dilation,
          padding: padded ? before.pads : (c.padding as 'same' | 'valid'),
          activation,
          values: () => foldedValues(kernel.values, bias?.values, fileLayer.norm, out),
        };
        if (pooled) throw new WeightImportError(`${what} comes after the global pool`);
        backbone.push(fileLayer);
        origin.set(name, { layer: fileLayer });
        break;
      }
      case 'BatchNormalization': {
        const conv = layerOf(input, what) as FileLayer & { norm?: FoldedNorm };
        if (conv.norm || conv.activation !== 'none') throw new WeightImportError(`${what} normalizes ${input} after its activation or a second time`);
        const axis = c.axis as number | number[];
        if (![-1, 3].includes(Array.isArray(axis) ? axis[0]! : axis)) throw new WeightImportError(`${what} normalizes axis ${JSON.stringify(axis)}, not the channels`);
        const epsilon = c.epsilon as number;
        const [mean, variance] = [needed(name, 'moving_mean'), needed(name, 'moving_variance')];
        const gamma = c.scale === false ? undefined : needed(name, 'gamma');
        const beta = c.center === false ? undefined : needed(name, 'beta');
        const scale = variance.values.map((v, i) => (gamma?.values[i] ?? 1) / Math.sqrt(v + epsilon));
        conv.norm = { scale, shift: mean.values.map((m, i) => (beta?.values[i] ?? 0) - m * scale[i]!) };
        origin.set(name, { layer: conv });
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const target = layerOf(input, what);
        let activation: Activation | 'softmax' | undefined;
        if (layer.class_name === 'ReLU') {
          if ((c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0) throw new WeightImportError(`${what} is a leaky or thresholded ReLU`);
          activation = c.max_value === 6 ? 'relu6' : c.max_value == null ? 'relu' : undefined;
        } else {
          activation = ACTIVATIONS[String(c.activation)];
        }
        if (!activation || target.activation !== 'none') throw new WeightImportError(`${what} cannot follow ${target.source}`);
        if (activation === 'softmax') softmax = true;
        else target.activation = activation;
        origin.set(name, { layer: target });
        break;
      }
      case 'Softmax':
        layerOf(input, what);
        softmax = true;
        origin.set(name, origin.get(input)!);
        break;
      case 'Add':
        if (inputs.length !== 2) throw new WeightImportError(`${what} adds ${inputs.length} tensors`);
        adds++;
        origin.set(name, { other: 'add' });
        break;
      case 'GlobalAveragePooling2D':
      case 'AveragePooling2D': {
        if (layer.class_name === 'AveragePooling2D') {
          // Over the whole last map: the input reduced 32 times (the backbone's output stride).
          const [ph, pw] = pair(c.pool_size);
          if (c.padding !== 'valid' || ph !== pw || (inputSize && ph !== Math.ceil(inputSize[0] / 32))) {
            throw new WeightImportError(`${what} pools ${ph}x${pw}, not the whole ${inputSize ? Math.ceil(inputSize[0] / 32) : '?'}-pixel map`);
          }
        }
        if (pooled) throw new WeightImportError(`${what} pools a second time`);
        pooled = true;
        origin.set(name, { other: 'pool' });
        break;
      }
      case 'Flatten':
      case 'Dropout':
      case 'Reshape':
      case 'Identity':
        origin.set(name, origin.get(input) ?? { other: 'input' });
        break;
      case 'Dense': {
        if (!pooled) throw new WeightImportError(`${what} comes before the global pool`);
        const kernel = needed(name, 'kernel');
        const bias = c.use_bias === false ? undefined : needed(name, 'bias');
        const activation = ACTIVATIONS[String(c.activation ?? 'linear')];
        if (!activation) throw new WeightImportError(`${what} has activation ${String(c.activation)}`);
        if (activation === 'softmax') softmax = true;
        const [, units] = kernel.shape as [number, number];
        const dense: FileLayer = {
          source: `${what} kernel '${kernel.name}' [${kernel.shape}]`,
          depthwise: false,
          // A dense kernel [in, out] is the HWIO filter of a 1x1 convolution.
          filterShape: [1, 1, ...kernel.shape],
          layout: 'HWIO',
          stride: 1,
          dilation: 1,
          padding: 'valid',
          activation: activation === 'softmax' ? 'none' : activation,
          values: () => ({ filter: kernel.values, bias: bias?.values ?? new Float32Array(units) }),
        };
        head.push(dense);
        origin.set(name, { layer: dense });
        break;
      }
      default:
        throw new WeightImportError(`${what} is not part of a MobileNetV2 classifier`);
    }
    if (softmax && !['Dense', 'Activation', 'Softmax'].includes(layer.class_name)) throw new WeightImportError(`${what} follows the softmax`);
  }
  return {
    inputSize,
    backbone,
    head,
    softmax,
    adds,
    unused: [...tensors.keys()].filter((n) => !used.has(n)),
  };
}
