// int8 quantization of the graph description, as ONNX Runtime's own quantizer (quantize_static,
// QDQ format) places it, so that its QDQ fusion finds the patterns it turns into QLinearConv and
// QLinearAdd: every convolution's input and output and every addition's inputs and output are
// uint8 per tensor (asymmetric, the range calibrated on photos, always holding 0); convolution
// weights are int8 symmetric per output channel, biases int32 at input scale x weight scale. An
// activation fused into a convolution is quantized after it (ReLU6's clip then costs nothing).
// Everything else (softmax, sigmoid, resize, argmax) stays float32 on dequantized values.
import type { Graph } from '../../model/graph.js';

/** Per quantized tensor, its [min, max] over the calibration inputs. */
export type ActivationRanges = Readonly<Record<string, readonly [number, number]>>;

const QUANTIZING_KINDS = new Set(['conv2d', 'add']);

/** The tensors the int8 model quantizes: those read or made by a convolution or an addition. */
export function quantizedTensors(graph: Graph): string[] {
  const tensors = new Set<string>();
  for (const node of graph.nodes) {
    if (!QUANTIZING_KINDS.has(node.kind)) continue;
    node.inputs.forEach((input) => tensors.add(input));
    tensors.add(node.name);
  }
  // In graph order, so that a cache of ranges reads the same whatever built the set.
  return graph.nodes.map((n) => n.name).filter((name) => tensors.has(name));
}

/**
 * Rounding as QuantizeLinear does it: to the nearest integer, ties to even. Weights imported from a
 * uint8 file sit on its grid, so requantized per channel many of them fall exactly half-way.
 */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
}

// Arithmetic is float32, as ONNX tensors and quantize_static's NumPy arrays hold it.
const f32 = Math.fround;

/** uint8 scale and zero point of a range, widened to hold 0 (zero padding must be exact). */
export function activationQuantization([min, max]: readonly [number, number]): { scale: number; zeroPoint: number } {
  const [lo, hi] = [Math.min(min, 0), Math.max(max, 0)];
  const scale = f32(f32(hi - lo) / 255);
  if (scale === 0) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: Math.min(255, Math.max(0, roundHalfEven(-f32(lo / scale)))) };
}

/** Symmetric int8 per output channel ([-127, 127], zero point 0): weights laid out [out, ...]. */
export function quantizeWeights(weights: Float32Array, channels: number): { values: Int8Array; scales: Float32Array } {
  const perChannel = weights.length / channels;
  const values = new Int8Array(weights.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let largest = 0;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) largest = Math.max(largest, Math.abs(weights[i]!));
    // An all-zero channel quantizes to zeros at any scale.
    scales[c] = largest === 0 ? 1 : largest / 127;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) values[i] = Math.max(-127, Math.min(127, roundHalfEven(f32(weights[i]! / scales[c]!))));
  }
  return { values, scales };
}

/** int32 biases at input scale x each channel's weight scale, the scale of the convolution's accumulator. */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): { values: Int32Array; scales: Float32Array } {
  // The scale in float32, the division not (as quantize_static: an int32 holds more than float32's 24 bits).
  const scales = weightScales.map((s) => inputScale * s);
  return { values: Int32Array.from(bias, (b, c) => roundHalfEven(b / scales[c]!)), scales };
}

/** Folds one run's tensors into running ranges. */
export function widenRanges(ranges: Map<string, [number, number]>, outputs: ReadonlyMap<string, Float32Array>): void {
  for (const [name, values] of outputs) {
    let [min, max] = ranges.get(name) ?? [Infinity, -Infinity];
    for (const v of values) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    ranges.set(name, [min, max]);
  }
}
