// Engines for the other graphs a request may ask of one model's weights (segmentation: another
// output stride, the scales of multi-scale inference). Each is built the first time a request
// needs it and kept, so a worker pays the session build once per setting and models that never
// ask for one (the classifiers) carry nothing.
import type { SegmentationSpec } from '../catalog/catalog.js';
import type { DeepLabVariant } from '../model/deeplab.js';
import type { Graph, Weights } from '../model/graph.js';
import type { Engine } from './engine.js';

/** How a task runs one loaded model. */
export interface ModelRuns {
  graph: Graph;
  /** The model's own graph on a normalized NHWC input; outputs in graph order. */
  run(input: Float32Array): Promise<readonly Float32Array[]>;
  /** Another graph over the same weights (segmentation settings), built on first use. */
  runVariant(variant: DeepLabVariant, input: Float32Array): Promise<readonly Float32Array[]>;
}

/**
 * The runs of a loaded model. `load` builds the engines of other graphs; models without a
 * segmentation spec have none.
 */
export function modelRuns(
  graph: Graph,
  engine: Engine,
  segmentation: SegmentationSpec | undefined,
  weights: Weights,
  load: (graph: Graph, weights: Weights) => Promise<Engine>,
): ModelRuns {
  const variants = segmentation && new VariantEngines(segmentation.graph, weights, load, {
    variant: { outputStride: segmentation.outputStride, scale: 1, output: 'classes' },
    engine,
    graph,
  });
  return {
    graph,
    run: async (data) => {
      const outputs = await engine.run({ data, batch: 1 });
      return graph.outputs.map((output) => outputs.get(output)!);
    },
    runVariant: (variant, data) => (variants ? variants.run(variant, data) : Promise.reject(new Error(`graph ${graph.name} has no other settings`))),
  };
}

interface Built {
  engine: Engine;
  outputs: readonly string[];
}

const variantKey = ({ outputStride, scale, output }: DeepLabVariant): string => `os${outputStride}/x${scale}/${output}`;

class VariantEngines {
  private readonly built = new Map<string, Promise<Built>>();

  constructor(
    private readonly graphOf: (variant: DeepLabVariant) => Graph,
    private readonly weights: Weights,
    private readonly load: (graph: Graph, weights: Weights) => Promise<Engine>,
    /** The model's own engine serves its own setting. */
    own?: { variant: DeepLabVariant; engine: Engine; graph: Graph },
  ) {
    if (own) this.built.set(variantKey(own.variant), Promise.resolve({ engine: own.engine, outputs: own.graph.outputs }));
  }

  async run(variant: DeepLabVariant, data: Float32Array): Promise<Float32Array[]> {
    const key = variantKey(variant);
    let built = this.built.get(key);
    if (!built) {
      const graph = this.graphOf(variant);
      built = this.load(graph, this.weights).then((engine) => ({ engine, outputs: graph.outputs }));
      this.built.set(key, built);
      // A failed build is not cached: the next request tries again.
      built.catch(() => this.built.delete(key));
    }
    const { engine, outputs } = await built;
    const results = await engine.run({ data, batch: 1 });
    return outputs.map((name) => results.get(name)!);
  }
}
