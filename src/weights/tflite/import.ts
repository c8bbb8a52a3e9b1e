// A TFLite classifier as the neutral description (../classifier.ts): the convolutions before the
// global pool (AVERAGE_POOL_2D over the whole map, or MEAN), the 1x1 convolutions or
// FULLY_CONNECTED layers after it, and whether it ends in SOFTMAX; mapped onto our graph from
// there. And one TFLite convolution onto one node, as DeepLab's importer matches them by scope.
import { elementCount, isDepthwise, type Activation, type Conv2dOp, type Graph, type Node } from '../../model/graph.js';
import { importClassifier, type FileClassifier, type FileLayer } from '../classifier.js';
import { filterShape, tfliteLayout, toOIHW, WeightImportError, type FilterLayout, type ImportedWeights, type InputQuantization } from '../common.js';
import { BuiltinOp, readTflite, type TfliteModel, type TfliteOperator, type TfliteTensor } from './reader.js';

/** A TFLite classifier's weights on our graph (any width, resolution, head and class count); the input must be quantized. */
export function importTfliteWeights(graph: Graph, file: Uint8Array): ImportedWeights {
  const { weights, input } = importClassifier(graph, readTfliteClassifier(file));
  if (!input) throw new WeightImportError(`graph ${graph.name}: the file's input is not uint8, so it does not say how pixels are normalized`);
  return { weights, input };
}

/**
 * Checks one TFLite convolution against a graph node (geometry, filter and bias shapes) and
 * stores its filter (as OIHW) and bias, dequantized, under the node's parameter names.
 */
export function importConv(node: Node<Conv2dOp>, op: TfliteOperator, model: TfliteModel, weights: Map<string, Float32Array>): void {
  checkGeometry(node, op, model);
  const [filter, bias] = [op.inputs[1], op.inputs[2]].map((t) => (t === undefined || t < 0 ? undefined : model.tensors[t]));
  if (!filter || !bias) throw new WeightImportError(`layer ${node.name}: operator ${op.index} lacks a filter or bias tensor`);
  const kind = (depthwise: boolean) => (depthwise ? 'a depthwise' : 'a regular');
  if ((op.builtinCode === BuiltinOp.DEPTHWISE_CONV_2D) !== isDepthwise(node)) {
    throw new WeightImportError(`layer ${node.name} is ${kind(isDepthwise(node))} convolution but operator ${op.index} (${describe(filter)}) is ${kind(!isDepthwise(node))} one`);
  }
  const layout = tfliteLayout(node);
  weights.set(node.weight.name, toOIHW(node, checked(filterShape(node, layout), filter, node.name), layout));
  weights.set(node.bias.name, checked(node.bias.shape, bias, node.name));
}

/**
 * How the file's input expects pixels: a uint8 input says it with its quantization; a float32
 * input says nothing in the tensor, so the caller names the normalization its publisher documents.
 */
export function inputQuantization(model: TfliteModel, floatInput?: InputQuantization): InputQuantization {
  const input = model.tensors[model.inputs[0]!]!;
  const q = input.quantization;
  if (input.type === 'float32' && floatInput) return floatInput;
  if (input.type !== 'uint8' || !q) {
    throw new WeightImportError(`input tensor ${input.name} is ${input.type}; only uint8 quantized inputs${floatInput ? ' and float32' : ''} are supported`);
  }
  return { scale: q.scale[0]!, zeroPoint: Number(q.zeroPoint[0] ?? 0n) };
}

export function describe(t: TfliteTensor): string {
  return `tensor ${t.index} '${t.name.split(';')[0]}' ${JSON.stringify(t.shape)}`;
}

function checkGeometry(node: Node<Conv2dOp>, op: TfliteOperator, model: TfliteModel): void {
  const o = op.conv;
  const wanted = { padding: node.padding, stride: node.stride, dilation: node.dilation, activation: node.activation };
  const found = o && { padding: o.padding, stride: o.strideH, dilation: o.dilationH, activation: o.activation };
  const filter = model.tensors[op.inputs[1]!];
  if (!o || o.strideW !== o.strideH || o.dilationW !== o.dilationH || JSON.stringify(wanted) !== JSON.stringify(found)) {
    throw new WeightImportError(
      `layer ${node.name} expects ${JSON.stringify(wanted)} but operator ${op.index}` +
        `${filter ? ` (${describe(filter)})` : ''} has ${JSON.stringify(found)}`,
    );
  }
}

/** Shape-checks a constant tensor and returns it as float32. */
function checked(expected: readonly number[], tensor: TfliteTensor, layer: string): Float32Array {
  if (JSON.stringify(expected) !== JSON.stringify(tensor.shape)) {
    throw new WeightImportError(`layer ${layer} expects ${JSON.stringify(expected)} but ${describe(tensor)} does not match`);
  }
  if (!tensor.data) throw new WeightImportError(`layer ${layer}: ${describe(tensor)} has no data`);
  return dequantize(tensor, elementCount(tensor.shape), layer);
}

