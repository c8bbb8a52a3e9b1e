// Emits an ONNX model (opset 13) from the graph description. The ONNX input is NHWC like the
// engine contract; a leading Transpose gives the NCHW layout ONNX convolutions use.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { paddingOf, type Graph, type Node, type Weights } from '../../model/graph.js';

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

/** ONNX nodes and initializers for one graph node; its final ONNX output is named after it. */
function emitNode(node: Node, weights: Weights, shapeOf: (name: string) => readonly number[]) {
  const nodes: OnnxTypes.INodeProto[] = [];
  const initializers: OnnxTypes.ITensorProto[] = [];
  const param = (spec: { name: string; shape: readonly number[] }) => {
    const values = weights.get(spec.name);
    if (!values) throw new Error(`no weights for ${spec.name}`);
    initializers.push(floatTensor(spec.name, spec.shape, values));
    return spec.name;
  };
  switch (node.kind) {
    case 'input':
      break;
    case 'conv2d': {
      const [, height, width] = shapeOf(node.inputs[0]!) as [number, number, number];
      const [top, bottom] = paddingOf(height, node);
      const [left, right] = paddingOf(width, node);
      const convOut = node.activation === 'none' ? node.name : `${node.name}/conv`;
      nodes.push({
        name: `${node.name}/conv`,
        opType: 'Conv',
        input: [node.inputs[0]!, param(node.weight), param(node.bias)],
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
      nodes.push({ name: node.name, opType: 'Add', input: [...node.inputs], output: [node.name] });
      break;
    case 'globalAvgPool':
      nodes.push({ name: node.name, opType: 'GlobalAveragePool', input: [...node.inputs], output: [node.name] });
      break;
    case 'sigmoid':
      nodes.push({ name: node.name, opType: 'Sigmoid', input: [...node.inputs], output: [node.name] });
      break;
    case 'concat':
      nodes.push({ name: node.name, opType: 'Concat', input: [...node.inputs], output: [node.name], attribute: [int('axis', node.axis + 1)] });
      break;
    case 'transpose':
      nodes.push({ name: node.name, opType: 'Transpose', input: [...node.inputs], output: [node.name], attribute: [ints('perm', [0, ...node.perm.map((p) => p + 1)])] });
      break;
    case 'reshape':
      // 0 copies the batch dimension from the input.
      initializers.push(int64Tensor(`${node.name}/shape`, [0, ...node.shape]));
      nodes.push({ name: node.name, opType: 'Reshape', input: [node.inputs[0]!, `${node.name}/shape`], output: [node.name] });
      break;
    case 'resizeBilinear': {
      // Output sizes are [batch, channels] of the input followed by the static [h, w]; sizes,
      // unlike scales, leave no rounding to chance.
      initializers.push(
        int64Tensor(`${node.name}/starts`, [0]), int64Tensor(`${node.name}/ends`, [2]),
        int64Tensor(`${node.name}/hw`, node.shape.slice(1)),
      );
      nodes.push(
        { name: `${node.name}/shape`, opType: 'Shape', input: [node.inputs[0]!], output: [`${node.name}/shape`] },
        { name: `${node.name}/nc`, opType: 'Slice', input: [`${node.name}/shape`, `${node.name}/starts`, `${node.name}/ends`], output: [`${node.name}/nc`] },
        { name: `${node.name}/sizes`, opType: 'Concat', input: [`${node.name}/nc`, `${node.name}/hw`], output: [`${node.name}/sizes`], attribute: [int('axis', 0)] },
        {
          name: node.name,
          opType: 'Resize',
          input: [node.inputs[0]!, '', '', `${node.name}/sizes`],
          output: [node.name],
          attribute: [str('mode', 'linear'), str('coordinate_transformation_mode', node.coordinates)],
        },
      );
      break;
    }
    case 'argmax':
      nodes.push(
        { name: `${node.name}/argmax`, opType: 'ArgMax', input: [...node.inputs], output: [`${node.name}/int64`], attribute: [int('axis', 1), int('keepdims', 0)] },
        { name: node.name, opType: 'Cast', input: [`${node.name}/int64`], output: [node.name], attribute: [int('to', FLOAT)] },
      );
      break;
    case 'channelSoftmax': {
      // exp(x - max) / sum, each over the channels: measured at 7-20 ms on a 257 MF graph where
      // ONNX Runtime's Softmax on axis 1, or over NHWC between two transposes, took 55-60 ms.
      initializers.push(int64Tensor(`${node.name}/axes`, [1]));
      const x = node.inputs[0]!;
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
        { name: `${node.name}/flatten`, opType: 'Flatten', input: [...node.inputs], output: [`${node.name}/flat`], attribute: [int('axis', 1)] },
        { name: node.name, opType: 'Softmax', input: [`${node.name}/flat`], output: [node.name], attribute: [int('axis', 1)] },
      );
      break;
  }
  return { nodes, initializers };
}

export function emitOnnx(graph: Graph, weights: Weights): Uint8Array {
  const shapes = new Map(graph.nodes.map((n) => [n.name, n.shape]));
  const shapeOf = (name: string) => shapes.get(name)!;
  const nodes: OnnxTypes.INodeProto[] = [];
  const initializers: OnnxTypes.ITensorProto[] = [];
  const inputs = graph.inputs.map((name) => {
    const [c, h, w] = shapeOf(name) as [number, number, number];
    nodes.push({ name: `${name}/nchw`, opType: 'Transpose', input: [`${name}/nhwc`], output: [name], attribute: [ints('perm', [0, 3, 1, 2])] });
    return valueInfo(`${name}/nhwc`, [BATCH, h, w, c]);
  });
  for (const node of graph.nodes) {
    const emitted = emitNode(node, weights, shapeOf);
    nodes.push(...emitted.nodes);
    initializers.push(...emitted.initializers);
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
      output: graph.outputs.map((name) => valueInfo(name, [BATCH, ...shapeOf(name)])),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The ONNX input name for a graph input. */
export const onnxInputName = (graphInput: string): string => `${graphInput}/nhwc`;
