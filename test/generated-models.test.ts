// Models of widths, resolutions, heads and class counts no file here has, made the way their
// frameworks make them (code written from keras.applications.mobilenet_v2 and torchvision's
// mobilenet_v2, not from our builder), loaded through the repository like any user's model and
// checked against the framework that made them: TensorFlow.js running the Keras model, ONNX
// Runtime running the ONNX file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import { beforeAll, describe, expect, it } from 'vitest';
import { entryOf, loadWeights, type ClassifierEntry } from '../src/catalog/catalog.js';
import { ENGINE_NAMES } from '../src/engine/engine.js';
import { loadEngine } from '../src/engine/load.js';
import { tf, useTfjsBackend } from '../src/engine/tfjs/backend.js';
import { costOf } from '../src/model/cost.js';
import { normalize } from '../src/worker/normalize.js';
import { MODEL_DIR } from './helpers.js';
import { labelLines, writeVersion } from './repository-fixtures.js';

const repository = mkdtempSync(join(tmpdir(), 'generated-'));
const { onnx } = onnxProto;

/** Keras' and torchvision's _make_divisible. */
function makeDivisible(v: number, divisor = 8): number {
  let rounded = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

/** The paper's Table 2 as both frameworks write it: expansion, channels, repeats, first stride. */
const SETTINGS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]] as const;

interface Head {
  units: number;
  activation: 'relu' | 'relu6';
}

const random = (() => {
  let seed = 12345;
  return (low: number, high: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return low + (high - low) * (seed / 2 ** 31);
  };
})();
const randoms = (n: number, low: number, high: number) => Float32Array.from({ length: n }, () => random(low, high));

/** A photo-like input: a smooth gradient with noise, as pixels. */
function pixels(resolution: number): Uint8Array {
  return Uint8Array.from({ length: resolution * resolution * 3 }, (_, i) => Math.round(127 + 100 * Math.sin(i / 97) + random(-20, 20)));
}

// ---------------------------------------------------------------------------------------------
// keras.applications.mobilenet_v2, in TensorFlow.js layers.

