// The contract between workers and execution engines: the same graph description and weights
// go in, named float32 outputs come out. Engines differ only in how they execute.
import type { Graph, Weights } from '../model/graph.js';

export const ENGINE_NAMES = ['onnx'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export interface EngineOptions {
  /** Threads the engine may use for one inference. */
  threads: number;
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

export async function loadEngine(name: EngineName, graph: Graph, weights: Weights, options: EngineOptions): Promise<Engine> {
  switch (name) {
    case 'onnx': {
      const { OnnxEngine } = await import('./onnx/engine.js');
      return OnnxEngine.load(graph, weights, options);
    }
  }
}
