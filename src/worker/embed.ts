// Embeddings in the worker: the classifier's pooled features (the same run that classifies),
// scaled to unit length on request.
import type { EmbeddingOutput, EmbeddingRequest, TaskInput } from '../tasks.js';
import type { Classifier } from './classify.js';
import type { TaskRunner } from './runner.js';

export class EmbeddingRunner implements TaskRunner<EmbeddingRequest> {
  readonly task = 'embedding';

  constructor(private readonly classifier: Classifier) {}

  async run(request: EmbeddingRequest, input: TaskInput, signal?: AbortSignal): Promise<EmbeddingOutput> {
    const outputs = await this.classifier.run(input, signal);
    return { task: 'embedding', features: this.classifier.embedding(outputs, request.normalize) };
  }
}
