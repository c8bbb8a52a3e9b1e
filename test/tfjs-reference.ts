// The SSDLite TensorFlow.js graph model run as Google ships it (tfjs-converter on the wasm
// backend): an independent reference for our graph, engine and post-processing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { useTfjsBackend } from '../src/engine/tfjs/backend.js';

export async function loadReferenceModel(dir: string): Promise<GraphModel> {
  await useTfjsBackend('wasm');
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const shards = Buffer.concat(json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths).map((p: string) => readFileSync(join(dir, p))));
  return loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
      weightData: shards.buffer.slice(shards.byteOffset, shards.byteOffset + shards.length),
    }),
  });
}

/** Runs the reference on HWC uint8 pixels; returns its named outputs as flat arrays. */
export async function runReference(model: GraphModel, pixels: Uint8Array, size: number, outputs: string[]): Promise<Float32Array[]> {
  const input = tf.tensor(Int32Array.from(pixels), [1, size, size, 3], 'int32');
  // The graph's preprocessing is a while loop, which only the async executor runs.
  const results = (await model.executeAsync(input, outputs)) as tf.Tensor[];
  const data = await Promise.all(results.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([input, ...results]);
  return data;
}

export { tf };

export interface ReferenceDetection {
  classId: number;
  score: number;
  box: { ymin: number; xmin: number; ymax: number; xmax: number };
}

/**
 * Detections as TensorFlow selects them: tf.image.nonMaxSuppression on each class's scores
 * (boxes [anchors, 4] as ymin, xmin, ymax, xmax; scores [anchors, classes] without background,
 * class column c is class id c + 1), at most `maxDetections` per class, then the best
 * `maxDetections` overall. An implementation none of ours shares code with.
 */
export async function tensorflowDetections(
  boxes: Float32Array,
  scores: Float32Array,
  classes: number,
  { minScore, iouThreshold, maxDetections }: { minScore: number; iouThreshold: number; maxDetections: number },
): Promise<ReferenceDetection[]> {
  const anchors = boxes.length / 4;
  const boxTensor = tf.tensor2d(boxes, [anchors, 4]);
  const detections: ReferenceDetection[] = [];
  try {
    for (let c = 0; c < classes; c++) {
      const column = Float32Array.from({ length: anchors }, (_, a) => scores[a * classes + c]!);
      const scoreTensor = tf.tensor1d(column);
      // TensorFlow keeps scores above the threshold; ours keeps those at or above it. Shift by one ulp-ish step.
      const kept = await tf.image.nonMaxSuppressionAsync(boxTensor, scoreTensor, maxDetections, iouThreshold, minScore - 1e-7);
      for (const a of await kept.data()) {
        const [ymin, xmin, ymax, xmax] = boxes.subarray(4 * a, 4 * a + 4);
        detections.push({ classId: c + 1, score: column[a]!, box: { ymin: ymin!, xmin: xmin!, ymax: ymax!, xmax: xmax! } });
      }
      tf.dispose([scoreTensor, kept]);
    }
  } finally {
    boxTensor.dispose();
  }
  return detections.sort((a, b) => b.score - a.score).slice(0, maxDetections);
}
