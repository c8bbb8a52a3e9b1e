// The contract between workers and execution engines: the same graph description and weights
// go in, named float32 outputs come out. Engines differ only in how they execute; load.ts
// picks one.
import type { Graph, Weights } from '../model/graph.js';
import type { ActivationRanges } from './onnx/quantize.js';

export const ENGINE_NAMES = ['onnx', 'tfjs'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** How the ONNX engine computes: float32, or int8 built from the graph description (docs/engines.md, Precision). */
export const PRECISIONS = ['float32', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** TensorFlow.js backends: 'auto' is tfjs-node when it loads, else wasm; 'tensorflow' (tfjs-node) fails when it does not load. */
export const TFJS_BACKENDS = ['auto', 'tensorflow', 'wasm'] as const;
export type TfjsBackendChoice = (typeof TFJS_BACKENDS)[number];
export type TfjsBackend = Exclude<TfjsBackendChoice, 'auto'>;

export interface EngineOptions {
  /** Threads the engine may use for one inference. */
  threads: number;
  /**
   * Keep the activations' memory from run to run (default true: faster, but held for good). Off
   * for graphs that run now and then (segmentation's other settings): measured on the 513x513
   * multi-scale graphs, 12 cached sessions held 1.9 GB with it and 0.65 GB without.
   */
  keepActivationMemory?: boolean;
  /** The tfjs engine's backend (default 'auto'); one per thread, the first engine's choice holds. */
  tfjsBackend?: TfjsBackendChoice;
  /**
   * int8: the calibrated range of each tensor the quantized model holds in 8 bits (see
   * src/engine/onnx/quantize.ts); absent, float32. Only the ONNX engine runs int8.
   */
  quantization?: ActivationRanges;
  /** ONNX only: where ONNX Runtime writes the model as it optimized it (to see which kernels it fused). */
  optimizedModelPath?: string;
}

/** A batch of images, NHWC float32, already normalized as the weights expect. */
export interface InputBatch {
  data: Float32Array;
  batch: number;
}

export interface Engine {
  readonly name: EngineName;
  /** Runs a batch; returns each graph output as batch-major float32. */
  run(input: InputBatch): Promise<Map<string, Float32Array>>;
  dispose(): Promise<void>;
}
