// An ONNX MobileNetV2 classifier (as torch.onnx.export writes torchvision's: NCHW input, batch
// norm usually folded into the convolutions, ReLU6 as Clip(0, 6), Gemm for the classifier) as the
// neutral classifier description. Mapped by structure, in topological order: initializer names
// are the exporter's and change between versions, so none is looked at.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { Activation } from '../../model/graph.js';
import { foldedValues, type FileClassifier, type FileLayer, type FoldedNorm, type Pads } from '../classifier.js';
import { WeightImportError } from '../common.js';

const { onnx } = onnxProto;

interface Constant {
  dims: number[];
  values: Float32Array;
}

type Int = number | { toString(): string };
const num = (v: Int | null | undefined): number => (typeof v === 'number' ? v : Number(v?.toString() ?? 0));

function floats(tensor: OnnxTypes.ITensorProto): Float32Array {
  const count = (tensor.dims ?? []).reduce<number>((a, d) => a * num(d), 1);
  if (tensor.dataType !== onnx.TensorProto.DataType.FLOAT) {
    // Shape and axis constants (int64) are read as numbers too; nothing learned is stored that way.
    const ints = tensor.int64Data?.length ? tensor.int64Data.map(num) : readInt64(tensor.rawData);
    return Float32Array.from(ints);
  }
  if (tensor.rawData?.length) {
    if (tensor.rawData.length !== count * 4) throw new WeightImportError(`tensor '${tensor.name}' holds ${tensor.rawData.length} bytes for ${count} floats`);
    const view = new DataView(tensor.rawData.buffer, tensor.rawData.byteOffset, tensor.rawData.byteLength);
    return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  }
  if ((tensor.floatData?.length ?? 0) !== count) throw new WeightImportError(`tensor '${tensor.name}' holds ${tensor.floatData?.length ?? 0} floats for ${count}`);
  return Float32Array.from(tensor.floatData!);
}

function readInt64(raw: Uint8Array | null | undefined): number[] {
  if (!raw?.length) return [];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: raw.length / 8 }, (_, i) => Number(view.getBigInt64(8 * i, true)));
}

function attributes(node: OnnxTypes.INodeProto): Map<string, OnnxTypes.IAttributeProto> {
  return new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
}

/** A layer as it is being read: a convolution's batch norm, or a dense layer's bias, may come in a later node. */
type WithNorm = FileLayer & { norm?: FoldedNorm; denseBias?: Float32Array };

