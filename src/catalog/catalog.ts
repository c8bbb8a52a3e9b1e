// The models the service can load: an architecture from src/model plus imported weights.
// Everything a worker or a route needs to know about a model is derived from this entry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { costOf } from '../model/cost.js';
import type { Graph } from '../model/graph.js';
import { mobileNetV2Classifier, type MobileNetV2Config } from '../model/mobilenet-v2.js';

export type Task = 'classification';

export interface CatalogEntry {
  name: string;
  task: Task;
  architecture: Required<MobileNetV2Config>;
  /** File under the model directory, as listed in models/manifest.json. */
  weights: string;
  labels: string;
  description: string;
}

export const CATALOG: readonly CatalogEntry[] = [
  {
    name: 'mobilenet_v2_1.0_224',
    task: 'classification',
    architecture: { alpha: 1.0, resolution: 224, classes: 1001 },
    weights: 'mobilenet_v2_1.0_224_quant.tflite',
    labels: 'labels/imagenet_labels.txt',
    description: 'MobileNetV2 1.0/224, ImageNet, weights from the uint8 quantization-aware checkpoint (per-tensor), run in float32',
  },
  {
    name: 'mobilenet_v2_1.0_224_tf2',
    task: 'classification',
    architecture: { alpha: 1.0, resolution: 224, classes: 1001 },
    weights: 'tf2_mobilenet_v2_1.0_224_ptq.tflite',
    labels: 'labels/imagenet_labels.txt',
    description: 'MobileNetV2 1.0/224, ImageNet, weights from the TF2 float checkpoint (int8 per-channel post-training quantization), run in float32',
  },
];

export function findEntry(name: string): CatalogEntry {
  const entry = CATALOG.find((e) => e.name === name);
  if (!entry) throw new RangeError(`unknown model ${name}; available: ${CATALOG.map((e) => e.name).join(', ')}`);
  return entry;
}

export function graphOf(entry: CatalogEntry): Graph {
  return mobileNetV2Classifier(entry.architecture);
}

/** What the HTTP side knows about a loaded model, without its weights. */
export interface ModelInfo {
  name: string;
  task: Task;
  description: string;
  alpha: number;
  resolution: number;
  weights: string;
  params: number;
  multiplyAdds: number;
  peakActivationBytes: number;
  labels: string[];
}

export function describeModel(entry: CatalogEntry, modelDir: string): ModelInfo {
  const cost = costOf(graphOf(entry));
  return {
    name: entry.name,
    task: entry.task,
    description: entry.description,
    alpha: entry.architecture.alpha,
    resolution: entry.architecture.resolution,
    weights: entry.weights,
    params: cost.params,
    multiplyAdds: cost.multiplyAdds,
    peakActivationBytes: cost.peakActivationBytes,
    labels: readLabels(join(modelDir, entry.labels)),
  };
}

export function readLabels(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l, i, all) => l !== '' || i < all.length - 1);
}
