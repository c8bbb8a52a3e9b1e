// Emits an ONNX model (opset 13) from the graph description. The ONNX input is NHWC like the
// engine contract; a leading Transpose gives the NCHW layout ONNX convolutions use. With
// activation ranges it emits the int8 model as QuantizeLinear/DequantizeLinear pairs
// (./quantize.ts), which ONNX Runtime fuses into its integer kernels.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { paddingOf, type Graph, type Node, type Weights } from '../../model/graph.js';
import { activationQuantization, quantizeBias, quantizeWeights, type ActivationRanges } from './quantize.js';

const { onnx } = onnxProto;
const OPSET = 13;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const BATCH = 'batch';

type Attr = OnnxTypes.IAttributeProto;
const ints = (name: string, values: number[]): Attr => ({ name, ints: values, type: onnx.AttributeProto.AttributeType.INTS });
const int = (name: string, value: number): Attr => ({ name, i: value, type: onnx.AttributeProto.AttributeType.INT });

const str = (name: string, value: string): Attr => ({ name, s: new TextEncoder().encode(value), type: onnx.AttributeProto.AttributeType.STRING });

function int64Tensor(name: string, values: readonly number[]): OnnxTypes.ITensorProto {
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: [...values] };
}

function typedTensor(name: string, dims: readonly number[], dataType: number, values: Float32Array | Int32Array | Int8Array | Uint8Array): OnnxTypes.ITensorProto {
  return { name, dims: [...dims], dataType, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function floatTensor(name: string, dims: readonly number[], values: Float32Array): OnnxTypes.ITensorProto {
  return {
    name,
    dims: [...dims],
    dataType: FLOAT,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

function valueInfo(name: string, dims: (number | string)[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

interface Quantizer {
  /** The scale and zero point of a quantized tensor; undefined for one left in float. */
  of(tensor: string): { scale: number; zeroPoint: number } | undefined;
  /** What a reader of the tensor reads: the dequantized copy of a quantized one. */
  read(tensor: string): string;
}

/** ONNX nodes and initializers for one graph node; its final ONNX output is named after it. */
function emitNode(node: Node, weights: Weights, shapeOf: (name: string) => readonly number[], quantizer: Quantizer) {
  const nodes: OnnxTypes.INodeProto[] = [];
  const initializers: OnnxTypes.ITensorProto[] = [];
  const values = (spec: { name: string }) => weights.get(spec.name) ?? (() => {
    throw new Error(`no weights for ${spec.name}`);
  })();
  const param = (spec: { name: string; shape: readonly number[] }) => {
    initializers.push(floatTensor(spec.name, spec.shape, values(spec)));
    return spec.name;
  };
  const read = (tensor: string) => quantizer.read(tensor);
  // int8 weights per output channel and int32 biases at input scale x weight scale, each behind a
  // DequantizeLinear: the pattern ONNX Runtime's QDQ fusion turns into QLinearConv.
  const quantizedParams = (conv: Node<Extract<Node, { kind: 'conv2d' }>>, inputScale: number) => {
    const { weight, bias } = conv;
    const w = quantizeWeights(values(weight), weight.shape[0]!);
    const b = quantizeBias(values(bias), inputScale, w.scales);
    const channels = [weight.shape[0]!];
    initializers.push(
      typedTensor(`${weight.name}/int8`, weight.shape, onnx.TensorProto.DataType.INT8, w.values),
      floatTensor(`${weight.name}/scale`, channels, w.scales),
      typedTensor(`${weight.name}/zero`, channels, onnx.TensorProto.DataType.INT8, new Int8Array(channels[0]!)),
      typedTensor(`${bias.name}/int32`, bias.shape, onnx.TensorProto.DataType.INT32, b.values),
      floatTensor(`${bias.name}/scale`, channels, b.scales),
      typedTensor(`${bias.name}/zero`, channels, onnx.TensorProto.DataType.INT32, new Int32Array(channels[0]!)),
    );
    nodes.push(
      { name: `${weight.name}/dq`, opType: 'DequantizeLinear', input: [`${weight.name}/int8`, `${weight.name}/scale`, `${weight.name}/zero`], output: [weight.name], attribute: [int('axis', 0)] },
      { name: `${bias.name}/dq`, opType: 'DequantizeLinear', input: [`${bias.name}/int32`, `${bias.name}/scale`, `${bias.name}/zero`], output: [bias.name], attribute: [int('axis', 0)] },
    );
    return [weight.name, bias.name];
  };
  switch (node.kind) {
    case 'input':
      break;
    case 'conv2d': {
      const [, height, width] = shapeOf(node.inputs[0]!) as [number, number, number];
      const [top, bottom] = paddingOf(height, node);
      const [left, right] = paddingOf(width, node);
      const convOut = node.activation === 'none' ? node.name : `${node.name}/conv`;
      const input = quantizer.of(node.inputs[0]!);
      nodes.push({
        name: `${node.name}/conv`,
        opType: 'Conv',
        input: [read(node.inputs[0]!), ...(input ? quantizedParams(node, input.scale) : [param(node.weight), param(node.bias)])],
        output: [convOut],
        attribute: [
          ints('kernel_shape', [node.kernel, node.kernel]),
          ints('strides', [node.stride, node.stride]),
          ints('dilations', [node.dilation, node.dilation]),
          ints('pads', [top, left, bottom, right]),
          int('group', node.groups),
        ],
      });
      if (node.activation === 'relu') nodes.push({ name: `${node.name}/relu`, opType: 'Relu', input: [convOut], output: [node.name] });
      if (node.activation === 'relu6') {
        initializers.push(floatTensor(`${node.name}/min`, [], Float32Array.of(0)), floatTensor(`${node.name}/max`, [], Float32Array.of(6)));
        nodes.push({ name: `${node.name}/relu6`, opType: 'Clip', input: [convOut, `${node.name}/min`, `${node.name}/max`], output: [node.name] });
      }
      break;
    }
    case 'add':
      nodes.push({ name: node.name, opType: 'Add', input: node.inputs.map(read), output: [node.name] });
      break;
    case 'globalAvgPool':
      nodes.push({ name: node.name, opType: 'GlobalAveragePool', input: node.inputs.map(read), output: [node.name] });
      break;
    case 'sigmoid':
      nodes.push({ name: node.name, opType: 'Sigmoid', input: node.inputs.map(read), output: [node.name] });
      break;
    case 'concat':
      nodes.push({ name: node.name, opType: 'Concat', input: node.inputs.map(read), output: [node.name], attribute: [int('axis', node.axis + 1)] });
      break;
    case 'transpose':
      nodes.push({ name: node.name, opType: 'Transpose', input: node.inputs.map(read), output: [node.name], attribute: [ints('perm', [0, ...node.perm.map((p) => p + 1)])] });
      break;
    case 'reshape':
      // 0 copies the batch dimension from the input.
      initializers.push(int64Tensor(`${node.name}/shape`, [0, ...node.shape]));
      nodes.push({ name: node.name, opType: 'Reshape', input: [read(node.inputs[0]!), `${node.name}/shape`], output: [node.name] });
      break;
    case 'resizeBilinear': {
      // Output sizes are [batch, channels] of the input followed by the static [h, w]; sizes,
      // unlike scales, leave no rounding to chance.
      initializers.push(
        int64Tensor(`${node.name}/starts`, [0]), int64Tensor(`${node.name}/ends`, [2]),
        int64Tensor(`${node.name}/hw`, node.shape.slice(1)),
      );
      nodes.push(
        { name: `${node.name}/shape`, opType: 'Shape', input: [read(node.inputs[0]!)], output: [`${node.name}/shape`] },
        { name: `${node.name}/nc`, opType: 'Slice', input: [`${node.name}/shape`, `${node.name}/starts`, `${node.name}/ends`], output: [`${node.name}/nc`] },
        { name: `${node.name}/sizes`, opType: 'Concat', input: [`${node.name}/nc`, `${node.name}/hw`], output: [`${node.name}/sizes`], attribute: [int('axis', 0)] },
        {
          name: node.name,
          opType: 'Resize',
          input: [read(node.inputs[0]!), '', '', `${node.name}/sizes`],
          output: [node.name],
          attribute: [str('mode', 'linear'), str('coordinate_transformation_mode', node.coordinates)],
        },
      );
      break;
    }
    case 'argmax':
      nodes.push(
        { name: `${node.name}/argmax`, opType: 'ArgMax', input: node.inputs.map(read), output: [`${node.name}/int64`], attribute: [int('axis', 1), int('keepdims', 0)] },
        { name: node.name, opType: 'Cast', input: [`${node.name}/int64`], output: [node.name], attribute: [int('to', FLOAT)] },
      );
      break;
    case 'channelSoftmax': {
      // exp(x - max) / sum, each over the channels: measured at 7-20 ms on a 257 MF graph where
      // ONNX Runtime's Softmax on axis 1, or over NHWC between two transposes, took 55-60 ms.
      initializers.push(int64Tensor(`${node.name}/axes`, [1]));
      const x = read(node.inputs[0]!);
      nodes.push(
        { name: `${node.name}/max`, opType: 'ReduceMax', input: [x], output: [`${node.name}/max`], attribute: [ints('axes', [1]), int('keepdims', 1)] },
        { name: `${node.name}/shifted`, opType: 'Sub', input: [x, `${node.name}/max`], output: [`${node.name}/shifted`] },
        { name: `${node.name}/exp`, opType: 'Exp', input: [`${node.name}/shifted`], output: [`${node.name}/exp`] },
        { name: `${node.name}/sum`, opType: 'ReduceSum', input: [`${node.name}/exp`, `${node.name}/axes`], output: [`${node.name}/sum`], attribute: [int('keepdims', 1)] },
        { name: node.name, opType: 'Div', input: [`${node.name}/exp`, `${node.name}/sum`], output: [node.name] },
      );
      break;
    }
    case 'softmax':
      nodes.push(
        { name: `${node.name}/flatten`, opType: 'Flatten', input: node.inputs.map(read), output: [`${node.name}/flat`], attribute: [int('axis', 1)] },
        { name: node.name, opType: 'Softmax', input: [`${node.name}/flat`], output: [node.name], attribute: [int('axis', 1)] },
      );
      break;
  }
  return { nodes, initializers };
}

export interface EmitOptions {
  /** Each quantized tensor's calibrated range (./quantize.ts): given, the model is int8. */
  quantization?: ActivationRanges;
  /** Tensors to output besides the graph's own, in float (calibration reads them). */
  extraOutputs?: readonly string[];
}

export function emitOnnx(graph: Graph, weights: Weights, options: EmitOptions = {}): Uint8Array {
  const shapes = new Map(graph.nodes.map((n) => [n.name, n.shape]));
  const shapeOf = (name: string) => shapes.get(name)!;
  const nodes: OnnxTypes.INodeProto[] = [];
  const initializers: OnnxTypes.ITensorProto[] = [];
  const quantized = new Map(Object.entries(options.quantization ?? {}).map(([name, range]) => [name, activationQuantization(range)]));
  // A quantized graph output is its dequantized value, as quantize_static makes it: the node that
  // makes it then fuses too (the pooled features: QLinearGlobalAveragePool, in integers).
  const outputs = new Set(graph.outputs);
  const dequantized = (tensor: string) => (outputs.has(tensor) ? tensor : `${tensor}/dq`);
  const made = (tensor: string) => (quantized.has(tensor) && outputs.has(tensor) ? `${tensor}/float` : tensor);
  const quantizer: Quantizer = { of: (tensor) => quantized.get(tensor), read: (tensor) => (quantized.has(tensor) ? dequantized(tensor) : tensor) };
  // Each quantized tensor: QuantizeLinear to uint8 and DequantizeLinear back, right where it is made.
  const quantize = (tensor: string) => {
    const q = quantized.get(tensor);
    if (!q) return;
    initializers.push(
      floatTensor(`${tensor}/scale`, [], Float32Array.of(q.scale)),
      typedTensor(`${tensor}/zero`, [], onnx.TensorProto.DataType.UINT8, Uint8Array.of(q.zeroPoint)),
    );
    nodes.push(
      { name: `${tensor}/quantize`, opType: 'QuantizeLinear', input: [made(tensor), `${tensor}/scale`, `${tensor}/zero`], output: [`${tensor}/q`] },
      { name: `${tensor}/dequantize`, opType: 'DequantizeLinear', input: [`${tensor}/q`, `${tensor}/scale`, `${tensor}/zero`], output: [dequantized(tensor)] },
    );
  };
  const inputs = graph.inputs.map((name) => {
    const [c, h, w] = shapeOf(name) as [number, number, number];
    nodes.push({ name: `${name}/nchw`, opType: 'Transpose', input: [`${name}/nhwc`], output: [name], attribute: [ints('perm', [0, 3, 1, 2])] });
    return valueInfo(`${name}/nhwc`, [BATCH, h, w, c]);
  });
  for (const node of graph.nodes) {
    const emitted = emitNode(node, weights, shapeOf, quantizer);
    for (const n of emitted.nodes) n.output = n.output!.map((o) => (o === node.name ? made(o) : o));
    nodes.push(...emitted.nodes);
    initializers.push(...emitted.initializers);
    quantize(node.name);
  }
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'mobilenet-serving',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: graph.name,
      node: nodes,
      initializer: initializers,
      input: inputs,
      output: [...graph.outputs, ...(options.extraOutputs ?? [])].map((name) => valueInfo(name, [BATCH, ...shapeOf(name)])),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The ONNX input name for a graph input. */
export const onnxInputName = (graphInput: string): string => `${graphInput}/nhwc`;
