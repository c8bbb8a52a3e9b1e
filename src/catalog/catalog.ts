// The models the service can load: an architecture from src/model plus imported weights.
// Everything a worker or a route needs to know about a model is derived from this entry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { costOf } from '../model/cost.js';
import { deepLabV3, strategyMultiplyAdds, STRATEGIES, type DeepLabHead, type DeepLabVariant, type Strategy } from '../model/deeplab.js';
import type { EngineName } from '../engine/engine.js';
import type { Graph } from '../model/graph.js';
import { splitGraph } from '../model/split.js';
import { mobileNetV2Classifier, OUTPUT_STRIDES, type OutputStride } from '../model/mobilenet-v2.js';
import { ssdMobileNetV2 } from '../model/ssdlite.js';
import { importSsdWeights } from '../weights/tfjs/import-ssd.js';
import { importDeepLabWeights } from '../weights/tflite/deeplab.js';
import { importTfliteWeights, type ImportedWeights } from '../weights/tflite/import.js';

export type Task = 'classification' | 'detection' | 'segmentation';

/** What a segmentation model's weights fix, and the graphs a request may build over them. */
export interface SegmentationSpec {
  /** The output stride and head the file was built with; a request may ask for another stride. */
  outputStride: OutputStride;
  head: DeepLabHead;
  /** The graph for a request's output stride, input scale and output, with the same parameters. */
  graph(variant: DeepLabVariant): Graph;
}

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
  /** Reads the weight file (or folder) at `path` and maps it onto the graph, checking every tensor. */
  importWeights(graph: Graph, path: string): ImportedWeights;
  /** Whether MODELS includes it when unset (default true); see README, Configuration. */
  loadByDefault?: boolean;
  segmentation?: SegmentationSpec;
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
    importWeights: (graph, path) => importTfliteWeights(graph, readFileSync(path)),
  };
}

function ssdlite(name: string, weights: string, description: string): CatalogEntry {
  const config = { alpha: 1.0, resolution: 300, classes: 91, predictor: 'separable' } as const;
  return {
    name,
    task: 'detection',
    description,
    alpha: config.alpha,
    resolution: config.resolution,
    weights,
    labels: 'labels/coco_labels.txt',
    graph: () => ssdMobileNetV2(config),
    importWeights: importSsdWeights,
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
): CatalogEntry {
  const { alpha, resolution, outputStride } = architecture;
  const head = 'lite';
  const graph = (variant: DeepLabVariant) => deepLabV3({ alpha, resolution, head, ...variant });
  return {
    name,
    task: 'segmentation',
    description,
    alpha,
    resolution,
    weights,
    labels: 'labels/pascal_voc_segmentation_labels.txt',
    graph: () => graph({ outputStride, scale: 1, output: 'classes' }),
    importWeights: (g, path) => importDeepLabWeights(g, readFileSync(path), FLOAT_INPUT),
    loadByDefault,
    segmentation: { outputStride, head, graph },
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

export function findEntry(name: string): CatalogEntry {
  const entry = CATALOG.find((e) => e.name === name);
  if (!entry) throw new RangeError(`unknown model ${name}; available: ${CATALOG.map((e) => e.name).join(', ')}`);
  return entry;
}

/** What the HTTP side knows about a loaded model, without its weights. */
export interface ModelInfo extends Pick<CatalogEntry, 'name' | 'task' | 'description' | 'alpha' | 'resolution' | 'weights'> {
  params: number;
  multiplyAdds: number;
  /** Under the schedule the engine runs: with `split` > 1, the memory-efficient one. */
  peakActivationBytes: number;
  /** The engine that runs it and the split factor of memory-efficient inference (1 = off). */
  engine: EngineName;
  split: number;
  labels: string[];
  /** Segmentation models: the file's output stride and head, and the multiply-adds of every setting a request may choose. */
  segmentation?: {
    outputStride: OutputStride;
    head: DeepLabHead;
    multiplyAdds: Record<`${OutputStride}/${Strategy}`, number>;
  };
}

export function describeModel(entry: CatalogEntry, modelDir: string, serving: { engine: EngineName; split?: number } = { engine: 'onnx' }): ModelInfo {
  const graph = entry.graph();
  const cost = costOf(graph);
  const split = serving.split ?? 1;
  return {
    name: entry.name,
    task: entry.task,
    description: entry.description,
    alpha: entry.alpha,
    resolution: entry.resolution,
    weights: entry.weights,
    params: cost.params,
    multiplyAdds: cost.multiplyAdds,
    // Parameters and multiply-adds are the model's own (the split adds only zero biases and moves no work).
    peakActivationBytes: split === 1 ? cost.peakActivationBytes : costOf(splitGraph(graph, split)).peakActivationBytes,
    engine: serving.engine,
    split,
    labels: readLabels(join(modelDir, entry.labels)),
    segmentation: entry.segmentation && describeSegmentation(entry, entry.segmentation),
  };
}

function describeSegmentation(entry: CatalogEntry, spec: SegmentationSpec): ModelInfo['segmentation'] {
  const base = { alpha: entry.alpha, resolution: entry.resolution, head: spec.head };
  const multiplyAdds = Object.fromEntries(OUTPUT_STRIDES.flatMap((outputStride) =>
    STRATEGIES.map((strategy) => [`${outputStride}/${strategy}`, strategyMultiplyAdds({ ...base, outputStride }, strategy)]),
  )) as Record<`${OutputStride}/${Strategy}`, number>;
  return { outputStride: spec.outputStride, head: spec.head, multiplyAdds };
}

/** One label per line; a blank line ends the list (the PASCAL VOC file adds a note after one). */
export function readLabels(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n').map((l) => l.trim());
  const end = lines.indexOf('');
  return end < 0 ? lines : lines.slice(0, end);
}
