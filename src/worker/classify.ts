export interface ScoredClass {
  index: number;
  score: number;
}

export interface ClassificationRequest {
  task: 'classification';
  topk: number;
}

export interface ClassificationOutput {
  task: 'classification';
  classes: ScoredClass[];
}

/** The k most probable classes, most probable first; ties keep the lower index first. */
export function topK(probabilities: Float32Array, k: number): ScoredClass[] {
  const indices = Array.from(probabilities.keys());
  indices.sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  return indices.slice(0, k).map((index) => ({ index, score: probabilities[index]! }));
}

export function classify(outputs: readonly Float32Array[], request: ClassificationRequest): ClassificationOutput {
  return { task: 'classification', classes: topK(outputs[0]!, request.topk) };
}
