// A MobileNetV2 classifier saved as a TensorFlow.js graph model (tfjs-converter's output for a
// TF-Hub module or a Keras SavedModel) as the neutral classifier description. Read by op and
// wiring: a convolution (Conv2D, DepthwiseConv2dNative, or the converter's fused _FusedConv2D /
// FusedDepthwiseConv2dNative with BiasAdd and an activation) takes every per-channel op after it
// (BiasAdd, Mul and Add by a constant vector, FusedBatchNorm) and its ReLU / ReLU6; a Pad before a
// VALID convolution becomes its pads; MatMul / _FusedMatMul after the pool are the head.
import type { Activation } from '../../model/graph.js';
import type { FileClassifier, FileLayer, Pads } from '../classifier.js';
import { WeightImportError } from '../common.js';
import { attrString, readTfjsGraphModel, type GraphNodeDef, type NamedTensor } from './graph-model.js';

/** A layer as it is being read: per-channel factors and shifts accumulate as the ops after it come. */
type Reading = FileLayer & { scale?: Float32Array; shift?: Float32Array; channels: number };

const ACTIVATIONS: Record<string, Activation> = { Relu: 'relu', Relu6: 'relu6' };
/** Ops that pass their input on unchanged at inference. */
const PASS_THROUGH = new Set(['Identity', 'Reshape', 'Squeeze', 'StopGradient', 'NoOp']);

