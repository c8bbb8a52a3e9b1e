// Detection in the worker: one run of SSD, box encodings decoded against the anchors, then
// per-class non-maximum suppression. Boxes are normalized [0, 1] coordinates of the whole
// (unpadded) image.
import type { Engine } from '../engine/engine.js';
import { ssdAnchors, type SsdGraph } from '../model/ssdlite.js';
import { elementCount } from '../model/graph.js';
import type { Detection, DetectionOutput, DetectionRequest, TaskInput } from '../tasks.js';
import type { InputNormalization } from '../weights/common.js';
import { engineInput } from './normalize.js';
import { checkpoint, type TaskRunner } from './runner.js';

/** The box coder's scale factors for (y, x, h, w), as the TF Object Detection API trains SSD. */
export const BOX_SCALE_FACTORS = [10, 10, 5, 5] as const;
/**
 * Detections a class may keep after suppression, as the API's max_detections_per_class: it caps
 * suppression's output (tf.image.non_max_suppression's max_output_size), not its input, so a
 * class whose best boxes are near-duplicates of one object still finds its other objects.
 */
const DETECTIONS_PER_CLASS = 100;

/** Encodings [ty, tx, th, tw] per anchor [yc, xc, h, w] to corners [ymin, xmin, ymax, xmax]. */
export function decodeBoxes(encodings: Float32Array, anchors: Float32Array): Float32Array {
  const [sy, sx, sh, sw] = BOX_SCALE_FACTORS;
  const boxes = new Float32Array(anchors.length);
  for (let i = 0; i < anchors.length; i += 4) {
    const [ya, xa, ha, wa] = [anchors[i]!, anchors[i + 1]!, anchors[i + 2]!, anchors[i + 3]!];
    const yc = (encodings[i]! / sy) * ha + ya;
    const xc = (encodings[i + 1]! / sx) * wa + xa;
    const h = Math.exp(encodings[i + 2]! / sh) * ha;
    const w = Math.exp(encodings[i + 3]! / sw) * wa;
    boxes.set([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], i);
  }
  return boxes;
}

export function iou(boxes: Float32Array, a: number, b: number): number {
  // Indexed, not destructured from subarrays: suppression calls this up to millions of times an image.
  const [i, j] = [4 * a, 4 * b];
  const ih = Math.max(0, Math.min(boxes[i + 2]!, boxes[j + 2]!) - Math.max(boxes[i]!, boxes[j]!));
  const iw = Math.max(0, Math.min(boxes[i + 3]!, boxes[j + 3]!) - Math.max(boxes[i + 1]!, boxes[j + 1]!));
  const intersection = ih * iw;
  const union = (boxes[i + 2]! - boxes[i]!) * (boxes[i + 3]! - boxes[i + 1]!) + (boxes[j + 2]! - boxes[j]!) * (boxes[j + 3]! - boxes[j + 1]!) - intersection;
  return union > 0 ? intersection / union : 0;
}

/** Greedy suppression: keeps the best box, drops those overlapping it more than the threshold. */
function suppress(boxes: Float32Array, candidates: { anchor: number; score: number }[], iouThreshold: number, limit: number) {
  const kept: { anchor: number; score: number }[] = [];
  for (const candidate of candidates) {
    if (kept.length >= limit) break;
    if (kept.every((k) => iou(boxes, k.anchor, candidate.anchor) <= iouThreshold)) kept.push(candidate);
  }
  return kept;
}

export class DetectionRunner implements TaskRunner<DetectionRequest> {
  readonly task = 'detection';
  /** Fixed by the graph's feature maps: computed once per model. */
  private readonly anchors: Float32Array;

  constructor(
    private readonly model: SsdGraph,
    private readonly engine: Engine,
    private readonly input: InputNormalization,
  ) {
    this.anchors = ssdAnchors(model.featureMaps);
  }

  async run(request: DetectionRequest, input: TaskInput, signal?: AbortSignal): Promise<DetectionOutput> {
    await checkpoint(signal);
    const outputs = await this.engine.run({ data: engineInput(input, this.input, elementCount(this.model.input.shape)), batch: 1 });
    const boxes = decodeBoxes(outputs.get(this.model.boxEncodings.name)!, this.anchors);
    return { task: 'detection', detections: selectDetections(boxes, outputs.get(this.model.classScores.name)!, request) };
  }
}

/** Per-class suppression over decoded corner boxes and [anchors, classes] scores (class 0 = background). */
export function selectDetections(boxes: Float32Array, scores: Float32Array, request: Omit<DetectionRequest, 'task'>): Detection[] {
  const anchorCount = boxes.length / 4;
  const classes = scores.length / anchorCount;
  const classIds = request.classIds ?? Array.from({ length: classes - 1 }, (_, i) => i + 1);
  const detections: Detection[] = [];
  for (const classId of classIds) {
    const candidates: { anchor: number; score: number }[] = [];
    for (let anchor = 0; anchor < anchorCount; anchor++) {
      const score = scores[anchor * classes + classId]!;
      if (score >= request.minScore) candidates.push({ anchor, score });
    }
    candidates.sort((a, b) => b.score - a.score);
    // More than maxDetections of one class could not all be returned anyway.
    const kept = suppress(boxes, candidates, request.iouThreshold, Math.min(DETECTIONS_PER_CLASS, request.maxDetections));
    for (const { anchor, score } of kept) {
      const [ymin, xmin, ymax, xmax] = boxes.subarray(4 * anchor, 4 * anchor + 4);
      detections.push({ classId, score, box: { ymin: ymin!, xmin: xmin!, ymax: ymax!, xmax: xmax! } });
    }
  }
  detections.sort((a, b) => b.score - a.score);
  return detections.slice(0, request.maxDetections);
}
