// The models the service can load: an architecture from src/model plus imported weights and
// labels. Both threads read it: the main thread to describe and route to a model, a worker to
// build and load it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Preprocess } from '../decode/decode.js';
import { deepLabV3, type DeepLabGraph, type DeepLabHead, type DeepLabVariant } from '../model/deeplab.js';
import { mobileNetV2Classifier, type ClassifierGraph, type OutputStride } from '../model/mobilenet-v2.js';
import { ssdMobileNetV2, type SsdGraph } from '../model/ssdlite.js';
import type { Task } from '../tasks.js';
import type { ImportedWeights } from '../weights/common.js';
import { importSsdWeights } from '../weights/tfjs/import-ssd.js';
import { importDeepLabWeights } from '../weights/tflite/deeplab.js';
import { importTfliteWeights } from '../weights/tflite/import.js';

interface EntryBase<T extends Task, G> {
  name: string;
  task: T;
  description: string;
  /** Width multiplier of the backbone. */
  alpha: number;
  /** Weight file (or folder) under the model directory, as listed in models/manifest.json. */
  weights: string;
  labels: string;
  /** The class id of the label file's first line: 1 where the background class has no line. */
  labelOffset: number;
  /** How a photo becomes the model's input: crop and resize kernel, chosen by measurement (docs/accuracy.md). */
  preprocess: Preprocess;
  /** The architecture, with the handles the worker and the cost model need. */
  build(): G;
  /** Reads the weight file (or folder) at `path` and maps it onto the graph, checking every tensor. */
  importWeights(model: G, path: string): ImportedWeights;
  /** Whether MODELS includes it when unset (default true); see README, Configuration. */
  loadByDefault?: boolean;
}

export type ClassifierEntry = EntryBase<'classification', ClassifierGraph>;
export type DetectorEntry = EntryBase<'detection', SsdGraph>;

/** A segmentation model: what its weights fix, and the graphs a request may build over them. */
export interface SegmenterEntry extends EntryBase<'segmentation', DeepLabGraph> {
  /** The output stride and head the file was built with; a request may ask for another stride. */
  outputStride: OutputStride;
  head: DeepLabHead;
  /** The graph for a request's output stride, input scale and output, with the same parameters. */
  variant(variant: DeepLabVariant): DeepLabGraph;
}

export type CatalogEntry = ClassifierEntry | DetectorEntry | SegmenterEntry;

function classifier(name: string, weights: string, description: string): ClassifierEntry {
  const architecture = { alpha: 1.0, resolution: 224, classes: 1001 };
  return {
    name,
    task: 'classification',
    description,
    alpha: architecture.alpha,
    weights,
    labels: 'labels/imagenet_labels.txt',
    labelOffset: 0,
    // TF-slim's evaluation, which these weights were trained for: measured best (docs/accuracy.md).
    preprocess: { crop: 'central', fraction: 0.875, kernel: 'bilinear' },
    build: () => mobileNetV2Classifier(architecture),
    importWeights: (model, path) => importTfliteWeights(model.graph, readFileSync(path)),
  };
}

function ssdlite(name: string, weights: string, description: string): DetectorEntry {
  const config = { alpha: 1.0, resolution: 300, classes: 91, predictor: 'separable' } as const;
  return {
    name,
    task: 'detection',
    description,
    alpha: config.alpha,
    weights,
    labels: 'labels/coco_labels.txt',
    labelOffset: 1,
    // The Object Detection API stretches the whole photo to 300x300 (bilinear, in the graph);
    // stretched, lanczos3 measured 0.6 mAP better than that bilinear (docs/accuracy.md).
    preprocess: { crop: 'none', kernel: 'lanczos3' },
    build: () => ssdMobileNetV2(config),
    importWeights: (model, path) => importSsdWeights(model.graph, path),
  };
}

/** The float file takes [-1, 1] as its publisher's metadata (mean 127.5, std 127.5) says; the tensor cannot. */
const FLOAT_INPUT = { scale: 1 / 127.5, zeroPoint: 127.5 };

function deepLab(
  name: string,
  weights: string,
  architecture: { alpha: number; resolution: number; outputStride: OutputStride },
  description: string,
  loadByDefault = true,
): SegmenterEntry {
  const { alpha, resolution, outputStride } = architecture;
  const head = 'lite';
  const variant = (v: DeepLabVariant) => deepLabV3({ alpha, resolution, head, ...v });
  return {
    name,
    task: 'segmentation',
    description,
    alpha,
    weights,
    labels: 'labels/pascal_voc_segmentation_labels.txt',
    labelOffset: 0,
    // Measured better than TensorFlow's bilinear on every DeepLab file (docs/accuracy.md).
    preprocess: { crop: 'none', kernel: 'lanczos3' },
    build: () => variant({ outputStride, scale: 1, output: 'classes' }),
    importWeights: (model, path) => importDeepLabWeights(model, readFileSync(path), FLOAT_INPUT),
    loadByDefault,
    outputStride,
    head,
    variant,
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
  ssdlite(
    'ssdlite_mobilenet_v2_coco',
    'ssdlite_mobilenet_v2_coco',
    'SSDLite on MobileNetV2 1.0, 300x300, COCO (90 classes), TF Object Detection API weights from the TensorFlow.js graph model',
  ),
  deepLab(
    'deeplabv3_mobilenet_v2_1.0_513',
    'deeplabv3_mnv2_pascal_quant.tflite',
    { alpha: 1.0, resolution: 513, outputStride: 16 },
    'DeepLabv3 (lite head) on MobileNetV2 1.0, 513x513, output stride 16, PASCAL VOC (21 classes), weights from the uint8 quantization-aware checkpoint, run in float32',
  ),
  deepLab(
    'deeplabv3_mobilenet_v2_0.5_257',
    'deeplabv3_257_mv_gpu.tflite',
    { alpha: 0.5, resolution: 257, outputStride: 8 },
    'DeepLabv3 (lite head) on MobileNetV2 0.5, 257x257, output stride 8, PASCAL VOC (21 classes), float32 weights of the TFLite segmentation example',
  ),
  deepLab(
    'deeplabv3_mobilenet_v2_0.5_513',
    'deeplabv3_mnv2_dm05_pascal_quant.tflite',
    { alpha: 0.5, resolution: 513, outputStride: 16 },
    'DeepLabv3 (lite head) on MobileNetV2 0.5, 513x513, output stride 16, PASCAL VOC (21 classes), weights from the uint8 quantization-aware checkpoint, run in float32',
    false,
  ),
];

export function findEntry(name: string): CatalogEntry;
export function findEntry<T extends Task>(name: string, task: T): Extract<CatalogEntry, { task: T }>;
export function findEntry(name: string, task?: Task): CatalogEntry {
  const entry = CATALOG.find((e) => e.name === name);
  if (!entry) throw new RangeError(`unknown model ${name}; available: ${CATALOG.map((e) => e.name).join(', ')}`);
  if (task !== undefined && entry.task !== task) throw new RangeError(`model ${name} is a ${entry.task} model, not ${task}`);
  return entry;
}

/** An entry's architecture with its weights read from `modelDir`. */
export function buildWithWeights<E extends CatalogEntry>(entry: E, modelDir: string): { model: ReturnType<E['build']>; imported: ImportedWeights } {
  const model = entry.build() as ReturnType<E['build']>;
  // Each entry's build and importWeights belong together; the union of entries cannot say so.
  const importWeights = entry.importWeights as (model: ReturnType<E['build']>, path: string) => ImportedWeights;
  return { model, imported: importWeights(model, join(modelDir, entry.weights)) };
}
