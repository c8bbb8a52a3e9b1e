// Classification in the worker: one run, then the k most probable classes.
import type { Engine } from '../engine/engine.js';
import type { ClassifierGraph } from '../model/mobilenet-v2.js';
import type { ClassificationOutput, ClassificationRequest, ScoredClass } from '../tasks.js';
import type { InputNormalization } from '../weights/common.js';
import { normalize } from './normalize.js';
import { checkpoint, type TaskRunner } from './runner.js';

/** The k most probable classes, most probable first; ties keep the lower index first. */
export function topK(probabilities: Float32Array, k: number): ScoredClass[] {
  const indices = Array.from(probabilities.keys());
  indices.sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  return indices.slice(0, k).map((index) => ({ index, score: probabilities[index]! }));
}

export class ClassificationRunner implements TaskRunner<ClassificationRequest> {
  readonly task = 'classification';

  constructor(
    private readonly model: ClassifierGraph,
    private readonly engine: Engine,
    private readonly input: InputNormalization,
  ) {}

  async run(request: ClassificationRequest, pixels: Uint8Array, signal?: AbortSignal): Promise<ClassificationOutput> {
    await checkpoint(signal);
    const outputs = await this.engine.run({ data: normalize(pixels, this.input), batch: 1 });
    return { task: 'classification', classes: topK(outputs.get(this.model.probabilities.name)!, request.topk) };
  }

  dispose(): Promise<void> {
    return this.engine.dispose();
  }
}