/** The model, and the same network ending at the logits (its softmax is a layer of its own). */
function kerasMobileNetV2(alpha: number, resolution: number, head: readonly Head[], classes: number): { model: tfl.LayersModel; logits: tfl.LayersModel } {
  // correct_pad: TensorFlow's 'same' at stride 2, as explicit zero padding.
  const correctPad = (size: number): [[number, number], [number, number]] => {
    const adjust = 1 - (size % 2);
    return [[1 - adjust, 1], [1 - adjust, 1]];
  };
  const bn = (name: string) => tfl.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.999, name });
  const relu6 = (name: string) => tfl.layers.reLU({ maxValue: 6, name });
  const input = tfl.input({ shape: [resolution, resolution, 3] });
  let x = tfl.layers.zeroPadding2d({ padding: correctPad(resolution), name: 'Conv1_pad' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: makeDivisible(32 * alpha), kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'Conv1' }).apply(x) as tfl.SymbolicTensor;
  x = relu6('Conv1_relu').apply(bn('bn_Conv1').apply(x)) as tfl.SymbolicTensor;
  let id = 0;
  for (const [t, c, n, s] of SETTINGS) {
    for (let i = 0; i < n; i++, id++) {
      const stride = i === 0 ? s : 1;
      const inChannels = x.shape[3] as number;
      const pointwise = makeDivisible(Math.trunc(c * alpha));
      const prefix = id ? `block_${id}_` : 'expanded_conv_';
      const blockInput = x;
      if (id) {
        x = tfl.layers.conv2d({ filters: t * inChannels, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` }).apply(x) as tfl.SymbolicTensor;
        x = relu6(`${prefix}expand_relu`).apply(bn(`${prefix}expand_BN`).apply(x)) as tfl.SymbolicTensor;
      }
      if (stride === 2) x = tfl.layers.zeroPadding2d({ padding: correctPad(x.shape[1] as number), name: `${prefix}pad` }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `${prefix}depthwise` }).apply(x) as tfl.SymbolicTensor;
      x = relu6(`${prefix}depthwise_relu`).apply(bn(`${prefix}depthwise_BN`).apply(x)) as tfl.SymbolicTensor;
      x = tfl.layers.conv2d({ filters: pointwise, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }).apply(x) as tfl.SymbolicTensor;
      x = bn(`${prefix}project_BN`).apply(x) as tfl.SymbolicTensor;
      if (inChannels === pointwise && stride === 1) x = tfl.layers.add({ name: `${prefix}add` }).apply([blockInput, x]) as tfl.SymbolicTensor;
    }
  }
  x = tfl.layers.conv2d({ filters: alpha > 1 ? makeDivisible(1280 * alpha) : 1280, kernelSize: 1, useBias: false, name: 'Conv_1' }).apply(x) as tfl.SymbolicTensor;
  x = relu6('out_relu').apply(bn('Conv_1_bn').apply(x)) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  head.forEach(({ units, activation }, i) => {
    x = tfl.layers.dropout({ rate: 0.3, name: `dropout_${i}` }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.dense({ units, activation, name: `dense_${i}` }).apply(x) as tfl.SymbolicTensor;
  });
  const logits = tfl.layers.dense({ units: classes, name: 'logits' }).apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers.activation({ activation: 'softmax', name: 'predictions' }).apply(logits) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: output });
  // Trained-looking batch norm: statistics far from (0, 1), so folding them is tested.
  for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const channels = layer.getWeights()[0]!.shape[0]!;
    layer.setWeights([randoms(channels, 0.5, 1.5), randoms(channels, -0.2, 0.2), randoms(channels, -0.5, 0.5), randoms(channels, 0.5, 2)].map((v) => tf.tensor1d(v)));
  }
  // A head with conviction (Glorot's scale leaves random logits near zero, the softmax near uniform).
  for (const layer of model.layers.filter((l) => l.getClassName() === 'Dense')) {
    const [kernel, bias] = layer.getWeights() as [tf.Tensor, tf.Tensor];
    layer.setWeights([tf.tensor(randoms(kernel.size, -1, 1), kernel.shape), tf.tensor(randoms(bias.size, -1, 1), bias.shape)]);
  }
  return { model, logits: tfl.model({ inputs: input, outputs: logits }) };
}

/** Saves a layers model as TensorFlow.js writes one: model.json and a weights file. */
async function saveLayersModel(model: tfl.LayersModel): Promise<Record<string, string | Buffer>> {
  let files: Record<string, string | Buffer> = {};
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData!;
    const weights = Buffer.concat((Array.isArray(data) ? data : [data]).map((b) => Buffer.from(b)));
    files = {
      'model.json': JSON.stringify({ format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }] }),
      'weights.bin': weights,
    };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return files;
}

// ---------------------------------------------------------------------------------------------
// torchvision.models.mobilenet_v2 as torch.onnx.export writes it, batch norm left unfolded.

function torchvisionOnnx(width: number, resolution: number, head: readonly Head[], classes: number): Uint8Array {
  const nodes: OnnxTypes.INodeProto[] = [];
  const initializers: OnnxTypes.ITensorProto[] = [];
  let counter = 0;
  const tensor = (dims: number[], values: Float32Array) => {
    const name = `onnx::${counter++}`;
    initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(values.buffer) });
    return name;
  };
  const zero = tensor([], Float32Array.of(0));
  const six = tensor([], Float32Array.of(6));
  const node = (opType: string, input: string[], attribute: OnnxTypes.IAttributeProto[] = []) => {
    const output = `/${opType}_${counter++}`;
    nodes.push({ opType, name: output, input, output: [output], attribute });
    return output;
  };
  const ints = (name: string, v: number[]) => ({ name, ints: v, type: onnx.AttributeProto.AttributeType.INTS });
  const int = (name: string, v: number) => ({ name, i: v, type: onnx.AttributeProto.AttributeType.INT });
  const channels = new Map<string, number>();
  const convBn = (x: string, out: number, kernel: number, stride: number, groups: number, relu6: boolean) => {
    const inPerGroup = channels.get(x)! / groups;
    const weight = tensor([out, inPerGroup, kernel, kernel], randoms(out * inPerGroup * kernel * kernel, -1, 1).map((v) => v * Math.sqrt(3 / (inPerGroup * kernel * kernel))));
    const pad = (kernel - 1) / 2;
    let y = node('Conv', [x, weight], [ints('kernel_shape', [kernel, kernel]), ints('strides', [stride, stride]), ints('pads', [pad, pad, pad, pad]), ints('dilations', [1, 1]), int('group', groups)]);
    y = node('BatchNormalization', [y, tensor([out], randoms(out, 0.5, 1.5)), tensor([out], randoms(out, -0.2, 0.2)), tensor([out], randoms(out, -0.5, 0.5)), tensor([out], randoms(out, 0.5, 2))],
      [{ name: 'epsilon', f: 1e-5, type: onnx.AttributeProto.AttributeType.FLOAT }]);
    if (relu6) y = node('Clip', [y, zero, six]);
    channels.set(y, out);
    return y;
  };
  channels.set('input', 3);
  let x = convBn('input', makeDivisible(32 * width), 3, 2, 1, true);
  for (const [t, c, n, s] of SETTINGS) {
    const out = makeDivisible(c * width);
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const inp = channels.get(x)!;
      const hidden = Math.round(inp * t);
      let y = t === 1 ? x : convBn(x, hidden, 1, 1, 1, true);
      y = convBn(y, hidden, 3, stride, hidden, true);
      y = convBn(y, out, 1, 1, 1, false);
      if (stride === 1 && inp === out) {
        y = node('Add', [x, y]);
        channels.set(y, out);
      }
      x = y;
    }
  }
  x = convBn(x, makeDivisible(1280 * Math.max(1, width)), 1, 1, 1, true);
  let features = channels.get(x)!;
  x = node('Flatten', [node('GlobalAveragePool', [x])], [int('axis', 1)]);
  const linear = (y: string, inFeatures: number, outFeatures: number) => node('Gemm', [y, tensor([outFeatures, inFeatures], randoms(outFeatures * inFeatures, -0.1, 0.1)), tensor([outFeatures], randoms(outFeatures, -0.1, 0.1))],
    [{ name: 'alpha', f: 1, type: onnx.AttributeProto.AttributeType.FLOAT }, { name: 'beta', f: 1, type: onnx.AttributeProto.AttributeType.FLOAT }, int('transB', 1)]);
  for (const { units, activation } of head) {
    x = linear(x, features, units);
    x = activation === 'relu' ? node('Relu', [x]) : node('Clip', [x, zero, six]);
    features = units;
  }
  x = linear(x, features, classes);
  nodes.at(-1)!.output = ['logits'];
  const dims = (d: (number | string)[]) => ({ tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: d.map((v) => (typeof v === 'number' ? { dimValue: v } : { dimParam: v })) } } });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'pytorch',
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'main_graph', node: nodes, initializer: initializers, input: [{ name: 'input', type: dims(['batch', 3, resolution, resolution]) }], output: [{ name: 'logits', type: dims(['batch', classes]) }] },
  })).finish();
}

// ---------------------------------------------------------------------------------------------

const classifierEntry = (name: string, config: Record<string, unknown>, files: Record<string, string | Buffer>, classes: number) => {
  writeVersion(repository, name, 1, { config: { task: 'classification', labels: 'labels.txt', ...config }, files: { ...files, 'labels.txt': labelLines(Array.from({ length: classes }, (_, i) => `class ${i}`)) } });
  return entryOf({ name, version: 1, configFile: join(repository, name, '1', 'config.yaml') }, MODEL_DIR) as ClassifierEntry;
};

const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((max, v, i) => Math.max(max, Math.abs(v - b[i]!)), 0);

describe('Keras MobileNetV2 saved as TensorFlow.js layers models, of widths and heads no file here has', () => {
  beforeAll(() => useTfjsBackend('wasm'));

  const CASES = [
    { alpha: 1.4, resolution: 224, head: [], classes: 1000 },
    { alpha: 0.35, resolution: 96, head: [{ units: 64, activation: 'relu' }], classes: 7 },
    { alpha: 0.75, resolution: 161, head: [{ units: 48, activation: 'relu6' }, { units: 24, activation: 'relu' }], classes: 3 },
  ] as const;

  it.each(CASES)('width $alpha at $resolution with $head.length hidden head layers and $classes classes answers as TensorFlow.js does', async ({ alpha, resolution, head, classes }) => {
    const keras = kerasMobileNetV2(alpha, resolution, head, classes);
    const name = `keras_${alpha}_${resolution}`;
    // Keras' preprocess_input for MobileNetV2: [-1, 1].
    const entry = classifierEntry(name, { format: 'tfjs-layers', weights: '.', preprocessing: { scale: 1 / 127.5, zeroPoint: 127.5 } }, await saveLayersModel(keras.model), classes);
    expect([entry.alpha, entry.build().input.shape[1], entry.build().classes]).toEqual([alpha, resolution, classes]);
    expect(entry.build().head.map((t) => t.shape[0])).toEqual([...head.map((h) => h.units), classes]);
    const { model, weights, normalization } = loadWeights(entry);
    const input = pixels(resolution);
    const x = tf.tidy(() => tf.sub(tf.div(tf.tensor(Float32Array.from(input), [1, resolution, resolution, 3]), 127.5), 1));
    const [y, z] = [keras.model.predict(x) as tf.Tensor, keras.logits.predict(x) as tf.Tensor];
    const [probabilities, logits] = [await y.data(), await z.data()];
    tf.dispose([x, y, z]);
    const scale = Math.max(...Array.from(logits, Math.abs));
    for (const engineName of ENGINE_NAMES) {
      const engine = await loadEngine(engineName, { ...model.graph, outputs: [model.logits.name, model.probabilities.name] }, weights, { threads: 1, tfjsBackend: 'wasm' });
      const outputs = await engine.run({ data: normalize(input, normalization), batch: 1 });
      await engine.dispose();
      const difference = maxDifference(outputs.get(model.logits.name)!, logits);
      console.log(`keras ${alpha}/${resolution}, ${engineName}: largest logit ${scale.toFixed(3)}, max difference ${difference.toExponential(2)}`);
      expect(difference, engineName).toBeLessThan(1e-4 * Math.max(1, scale));
      expect(maxDifference(outputs.get(model.probabilities.name)!, probabilities), engineName).toBeLessThan(1e-5);
    }
    keras.model.dispose();
  });

  it('refuses a config whose stated width or resolution the weights contradict, naming both', async () => {
    const keras = kerasMobileNetV2(0.5, 128, [], 4);
    const files = await saveLayersModel(keras.model);
    keras.model.dispose();
    const wrongWidth = classifierEntry('wrong_width', { format: 'tfjs-layers', weights: '.', preprocessing: { scale: 1 / 127.5, zeroPoint: 127.5 }, architecture: { alpha: 1.0 } }, files, 4);
    expect(() => wrongWidth.build()).toThrow(/architecture\.alpha is 1 but the weights have width 0\.5 \(Conv1 has 16 channels, width 1 gives 32/);
    const wrongSide = classifierEntry('wrong_side', { format: 'tfjs-layers', weights: '.', preprocessing: { scale: 1 / 127.5, zeroPoint: 127.5 }, architecture: { resolution: 224 } }, files, 4);
    expect(() => wrongSide.build()).toThrow(/architecture\.resolution is 224 but the weights' input is 128x128/);
    const wrongClasses = classifierEntry('wrong_classes', { format: 'tfjs-layers', weights: '.', preprocessing: { scale: 1 / 127.5, zeroPoint: 127.5 }, architecture: { classes: 1001 } }, files, 4);
    expect(() => wrongClasses.build()).toThrow(/architecture\.classes is 1001 but the weights' class layer .* has 4 outputs/);
  });
});

// ---------------------------------------------------------------------------------------------
// A TF-Hub MobileNetV2 feature vector with a dense head, as tfjs-converter writes it: batch norm
// folded by grappler into _FusedConv2D / FusedDepthwiseConv2dNative (BiasAdd + Relu6), the head
// as _FusedMatMul. `explicitPad` writes Keras' ZeroPadding2D as a Pad before a VALID convolution.

function tfjsGraphModel(width: number, resolution: number, head: readonly Head[], classes: number, explicitPad: boolean): Record<string, string | Buffer> {
  const nodes: object[] = [];
  const specs: { name: string; shape: number[]; dtype: string }[] = [];
  const data: Buffer[] = [];
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const constant = (name: string, shape: number[], values: Float32Array | Int32Array) => {
    specs.push({ name, shape, dtype: values instanceof Int32Array ? 'int32' : 'float32' });
    data.push(Buffer.from(values.buffer));
    nodes.push({ name, op: 'Const', attr: { dtype: { type: values instanceof Int32Array ? 'DT_INT32' : 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } } } });
    return name;
  };
  const list = (values: number[]) => ({ list: { i: values.map(String) } });
  const channels = new Map<string, number>([['inputs', 3]]);
  const conv = (name: string, x: string, out: number, kernel: number, stride: number, depthwise: boolean, relu6: boolean) => {
    const inChannels = channels.get(x)!;
    const filter = constant(`${name}/weights`, depthwise ? [kernel, kernel, inChannels, 1] : [kernel, kernel, inChannels, out],
      randoms(kernel * kernel * inChannels * (depthwise ? 1 : out), -1, 1).map((v) => v * Math.sqrt(3 / (kernel * kernel * (depthwise ? 1 : inChannels)))));
    const bias = constant(`${name}/bias`, [out], randoms(out, -0.2, 0.2));
    let input = x;
    let padding = 'SAME';
    if (explicitPad && stride === 2) {
      const side = channels.get(`${x}#side`) ?? resolution;
      const pads = constant(`${name}/paddings`, [4, 2], Int32Array.of(0, 0, 1 - (side % 2), 1, 1 - (side % 2), 1, 0, 0));
      input = `${name}/Pad`;
      nodes.push({ name: input, op: 'Pad', input: [x, pads], attr: { T: { type: 'DT_FLOAT' } } });
      padding = 'VALID';
    }
    nodes.push({
      name, op: depthwise ? 'FusedDepthwiseConv2dNative' : '_FusedConv2D', input: [input, filter, bias],
      attr: { strides: list([1, stride, stride, 1]), dilations: list([1, 1, 1, 1]), padding: { s: b64(padding) }, data_format: { s: b64('NHWC') }, num_args: { i: '1' },
        fused_ops: { list: { s: [b64('BiasAdd'), ...(relu6 ? [b64('Relu6')] : [])] } }, T: { type: 'DT_FLOAT' } },
    });
    channels.set(name, out);
    channels.set(`${name}#side`, Math.ceil((channels.get(`${x}#side`) ?? resolution) / stride));
    return name;
  };
  nodes.push({ name: 'inputs', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: String(resolution) }, { size: String(resolution) }, { size: '3' }] } } } });
  let x = conv('MobilenetV2/Conv', 'inputs', makeDivisible(32 * width), 3, 2, false, true);
  let id = 0;
  for (const [t, c, n, s] of SETTINGS) {
    const out = makeDivisible(c * width);
    for (let i = 0; i < n; i++, id++) {
      const scope = `MobilenetV2/expanded_conv${id ? `_${id}` : ''}`;
      const stride = i === 0 ? s : 1;
      const inp = channels.get(x)!;
      let y = t === 1 ? x : conv(`${scope}/expand`, x, inp * t, 1, 1, false, true);
      y = conv(`${scope}/depthwise`, y, channels.get(y)!, 3, stride, true, true);
      y = conv(`${scope}/project`, y, out, 1, 1, false, false);
      if (stride === 1 && inp === out) {
        nodes.push({ name: `${scope}/add`, op: 'AddV2', input: [x, y], attr: { T: { type: 'DT_FLOAT' } } });
        channels.set(`${scope}/add`, out);
        channels.set(`${scope}/add#side`, channels.get(`${y}#side`)!);
        y = `${scope}/add`;
      }
      x = y;
    }
  }
  x = conv('MobilenetV2/Conv_1', x, makeDivisible(1280 * Math.max(1, width)), 1, 1, false, true);
  nodes.push({ name: 'MobilenetV2/Logits/AvgPool', op: 'Mean', input: [x, constant('MobilenetV2/Logits/axes', [2], Int32Array.of(1, 2))], attr: { keep_dims: { b: false }, T: { type: 'DT_FLOAT' }, Tidx: { type: 'DT_INT32' } } });
  x = 'MobilenetV2/Logits/AvgPool';
  let features = channels.get('MobilenetV2/Conv_1')!;
  const dense = (name: string, units: number, activation?: string) => {
    const weight = constant(`${name}/kernel`, [features, units], randoms(features * units, -1, 1).map((v) => v * Math.sqrt(3 / features)));
    const bias = constant(`${name}/bias`, [units], randoms(units, -0.5, 0.5));
    nodes.push({ name, op: '_FusedMatMul', input: [x, weight, bias], attr: { transpose_a: { b: false }, transpose_b: { b: false }, num_args: { i: '1' },
      fused_ops: { list: { s: [b64('BiasAdd'), ...(activation ? [b64(activation)] : [])] } }, T: { type: 'DT_FLOAT' } } });
    x = name;
    features = units;
  };
  head.forEach(({ units, activation }, i) => dense(`dense_${i}/MatMul`, units, activation === 'relu' ? 'Relu' : 'Relu6'));
  dense('logits/MatMul', classes);
  nodes.push({ name: 'Identity', op: 'Softmax', input: [x], attr: { T: { type: 'DT_FLOAT' } } });
  return {
    'model.json': JSON.stringify({ format: 'graph-model', generatedBy: '2.15.0', convertedBy: 'TensorFlow.js Converter v4.22.0', modelTopology: { node: nodes, versions: { producer: 1482 } }, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: specs }] }),
    'group1-shard1of1.bin': Buffer.concat(data),
  };
}

