// Classification in the worker: one run, then the k most probable classes.
import type { Engine } from '../engine/engine.js';
import { elementCount } from '../model/graph.js';
import type { ClassifierGraph } from '../model/mobilenet-v2.js';
import type { ClassificationOutput, ClassificationRequest, ScoredClass, TaskInput } from '../tasks.js';
import type { InputNormalization } from '../weights/common.js';
import { engineInput, l2Normalized } from './normalize.js';
import { checkpoint, type TaskRunner } from './runner.js';

/** The k most probable classes, most probable first; ties keep the lower index first. */
export function topK(probabilities: Float32Array, k: number): ScoredClass[] {
  const indices = Array.from(probabilities.keys());
  indices.sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  return indices.slice(0, k).map((index) => ({ index, score: probabilities[index]! }));
}

/** A loaded classifier: one run gives every output its graph has (probabilities, pooled features). */
export class Classifier {
  constructor(
    readonly model: ClassifierGraph,
    readonly engine: Engine,
    private readonly normalization: InputNormalization,
  ) {}

  async run(input: TaskInput, signal?: AbortSignal): Promise<Map<string, Float32Array>> {
    await checkpoint(signal);
    return this.engine.run({ data: engineInput(input, this.normalization, elementCount(this.model.input.shape)), batch: 1 });
  }

  /** The pooled features of a run, unit length if asked. */
  embedding(outputs: Map<string, Float32Array>, normalize: boolean): Float32Array {
    // A copy: the engine's output buffer may hold every output of the run.
    const features = Float32Array.from(outputs.get(this.model.features.name)!);
    return normalize ? l2Normalized(features) : features;
  }
}

export class ClassificationRunner implements TaskRunner<ClassificationRequest> {
  readonly task = 'classification';

  constructor(private readonly classifier: Classifier) {}

  async run(request: ClassificationRequest, input: TaskInput, signal?: AbortSignal): Promise<ClassificationOutput> {
    const outputs = await this.classifier.run(input, signal);
    const classes = topK(outputs.get(this.classifier.model.probabilities.name)!, request.topk);
    if (!request.embedding) return { task: 'classification', classes };
    return { task: 'classification', classes, embedding: this.classifier.embedding(outputs, request.embedding.normalize) };
  }
}