export function readGraphClassifier(dir: string): FileClassifier {
  const model = readTfjsGraphModel(dir);
  const used = new Set<string>();
  /** The constant a node input names (`name` or `name:0`). */
  const constant = (input: string | undefined, what: string): NamedTensor => {
    const name = (input ?? '').replace(/:0$/, '');
    const tensor = model.tensors.get(name);
    if (!tensor) throw new WeightImportError(`${what}: input '${input}' is not a weight`);
    used.add(name);
    return tensor;
  };
  const isConstant = (input: string | undefined) => model.tensors.has((input ?? '').replace(/:0$/, ''));
  const ints = (node: GraphNodeDef, name: string) => node.attr?.[name]?.list?.i?.map(Number);
  const strings = (node: GraphNodeDef, name: string) => (node.attr?.[name]?.list?.s ?? []).map((s) => attrString(s)!);

  const backbone: Reading[] = [];
  const head: Reading[] = [];
  const origin = new Map<string, Reading | { pads: Pads; from: string } | 'other'>();
  const layerOf = (input: string, what: string): Reading => {
    const o = origin.get(input.replace(/:0$/, ''));
    if (!o || o === 'other' || 'pads' in o) throw new WeightImportError(`${what} reads '${input}', which is not a convolution's or dense layer's output`);
    return o;
  };
  const perChannel = (layer: Reading, values: Float32Array, what: string) => {
    if (values.length !== layer.channels) throw new WeightImportError(`${what}: ${values.length} values for ${layer.channels} channels`);
    if (layer.activation !== 'none') throw new WeightImportError(`${what} comes after ${layer.source}'s activation`);
  };
  const scaleBy = (layer: Reading, factor: Float32Array) => {
    layer.scale = layer.scale ? layer.scale.map((s, c) => s * factor[c]!) : factor;
    layer.shift = layer.shift?.map((b, c) => b * factor[c]!);
  };
  const shiftBy = (layer: Reading, shift: Float32Array) => {
    layer.shift = layer.shift ? layer.shift.map((b, c) => b + shift[c]!) : shift;
  };
  let inputSize: [number, number] | undefined;
  let pooled = false;
  let softmax = false;
  let adds = 0;

  for (const node of model.nodes.values()) {
    const what = `node '${node.name}' (${node.op})`;
    const [x = '', second, ...rest] = node.input ?? [];
    switch (node.op) {
      case 'Const':
        break;
      case 'Placeholder': {
        const [, h, w, c] = (node.attr?.shape?.shape?.dim ?? []).map((d) => Number(d.size ?? -1));
        if (c !== 3) throw new WeightImportError(`${what} takes ${c} channels, not 3 (RGB)`);
        inputSize = h! > 0 && w! > 0 ? [h!, w!] : undefined;
        origin.set(node.name, 'other');
        break;
      }
      case 'Pad': {
        const p = [...constant(second, what).values];
        if (p.length !== 8 || p[0] || p[1] || p[6] || p[7]) throw new WeightImportError(`${what} pads more than height and width`);
        origin.set(node.name, { pads: [p[2]!, p[4]!, p[3]!, p[5]!], from: x });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2dNative':
      case '_FusedConv2D':
      case 'FusedDepthwiseConv2dNative': {
        if (pooled) throw new WeightImportError(`${what} comes after the global pool`);
        if ((attrString(node.attr?.data_format?.s) ?? 'NHWC') !== 'NHWC') throw new WeightImportError(`${what} is not NHWC`);
        const depthwise = node.op.includes('Depthwise');
        const filter = constant(second, what);
        const [, stride, strideW] = ints(node, 'strides') ?? [1, 1, 1, 1];
        const [, dilation, dilationW] = ints(node, 'dilations') ?? [1, 1, 1, 1];
        if (stride !== strideW || dilation !== dilationW) throw new WeightImportError(`${what} has unequal strides or dilations`);
        const mode = attrString(node.attr?.padding?.s);
        const before = origin.get(x.replace(/:0$/, ''));
        let padding: FileLayer['padding'];
        if (mode === 'EXPLICIT') {
          const p = ints(node, 'explicit_paddings') ?? [];
          padding = [p[2]!, p[4]!, p[3]!, p[5]!];
        } else if (before && before !== 'other' && 'pads' in before) {
          if (mode !== 'VALID') throw new WeightImportError(`${what} pads ${mode} after a Pad`);
          padding = before.pads;
        } else if (mode === 'SAME' || mode === 'VALID') {
          padding = mode === 'SAME' ? 'same' : 'valid';
        } else {
          throw new WeightImportError(`${what} has padding ${mode}`);
        }
        const layer: Reading = {
          source: `${what} filter '${filter.name}' [${filter.shape}]`,
          depthwise,
          filterShape: filter.shape,
          // TensorFlow: HWIO, depthwise HWIM (M the multiplier, 1 here).
          layout: depthwise ? 'HWOI' : 'HWIO',
          stride: stride!,
          dilation: dilation!,
          padding,
          activation: 'none',
          channels: filter.shape[depthwise ? 2 : 3]! * (depthwise ? filter.shape[3]! : 1),
          values: () => ({ filter: filter.values, scale: layer.scale, bias: layer.shift ?? new Float32Array(layer.channels) }),
        };
        if (node.op.startsWith('_Fused') || node.op.startsWith('Fused')) fuse(layer, node, rest, what);
        backbone.push(layer);
        origin.set(node.name, layer);
        break;
      }
      case 'BiasAdd':
      case 'Add':
      case 'AddV2':
      case 'Mul': {
        const [a, b] = [x, second ?? ''];
        if (!isConstant(a) && !isConstant(b)) {
          if (node.op === 'Mul' || node.op === 'BiasAdd') throw new WeightImportError(`${what} of two activations is not part of MobileNetV2`);
          adds++;
          origin.set(node.name, 'other');
          break;
        }
        const layer = layerOf(isConstant(a) ? b : a, what);
        const values = constant(isConstant(a) ? a : b, what).values;
        perChannel(layer, values, what);
        if (node.op === 'Mul') scaleBy(layer, values);
        else shiftBy(layer, values);
        origin.set(node.name, layer);
        break;
      }
      case 'AddN':
        if ((node.input ?? []).length !== 2 || (node.input ?? []).some(isConstant)) throw new WeightImportError(`${what} is not a residual addition of two activations`);
        adds++;
        origin.set(node.name, 'other');
        break;
      case 'FusedBatchNorm':
      case 'FusedBatchNormV3': {
        const layer = layerOf(x, what);
        const [gamma, beta, mean, variance] = [second, ...rest].slice(0, 4).map((n) => constant(n, what).values) as Float32Array[];
        const epsilon = node.attr?.epsilon?.f ?? 1e-3;
        perChannel(layer, gamma!, what);
        const factor = variance!.map((v, c) => gamma![c]! / Math.sqrt(v + epsilon));
        // (y - mean) * factor + beta
        shiftBy(layer, mean!.map((m) => -m));
        scaleBy(layer, factor);
        shiftBy(layer, beta!);
        origin.set(node.name, layer);
        break;
      }
      case 'Relu':
      case 'Relu6': {
        const layer = layerOf(x, what);
        if (layer.activation !== 'none') throw new WeightImportError(`${what} follows another activation`);
        layer.activation = ACTIVATIONS[node.op]!;
        origin.set(node.name, layer);
        break;
      }
      case 'Mean':
      case 'AvgPool': {
        if (node.op === 'Mean' && [...constant(second, what).values].sort().join() !== '1,2') throw new WeightImportError(`${what} averages axes other than height and width`);
        if (node.op === 'AvgPool' && attrString(node.attr?.padding?.s) !== 'VALID') throw new WeightImportError(`${what} pools with padding`);
        if (pooled) throw new WeightImportError(`${what} pools a second time`);
        pooled = true;
        origin.set(node.name, 'other');
        break;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        if (!pooled) throw new WeightImportError(`${what} comes before the global pool`);
        if (node.attr?.transpose_a?.b) throw new WeightImportError(`${what} transposes its input`);
        const transposed = Boolean(node.attr?.transpose_b?.b);
        const weight = constant(second, what);
        const [rows, columns] = weight.shape as [number, number];
        const layer: Reading = {
          source: `${what} weight '${weight.name}' [${weight.shape}]`,
          depthwise: false,
          // [in, out] is the HWIO filter of a 1x1 convolution, [out, in] (transpose_b) its OHWI one.
          filterShape: transposed ? [rows, 1, 1, columns] : [1, 1, rows, columns],
          layout: transposed ? 'OHWI' : 'HWIO',
          stride: 1,
          dilation: 1,
          padding: 'valid',
          activation: 'none',
          channels: transposed ? rows : columns,
          values: () => ({ filter: weight.values, scale: layer.scale, bias: layer.shift ?? new Float32Array(layer.channels) }),
        };
        if (node.op === '_FusedMatMul') fuse(layer, node, rest, what);
        head.push(layer);
        origin.set(node.name, layer);
        break;
      }
      case 'Softmax':
        layerOf(x, what);
        softmax = true;
        origin.set(node.name, origin.get(x.replace(/:0$/, ''))!);
        break;
      default:
        if (!PASS_THROUGH.has(node.op)) throw new WeightImportError(`${what} is not part of a MobileNetV2 classifier`);
        for (const input of node.input ?? []) if (isConstant(input)) used.add(input.replace(/:0$/, ''));
        origin.set(node.name, origin.get(x.replace(/:0$/, '')) ?? 'other');
    }
  }
  return {
    inputSize,
    backbone,
    head,
    softmax,
    adds,
    unused: [...model.tensors.values()].filter((t) => t.dtype === 'float32' && !used.has(t.name)).map((t) => t.name),
  };

  /** The converter's fused ops: BiasAdd with its one argument, then the activation. */
  function fuse(layer: Reading, node: GraphNodeDef, args: string[], what: string): void {
    const [extra, activation] = strings(node, 'fused_ops');
    if (extra !== 'BiasAdd' || args.length < 1) throw new WeightImportError(`${what} fuses ${strings(node, 'fused_ops').join(', ')}; only BiasAdd and an activation are read`);
    const bias = constant(args[0], what).values;
    perChannel(layer, bias, what);
    shiftBy(layer, bias);
    if (activation !== undefined) {
      layer.activation = ACTIVATIONS[activation] ?? (() => {
        throw new WeightImportError(`${what} fuses activation ${activation}`);
      })();
    }
  }
}