describe('TF-Hub MobileNetV2 feature vectors with a dense head, converted to TensorFlow.js graph models', () => {
  beforeAll(() => useTfjsBackend('wasm'));

  const CASES = [
    { width: 1.4, resolution: 224, head: [], classes: 20, explicitPad: false },
    { width: 0.5, resolution: 160, head: [{ units: 64, activation: 'relu' }], classes: 5, explicitPad: true },
  ] as const;

  it.each(CASES)('width $width at $resolution ($head.length hidden layers, Pad before VALID: $explicitPad) gives the converter\'s own executor\'s logits', async ({ width, resolution, head, classes, explicitPad }) => {
    const files = tfjsGraphModel(width, resolution, head, classes, explicitPad);
    const entry = classifierEntry(`hub_${width}_${resolution}`, { format: 'tfjs-graph', weights: '.', preprocessing: { scale: 1 / 255 } }, files, classes);
    expect([entry.alpha, entry.build().input.shape[1], entry.build().classes]).toEqual([width, resolution, classes]);
    const { model, weights, normalization } = loadWeights(entry);
    const json = JSON.parse(files['model.json'] as string);
    const shard = files['group1-shard1of1.bin'] as Buffer;
    const reference = await loadGraphModel({ load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: shard.buffer.slice(shard.byteOffset, shard.byteOffset + shard.length) as ArrayBuffer }) });
    const input = pixels(resolution);
    const x = tf.tidy(() => tf.div(tf.tensor(Float32Array.from(input), [1, resolution, resolution, 3]), 255));
    const y = reference.execute(x, 'logits/MatMul') as tf.Tensor;
    const expected = await y.data();
    tf.dispose([x, y]);
    const scale = Math.max(...Array.from(expected, Math.abs));
    for (const engineName of ENGINE_NAMES) {
      const engine = await loadEngine(engineName, { ...model.graph, outputs: [model.logits.name] }, weights, { threads: 1, tfjsBackend: 'wasm' });
      const ours = (await engine.run({ data: normalize(input, normalization), batch: 1 })).get(model.logits.name)!;
      await engine.dispose();
      const difference = maxDifference(ours, expected);
      console.log(`graph model ${width}/${resolution}, ${engineName}: largest logit ${scale.toFixed(3)}, max difference ${difference.toExponential(2)}`);
      expect(difference, engineName).toBeLessThan(1e-4 * Math.max(1, scale));
    }
    reference.dispose();
  });
});

