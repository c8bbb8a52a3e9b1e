// Loads the engine a configuration names. Each engine's module is imported only when chosen, so
// a worker that runs ONNX Runtime never loads TensorFlow.js, and the other way round.
import type { Graph, Weights } from '../model/graph.js';
import type { Engine, EngineName, EngineOptions } from './engine.js';

export async function loadEngine(name: EngineName, graph: Graph, weights: Weights, options: EngineOptions): Promise<Engine> {
  switch (name) {
    case 'onnx': {
      const { OnnxEngine } = await import('./onnx/engine.js');
      return OnnxEngine.load(graph, weights, options);
    }
    case 'tfjs': {
      const { TfjsEngine } = await import('./tfjs/engine.js');
      return TfjsEngine.load(graph, weights, options);
    }
  }
}