export function dequantize(tensor: TfliteTensor, count: number, layer: string): Float32Array {
  const bytes = tensor.data!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = { float32: 4, int32: 4, uint8: 1, int8: 1 }[tensor.type as 'float32'];
  if (!width || bytes.byteLength !== count * width) {
    throw new WeightImportError(`layer ${layer}: ${describe(tensor)} of type ${tensor.type} (${bytes.byteLength} bytes) cannot be read`);
  }
  const raw = (i: number): number => {
    switch (tensor.type) {
      case 'float32': return view.getFloat32(4 * i, true);
      case 'int32': return view.getInt32(4 * i, true);
      case 'uint8': return view.getUint8(i);
      default: return view.getInt8(i);
    }
  };
  const q = tensor.quantization;
  if (tensor.type === 'float32' || !q) return Float32Array.from({ length: count }, (_, i) => raw(i));
  // Per-channel scales run along q.axis; per-tensor is the one-scale case of the same formula.
  const channels = q.scale.length;
  const inner = tensor.shape.slice(q.axis + 1).reduce((a, b) => a * b, 1);
  if (channels !== 1 && channels !== tensor.shape[q.axis]) {
    throw new WeightImportError(`layer ${layer}: ${describe(tensor)} has ${channels} scales on axis ${q.axis}`);
  }
  return Float32Array.from({ length: count }, (_, i) => {
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    return q.scale[c]! * (raw(i) - Number(q.zeroPoint[c] ?? 0n));
  });
}

/** Operators that reshape or requantize without changing what the values mean. */
const PASS_THROUGH: ReadonlySet<number> = new Set([BuiltinOp.RESHAPE, BuiltinOp.SQUEEZE, BuiltinOp.QUANTIZE, BuiltinOp.DEQUANTIZE]);

function activationOf(op: TfliteOperator, activation: string | undefined, model: TfliteModel): Activation {
  if (activation === 'none' || activation === 'relu' || activation === 'relu6') return activation;
  throw new WeightImportError(`operator ${op.index} (${describe(model.tensors[op.outputs[0]!]!)}) has a fused activation this service does not run`);
}

function layerOf(op: TfliteOperator, model: TfliteModel): FileLayer {
  const [filter, bias] = [op.inputs[1], op.inputs[2]].map((t) => (t === undefined || t < 0 ? undefined : model.tensors[t]));
  if (!filter?.data || !bias?.data) throw new WeightImportError(`operator ${op.index} lacks a constant filter or bias tensor`);
  const dense = op.builtinCode === BuiltinOp.FULLY_CONNECTED;
  const depthwise = op.builtinCode === BuiltinOp.DEPTHWISE_CONV_2D;
  // A FULLY_CONNECTED weight [out, in] is the OHWI filter of a 1x1 convolution.
  const layout: FilterLayout = depthwise ? 'IHWO' : 'OHWI';
  const shape = dense ? [filter.shape[0]!, 1, 1, filter.shape[1]!] : filter.shape;
  const conv = op.conv;
  if (!dense && (!conv || conv.strideW !== conv.strideH || conv.dilationW !== conv.dilationH)) {
    throw new WeightImportError(`operator ${op.index} (${describe(filter)}) has unequal strides or dilations`);
  }
  return {
    source: describe(filter),
    depthwise,
    filterShape: shape,
    layout,
    stride: conv?.strideH ?? 1,
    dilation: conv?.dilationH ?? 1,
    padding: conv?.padding ?? 'valid',
    activation: activationOf(op, dense ? op.denseActivation : conv?.activation, model),
    values: () => ({
      filter: dequantize(filter, filter.shape.reduce((a, b) => a * b, 1), describe(filter)),
      bias: dequantize(bias, bias.shape.reduce((a, b) => a * b, 1), describe(bias)),
    }),
  };
}

export function readTfliteClassifier(file: Uint8Array): FileClassifier {
  const model = readTflite(file);
  const backbone: FileLayer[] = [];
  const head: FileLayer[] = [];
  let pooled = false;
  let softmax = false;
  let adds = 0;
  for (const op of model.operators) {
    if (softmax && !PASS_THROUGH.has(op.builtinCode)) throw new WeightImportError(`operator ${op.index} (builtin code ${op.builtinCode}) follows the softmax`);
    switch (op.builtinCode) {
      case BuiltinOp.CONV_2D:
      case BuiltinOp.DEPTHWISE_CONV_2D:
      case BuiltinOp.FULLY_CONNECTED:
        (pooled ? head : backbone).push(layerOf(op, model));
        if (!pooled && op.builtinCode === BuiltinOp.FULLY_CONNECTED) throw new WeightImportError(`operator ${op.index} is fully connected before the global pool`);
        break;
      case BuiltinOp.ADD:
        adds++;
        break;
      case BuiltinOp.AVERAGE_POOL_2D:
      case BuiltinOp.MEAN: {
        const [, h, w] = model.tensors[op.inputs[0]!]!.shape;
        const whole = op.builtinCode === BuiltinOp.MEAN || (op.pool?.padding === 'valid' && op.pool.filterH === h && op.pool.filterW === w);
        if (pooled || !whole) throw new WeightImportError(`operator ${op.index} pools ${describe(model.tensors[op.inputs[0]!]!)} but a classifier pools its last feature map once, whole`);
        pooled = true;
        break;
      }
      case BuiltinOp.SOFTMAX:
        softmax = true;
        break;
      default:
        if (!PASS_THROUGH.has(op.builtinCode)) {
          throw new WeightImportError(`operator ${op.index} (builtin code ${op.builtinCode}, output ${describe(model.tensors[op.outputs[0]!]!)}) is not part of a MobileNetV2 classifier`);
        }
    }
  }
  const input = model.tensors[model.inputs[0]!]!;
  const [, height, width] = input.shape;
  const read = new Set(model.operators.flatMap((op) => op.inputs));
  return {
    inputSize: height! > 0 && width! > 0 ? [height!, width!] : undefined,
    backbone,
    head,
    softmax,
    adds,
    unused: model.tensors.filter((t) => t.data && !read.has(t.index)).map(describe),
    input: input.type === 'uint8' ? inputQuantization(model) : undefined,
  };
}
