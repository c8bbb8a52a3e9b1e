// Embeddings in the worker: the classifier's pooled features (the same run that classifies),
// scaled to unit length on request.
import type { EmbeddingOutput, EmbeddingRequest, TaskInput } from '../tasks.js';
import type { Classifier } from './classify.js';
import type { TaskRunner } from './runner.js';

/** `values` scaled to unit Euclidean length; all zeros stay zeros (no direction to keep). */
export function l2Normalized(values: Float32Array): Float32Array {
  let sumOfSquares = 0;
  for (const v of values) sumOfSquares += v * v;
  const norm = Math.sqrt(sumOfSquares);
  return norm === 0 ? values : values.map((v) => v / norm);
}

export class EmbeddingRunner implements TaskRunner<EmbeddingRequest> {
  readonly task = 'embedding';

  constructor(private readonly classifier: Classifier) {}

  async run(request: EmbeddingRequest, input: TaskInput, signal?: AbortSignal): Promise<EmbeddingOutput> {
    const outputs = await this.classifier.run(input, signal);
    // A copy: the engine's output buffer may hold every output of the run.
    const features = Float32Array.from(outputs.get(this.classifier.model.features.name)!);
    return { task: 'embedding', features: request.normalize ? l2Normalized(features) : features };
  }
}
