// The models the service can load: an architecture from src/model plus imported weights.
// Everything a worker or a route needs to know about a model is derived from this entry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { costOf } from '../model/cost.js';
import type { Graph } from '../model/graph.js';
import { mobileNetV2Classifier } from '../model/mobilenet-v2.js';
import { importTfliteWeights, type ImportedWeights } from '../weights/tflite/import.js';

export type Task = 'classification';

export interface CatalogEntry {
  name: string;
  task: Task;
  description: string;
  alpha: number;
  /** Side of the square input the image is resized to. */
  resolution: number;
  /** Weight file under the model directory, as listed in models/manifest.json. */
  weights: string;
  labels: string;
  graph(): Graph;
  /** Reads the weight file and maps it onto the graph, checking every tensor. */
  importWeights(graph: Graph, file: Uint8Array): ImportedWeights;
}

function classifier(name: string, weights: string, description: string): CatalogEntry {
  const architecture = { alpha: 1.0, resolution: 224, classes: 1001 };
  return {
    name,
    task: 'classification',
    description,
    alpha: architecture.alpha,
    resolution: architecture.resolution,
    weights,
    labels: 'labels/imagenet_labels.txt',
    graph: () => mobileNetV2Classifier(architecture),
    importWeights: importTfliteWeights,
  };
}

export const CATALOG: readonly CatalogEntry[] = [
  classifier(
    'mobilenet_v2_1.0_224',
    'mobilenet_v2_1.0_224_quant.tflite',
    'MobileNetV2 1.0/224, ImageNet, weights from the uint8 quantization-aware checkpoint (per-tensor), run in float32',
  ),
  classifier(
    'mobilenet_v2_1.0_224_tf2',
    'tf2_mobilenet_v2_1.0_224_ptq.tflite',
    'MobileNetV2 1.0/224, ImageNet, weights from the TF2 float checkpoint (int8 per-channel post-training quantization), run in float32',
  ),
];

export function findEntry(name: string): CatalogEntry {
  const entry = CATALOG.find((e) => e.name === name);
  if (!entry) throw new RangeError(`unknown model ${name}; available: ${CATALOG.map((e) => e.name).join(', ')}`);
  return entry;
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
  const cost = costOf(entry.graph());
  return {
    name: entry.name,
    task: entry.task,
    description: entry.description,
    alpha: entry.alpha,
    resolution: entry.resolution,
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
