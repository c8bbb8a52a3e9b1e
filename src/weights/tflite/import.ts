// Maps the convolutions of a TFLite classifier onto our graph, in execution order, checking
// every tensor's shape and every convolution's stride, padding and activation on the way.
import { elementCount, isDepthwise, type Conv2dOp, type Graph, type Node } from '../../model/graph.js';
import { filterShape, tfliteLayout, toOIHW, WeightImportError, type ImportedWeights, type InputQuantization } from '../common.js';
import { BuiltinOp, readTflite, type TfliteModel, type TfliteOperator, type TfliteTensor } from './reader.js';

export function importTfliteWeights(graph: Graph, file: Uint8Array): ImportedWeights {
  const model = readTflite(file);
  const convOps = model.operators.filter(
    (op) => op.builtinCode === BuiltinOp.CONV_2D || op.builtinCode === BuiltinOp.DEPTHWISE_CONV_2D,
  );
  const convNodes = graph.nodes.filter((n): n is Node<Conv2dOp> => n.kind === 'conv2d');
  if (convOps.length !== convNodes.length) {
    throw new WeightImportError(
      `graph ${graph.name} has ${convNodes.length} convolutions but the file has ${convOps.length}`,
    );
  }
  const weights = new Map<string, Float32Array>();
  convNodes.forEach((node, i) => importConv(node, convOps[i]!, model, weights));
  return { weights, input: inputQuantization(model) };
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
