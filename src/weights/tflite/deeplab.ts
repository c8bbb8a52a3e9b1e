// Maps a DeepLabv3 + MobileNetV2 TFLite file onto our graph. Convolutions are matched by their
// TF-slim scope (the files do not run the head's branches in one order), and the rest of the
// file's structure is checked against the graph: input size, every bilinear resize (size and
// coordinate mode), the image pooling, the order of the concatenated branches, residual adds.
import type { DeepLabGraph } from '../../model/deeplab.js';
import type { Conv2dOp, Graph, Node, ResizeBilinearOp } from '../../model/graph.js';
import { slimBackboneScope, WeightImportError, type ImportedWeights, type InputQuantization } from '../common.js';
import { describe, importConv, inputQuantization } from './import.js';
import { BuiltinOp, readTflite, type TfliteModel, type TfliteOperator } from './reader.js';

/** Operators that only change the number format of a quantized file, not the values' meaning. */
const NUMERIC_ONLY: ReadonlySet<number> = new Set([BuiltinOp.QUANTIZE, BuiltinOp.DEQUANTIZE]);
const STRUCTURAL: ReadonlySet<number> = new Set([
  BuiltinOp.CONV_2D, BuiltinOp.DEPTHWISE_CONV_2D, BuiltinOp.ADD, BuiltinOp.AVERAGE_POOL_2D,
  BuiltinOp.RESIZE_BILINEAR, BuiltinOp.CONCATENATION, BuiltinOp.ARG_MAX,
]);

/** The TF-slim scope DeepLab's checkpoints use for one of our (Keras-named) convolutions. */
export function tfScope(layer: string): string {
  if (layer === 'logits_semantic') return 'logits/semantic';
  return slimBackboneScope(layer, 'MobilenetV2') ?? layer;
}

/** A filter tensor's scope: its name without the last component (`.../weights`, `.../Conv2D_Fold`). */
function scopeOfOperator(op: TfliteOperator, model: TfliteModel): string {
  const name = model.tensors[op.inputs[1]!]?.name.split(';')[0] ?? '';
  return name.slice(0, name.lastIndexOf('/'));
}

function coordinatesOf(op: TfliteOperator): ResizeBilinearOp['coordinates'] {
  if (op.resize?.alignCorners) return 'align_corners';
  return op.resize?.halfPixelCenters ? 'half_pixel' : 'asymmetric';
}

const nhwc = (shape: readonly number[]) => shape.slice(1, 3).join('x');

export function importDeepLabWeights(deepLab: DeepLabGraph, file: Uint8Array, floatInput?: InputQuantization): ImportedWeights {
  const { graph } = deepLab;
  const model = readTflite(file);
  const unknown = model.operators.find((op) => !STRUCTURAL.has(op.builtinCode) && !NUMERIC_ONLY.has(op.builtinCode));
  if (unknown) {
    throw new WeightImportError(`graph ${graph.name}: operator ${unknown.index} (builtin code ${unknown.builtinCode}, output ${describe(model.tensors[unknown.outputs[0]!]!)}) is not part of DeepLabv3`);
  }
  checkInput(deepLab, model);
  const weights = importConvolutions(graph, model);
  checkHead(deepLab, model);
  return { weights, input: inputQuantization(model, floatInput) };
}

function checkInput({ graph, input: ours }: DeepLabGraph, model: TfliteModel): void {
  const input = model.tensors[model.inputs[0]!]!;
  const [c, h, w] = ours.shape;
  if (JSON.stringify(input.shape) !== JSON.stringify([1, h, w, c])) {
    throw new WeightImportError(`graph ${graph.name} takes [1,${h},${w},${c}] but the file's input ${describe(input)} does not match`);
  }
}

function importConvolutions(graph: Graph, model: TfliteModel): Map<string, Float32Array> {
  const byScope = new Map<string, TfliteOperator>();
  for (const op of model.operators) {
    if (op.builtinCode !== BuiltinOp.CONV_2D && op.builtinCode !== BuiltinOp.DEPTHWISE_CONV_2D) continue;
    const scope = scopeOfOperator(op, model);
    if (byScope.has(scope)) throw new WeightImportError(`operators ${byScope.get(scope)!.index} and ${op.index} both belong to '${scope}'`);
    byScope.set(scope, op);
  }
  const weights = new Map<string, Float32Array>();
  for (const node of graph.nodes.filter((n): n is Node<Conv2dOp> => n.kind === 'conv2d')) {
    const scope = tfScope(node.name);
    const op = byScope.get(scope);
    if (!op) throw new WeightImportError(`layer ${node.name}: the file has no convolution '${scope}' (graph ${graph.name})`);
    importConv(node, op, model, weights);
    byScope.delete(scope);
  }
  const [extra] = byScope.values();
  if (extra) {
    throw new WeightImportError(`graph ${graph.name} has no layer for operator ${extra.index} (${describe(model.tensors[extra.inputs[1]!]!)})`);
  }
  return weights;
}