describe('torchvision MobileNetV2 exported to ONNX, of widths and heads no file here has', () => {
  const CASES = [
    { width: 1.4, resolution: 224, head: [], classes: 10 },
    { width: 0.75, resolution: 128, head: [{ units: 32, activation: 'relu' }], classes: 5 },
  ] as const;

  it.each(CASES)('width $width at $resolution (batch norm unfolded, $head.length hidden head layers) gives ONNX Runtime\'s logits', async ({ width, resolution, head, classes }) => {
    const file = torchvisionOnnx(width, resolution, head, classes);
    const entry = classifierEntry(`torch_${width}_${resolution}`, { format: 'onnx', weights: 'model.onnx', preprocessing: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } }, { 'model.onnx': Buffer.from(file) }, classes);
    expect(entry.alpha).toBe(width);
    const { model, weights, normalization } = loadWeights(entry);
    const input = pixels(resolution);
    const data = normalize(input, normalization);
    // ONNX Runtime on the file, NCHW.
    const plane = resolution * resolution;
    const nchw = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) nchw[c * plane + i] = data[3 * i + c]!;
    const session = await ort.InferenceSession.create(file);
    const expected = (await session.run({ input: new ort.Tensor('float32', nchw, [1, 3, resolution, resolution]) })).logits!.data as Float32Array;
    await session.release();
    for (const engineName of ENGINE_NAMES) {
      const engine = await loadEngine(engineName, { ...model.graph, outputs: [model.logits.name] }, weights, { threads: 1, tfjsBackend: 'wasm' });
      const ours = (await engine.run({ data, batch: 1 })).get(model.logits.name)!;
      await engine.dispose();
      const scale = Math.max(...Array.from(expected, Math.abs));
      console.log(`torchvision ${width}/${resolution}, ${engineName}: largest logit ${scale.toFixed(3)}, max difference ${maxDifference(ours, expected).toExponential(2)}`);
      expect(maxDifference(ours, expected), engineName).toBeLessThan(1e-4 * Math.max(1, scale));
    }
  });

  it('costs a width-1.4 model as the paper counts it, head included', () => {
    const entry = classifierEntry('torch_cost', { format: 'onnx', weights: 'model.onnx', preprocessing: { mean: 0.5, std: 0.5 } }, { 'model.onnx': Buffer.from(torchvisionOnnx(1.4, 224, [], 1001)) }, 1001);
    const cost = costOf(entry.build().graph);
    // The release table's 1.4/224 row: 582M multiply-adds (truncated to millions) with 1001 classes.
    expect(Math.floor(cost.multiplyAdds / 1e6)).toBe(582);
    const last = 1792;
    expect(cost.layers.find((l) => l.name === 'Logits')).toMatchObject({ multiplyAdds: last * 1001, params: last * 1001 + 1001 });
  });
});
