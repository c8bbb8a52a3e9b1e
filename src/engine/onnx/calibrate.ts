// Calibration: the float32 model run on photos, each tensor the int8 model quantizes read out
// and its range kept (minimum and maximum over all photos, as quantize_static's MinMax does).
import * as ort from 'onnxruntime-node';
import { elementCount, type Graph, type Weights } from '../../model/graph.js';
import { emitOnnx, onnxInputName } from './emit.js';
import { quantizedTensors, widenRanges, type ActivationRanges } from './quantize.js';

/** The ranges of the tensors quantizedTensors names, over `inputs` (each one NHWC image as the engine takes it). */
export async function calibrate(graph: Graph, weights: Weights, inputs: readonly Float32Array[]): Promise<ActivationRanges> {
  if (inputs.length === 0) throw new Error(`graph ${graph.name}: calibration needs at least one input`);
  const tensors = quantizedTensors(graph);
  const session = await ort.InferenceSession.create(emitOnnx(graph, weights, { extraOutputs: tensors }), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    // Unoptimized, as quantize_static's calibrator runs it: the same ranges to the last bit (fused
    // kernels round differently), so that our int8 model and its reference share every scale.
    graphOptimizationLevel: 'disabled',
  });
  try {
    const [c, h, w] = graph.nodes.find((n) => n.name === graph.inputs[0])!.shape as [number, number, number];
    if (inputs.some((input) => input.length !== elementCount([c, h, w]))) throw new Error(`graph ${graph.name}: a calibration input is not ${h}x${w}x${c}`);
    const ranges = new Map<string, [number, number]>();
    for (const input of inputs) {
      const results = await session.run({ [onnxInputName(graph.inputs[0]!)]: new ort.Tensor('float32', input, [1, h, w, c]) }, tensors);
      widenRanges(ranges, new Map(tensors.map((t) => [t, results[t]!.data as Float32Array])));
    }
    return Object.fromEntries(ranges);
  } finally {
    await session.release();
  }
}