/** The convolution a tensor comes from, looking through resizes, pooling and requantization. */
function producingScope(tensor: number, model: TfliteModel, producers: Map<number, TfliteOperator>): string {
  const op = producers.get(tensor);
  if (!op) return `input ${tensor}`;
  if (op.builtinCode === BuiltinOp.CONV_2D || op.builtinCode === BuiltinOp.DEPTHWISE_CONV_2D) return scopeOfOperator(op, model);
  return producingScope(op.inputs[0]!, model, producers);
}

function producingConv(name: string, graph: Graph): string {
  const node = graph.nodes.find((n) => n.name === name)!;
  return node.kind === 'conv2d' || node.inputs.length === 0 ? node.name : producingConv(node.inputs[0]!, graph);
}

function checkHead({ graph, headResizes }: DeepLabGraph, model: TfliteModel): void {
  const ops = (code: number) => model.operators.filter((op) => op.builtinCode === code);
  const nodes = <K extends Node['kind']>(kind: K) => graph.nodes.filter((n): n is Node & { kind: K } => n.kind === kind);
  const shape = (tensor: number) => model.tensors[tensor]!.shape;
  const fail = (message: string): never => {
    throw new WeightImportError(`graph ${graph.name}: ${message}`);
  };

  // A resize to the size it already has is the identity in every coordinate mode; the files
  // keep one from DeepLab's multi-scale code path, our graph does not.
  const resizes = ops(BuiltinOp.RESIZE_BILINEAR).filter((op) => nhwc(shape(op.inputs[0]!)) !== nhwc(shape(op.outputs[0]!)));
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const ourResizes = headResizes.map((r) => byName.get(r.name) as Node<ResizeBilinearOp>);
  if (resizes.length !== ourResizes.length) fail(`has ${ourResizes.length} bilinear resizes but the file has ${resizes.length}`);
  resizes.forEach((op, i) => {
    const node = ourResizes[i]!;
    const found = { size: nhwc(shape(op.outputs[0]!)), coordinates: coordinatesOf(op) };
    const wanted = { size: node.shape.slice(1).join('x'), coordinates: node.coordinates };
    if (JSON.stringify(found) !== JSON.stringify(wanted)) {
      fail(`${node.name} resizes to ${JSON.stringify(wanted)} but operator ${op.index} (${describe(model.tensors[op.outputs[0]!]!)}) has ${JSON.stringify(found)}`);
    }
  });

  const pools = ops(BuiltinOp.AVERAGE_POOL_2D);
  if (pools.length !== nodes('globalAvgPool').length) fail(`has ${nodes('globalAvgPool').length} global average pools but the file has ${pools.length} average pools`);
  for (const op of pools) {
    const [, h, w] = shape(op.inputs[0]!);
    if (op.pool?.padding !== 'valid' || op.pool.filterH !== h || op.pool.filterW !== w) {
      fail(`operator ${op.index} pools ${JSON.stringify(op.pool)} over ${describe(model.tensors[op.inputs[0]!]!)}, not the whole map`);
    }
  }

  const producers = new Map(model.operators.flatMap((op) => op.outputs.map((t) => [t, op] as const)));
  const concats = ops(BuiltinOp.CONCATENATION);
  const ourConcats = nodes('concat');
  if (concats.length !== ourConcats.length) fail(`has ${ourConcats.length} concatenations but the file has ${concats.length}`);
  concats.forEach((op, i) => {
    const node = ourConcats[i]!;
    const found = op.inputs.map((t) => producingScope(t, model, producers));
    const wanted = node.inputs.map((input) => tfScope(producingConv(input, graph)));
    if (op.concatAxis !== 3 || node.axis !== 0 || JSON.stringify(found) !== JSON.stringify(wanted)) {
      fail(`${node.name} joins ${JSON.stringify(wanted)} on channels but operator ${op.index} joins ${JSON.stringify(found)} on axis ${op.concatAxis}`);
    }
  });

  if (ops(BuiltinOp.ADD).length !== nodes('add').length) fail(`has ${nodes('add').length} residual adds but the file has ${ops(BuiltinOp.ADD).length}`);
}