export function readOnnxClassifier(file: Uint8Array): FileClassifier {
  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(file);
  } catch (err) {
    throw new WeightImportError(`not an ONNX model: ${(err as Error).message}`);
  }
  const graph = model.graph;
  if (!graph?.node?.length) throw new WeightImportError('the ONNX model has no graph');
  const constants = new Map<string, Constant>();
  const learned = new Set<string>();
  for (const t of graph.initializer ?? []) {
    constants.set(t.name ?? '', { dims: (t.dims ?? []).map(num), values: floats(t) });
    learned.add(t.name ?? '');
  }
  const used = new Set<string>();
  const constant = (name: string | undefined, what: string): Constant => {
    const c = name ? constants.get(name) : undefined;
    if (!c) throw new WeightImportError(`${what}: input '${name}' is not a constant`);
    used.add(name!);
    return c;
  };

  const input = (graph.input ?? []).find((i) => !constants.has(i.name ?? ''));
  const dims = input?.type?.tensorType?.shape?.dim ?? [];
  if (dims.length !== 4 || num(dims[1]?.dimValue) !== 3) throw new WeightImportError(`the input '${input?.name}' is not NCHW with 3 channels`);
  const [h, w] = [num(dims[2]?.dimValue), num(dims[3]?.dimValue)];

  const backbone: WithNorm[] = [];
  const head: WithNorm[] = [];
  /** The file layer whose output each tensor is (through batch norm and activations). */
  const origin = new Map<string, WithNorm | 'other'>([[input!.name ?? '', 'other']]);
  const layerOf = (tensor: string, what: string): WithNorm => {
    const o = origin.get(tensor);
    if (!o || o === 'other') throw new WeightImportError(`${what} reads '${tensor}', which is not a convolution's or dense layer's output`);
    return o;
  };
  let pooled = false;
  let softmax = false;
  let adds = 0;

  const dense = (what: string, weight: Constant, transposed: boolean, alpha: number): WithNorm => {
    if (!pooled) throw new WeightImportError(`${what} comes before the global pool`);
    if (weight.dims.length !== 2) throw new WeightImportError(`${what}: weight [${weight.dims}] is not a matrix`);
    const layer: WithNorm = {
      source: `${what} weight [${weight.dims}]`,
      depthwise: false,
      // [out, in] is the OHWI filter of a 1x1 convolution, [in, out] its HWIO one.
      filterShape: transposed ? [weight.dims[0]!, 1, 1, weight.dims[1]!] : [1, 1, ...weight.dims],
      layout: transposed ? 'OHWI' : 'HWIO',
      stride: 1,
      dilation: 1,
      padding: 'valid',
      activation: 'none',
      values: () => ({
        filter: alpha === 1 ? weight.values : weight.values.map((v) => v * alpha),
        bias: layer.denseBias ?? new Float32Array(transposed ? weight.dims[0]! : weight.dims[1]!),
      }),
    };
    head.push(layer);
    return layer;
  };

  for (const node of graph.node) {
    const what = `node '${node.name}' (${node.opType})`;
    const a = attributes(node);
    const [x = '', second, third] = node.input ?? [];
    const out = node.output?.[0] ?? '';
    const f = (name: string, fallback: number) => (a.has(name) ? a.get(name)!.f ?? fallback : fallback);
    const i = (name: string, fallback: number) => (a.has(name) ? num(a.get(name)!.i) : fallback);
    const ints = (name: string) => a.get(name)?.ints?.map(num);
    switch (node.opType) {
      case 'Constant': {
        const value = a.get('value')?.t;
        if (!value) throw new WeightImportError(`${what} holds no tensor`);
        constants.set(out, { dims: (value.dims ?? []).map(num), values: floats(value) });
        break;
      }
      case 'Conv': {
        if (pooled) throw new WeightImportError(`${what} comes after the global pool`);
        const weight = constant(second, what);
        const bias = third ? constant(third, what) : undefined;
        const [o, inPerGroup, kh, kw] = weight.dims as [number, number, number, number];
        const group = i('group', 1);
        const depthwise = group > 1 && inPerGroup === 1 && group === o;
        if (group !== 1 && !depthwise) throw new WeightImportError(`${what} is a grouped convolution (${group} groups), neither regular nor depthwise`);
        const [sh, sw] = ints('strides') ?? [1, 1];
        const [dh, dw] = ints('dilations') ?? [1, 1];
        if (sh !== sw || dh !== dw || kh !== kw) throw new WeightImportError(`${what} is not square (kernel ${kh}x${kw}, strides ${sh}x${sw}, dilations ${dh}x${dw})`);
        const autoPad = a.get('auto_pad')?.s ? new TextDecoder().decode(a.get('auto_pad')!.s!) : 'NOTSET';
        const padding: Pads | 'same' | 'valid' = autoPad === 'SAME_UPPER' ? 'same' : autoPad === 'VALID' ? 'valid'
          : autoPad === 'NOTSET' ? ((ints('pads') ?? [0, 0, 0, 0]) as unknown as Pads)
          : (() => {
            throw new WeightImportError(`${what} pads ${autoPad}`);
          })();
        const layer: WithNorm = {
          source: `${what} weight [${weight.dims}]`,
          depthwise,
          filterShape: weight.dims,
          layout: 'OIHW',
          stride: sh!,
          dilation: dh!,
          padding,
          activation: 'none',
          values: () => foldedValues(weight.values, bias?.values, layer.norm, o),
        };
        backbone.push(layer);
        origin.set(out, layer);
        break;
      }
      case 'BatchNormalization': {
        const layer = layerOf(x, what);
        if (layer.norm || layer.activation !== 'none') throw new WeightImportError(`${what} normalizes after an activation or a second time`);
        const [gamma, beta, mean, variance] = (node.input ?? []).slice(1).map((n) => constant(n, what).values) as Float32Array[];
        const epsilon = f('epsilon', 1e-5);
        const scale = variance!.map((v, c) => gamma![c]! / Math.sqrt(v + epsilon));
        layer.norm = { scale, shift: mean!.map((m, c) => beta![c]! - m * scale[c]!) };
        origin.set(out, layer);
        break;
      }
      case 'Clip':
      case 'Relu': {
        const layer = layerOf(x, what);
        let activation: Activation | undefined = 'relu';
        if (node.opType === 'Clip') {
          // Opset 11 on: bounds are inputs; before, attributes.
          const bound = (input: string | undefined, attr: string, fallback: number) =>
            input ? constant(input, what).values[0]! : f(attr, fallback);
          const [min, max] = [bound(second, 'min', -Infinity), bound(third, 'max', Infinity)];
          activation = min === 0 && max === 6 ? 'relu6' : min === 0 && max === Infinity ? 'relu' : undefined;
          if (!activation) throw new WeightImportError(`${what} clips to [${min}, ${max}], neither ReLU nor ReLU6`);
        }
        if (layer.activation !== 'none') throw new WeightImportError(`${what} follows another activation`);
        layer.activation = activation;
        origin.set(out, layer);
        break;
      }
      case 'Add': {
        const bias = [second, x].find((n) => n !== undefined && constants.has(n));
        if (bias !== undefined) {
          // MatMul + Add: the dense layer's bias.
          const layer = layerOf(bias === x ? second! : x, what);
          if (layer.denseBias || layer.activation !== 'none' || !head.includes(layer)) throw new WeightImportError(`${what} adds a constant where no dense layer takes one`);
          layer.denseBias = constant(bias, what).values;
          origin.set(out, layer);
        } else {
          adds++;
          origin.set(out, 'other');
        }
        break;
      }
      case 'GlobalAveragePool':
      case 'ReduceMean': {
        if (node.opType === 'ReduceMean' && (ints('axes') ?? (second ? [...constant(second, what).values] : [])).sort().join() !== '2,3') {
          throw new WeightImportError(`${what} averages axes other than height and width`);
        }
        if (pooled) throw new WeightImportError(`${what} pools a second time`);
        pooled = true;
        origin.set(out, 'other');
        break;
      }
      case 'Flatten':
      case 'Reshape':
      case 'Squeeze':
      case 'Dropout':
      case 'Identity':
        if (second && constants.has(second)) used.add(second);
        origin.set(out, origin.get(x) ?? 'other');
        break;
      case 'Gemm': {
        if (i('transA', 0) !== 0) throw new WeightImportError(`${what} transposes its input`);
        const layer = dense(what, constant(second, what), i('transB', 0) === 1, f('alpha', 1));
        if (third) {
          const beta = f('beta', 1);
          layer.denseBias = constant(third, what).values.map((v) => v * beta);
        }
        origin.set(out, layer);
        break;
      }
      case 'MatMul':
        origin.set(out, dense(what, constant(second, what), false, 1));
        break;
      case 'Softmax':
        layerOf(x, what);
        softmax = true;
        origin.set(out, origin.get(x)!);
        break;
      default:
        throw new WeightImportError(`${what} is not part of a MobileNetV2 classifier`);
    }
  }
  return {
    inputSize: h > 0 && w > 0 ? [h, w] : undefined,
    backbone,
    head,
    softmax,
    adds,
    unused: [...learned].filter((n) => !used.has(n)),
  };
}
