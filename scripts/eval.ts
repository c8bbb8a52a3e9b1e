// Accuracy on labelled data, as the field measures it (docs/accuracy.md):
//   npm run eval -- classification --labels labels.tsv [--column NAME] [--label-classes 1000] | --folders DIR [--synsets FILE]
//   npm run eval -- detection --annotations instances.json --images DIR [--min-score 1e-8] [--iou 0.6]
//   npm run eval -- segmentation --images DIR --masks DIR [--list list.txt] [--strategy single|mf] [--output-stride 8|16|32]
// Common: [--model NAME] [--url http://host:port] [--out DIR] [--limit N]
//         in-process only: [--crop none|central] [--fraction 0.875] [--kernel lanczos3|bilinear]
// Writes DIR/results.json, DIR/report.md (and DIR/detections.json, COCO's results format).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { indexRepository, type CatalogEntry } from '../src/catalog/catalog.js';
import { loadConfig } from '../src/config.js';
import { CROP_POLICIES, RESIZE_KERNELS, type Preprocess } from '../src/decode/preprocess.js';
import { PAPER_SEGMENTATION_TABLE } from '../src/model/deeplab-table.js';
import { Labels } from '../src/render/labels.js';
import {
  DETECTION_EVAL_SETTINGS, evalClassification, evalDetection, evalSegmentation, inProcessTarget, readClassFolders, readCocoDataset,
  readLabelsFile, readMaskedImages, servedModel, urlTarget, type ClassificationRun, type DetectionRun, type EvalTarget, type Progress, type SegmentationRun,
  type ServedModel,
} from './eval-run.js';

const USAGE = 'usage: npm run eval -- classification|detection|segmentation [options]; see the head of scripts/eval.ts or docs/accuracy.md';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    url: { type: 'string' },
    out: { type: 'string' },
    limit: { type: 'string' },
    labels: { type: 'string' },
    column: { type: 'string' },
    'label-classes': { type: 'string', default: '1000' },
    folders: { type: 'string' },
    synsets: { type: 'string' },
    annotations: { type: 'string' },
    images: { type: 'string' },
    'min-score': { type: 'string', default: String(DETECTION_EVAL_SETTINGS.minScore) },
    iou: { type: 'string', default: String(DETECTION_EVAL_SETTINGS.iouThreshold) },
    masks: { type: 'string' },
    list: { type: 'string' },
    strategy: { type: 'string', default: 'single' },
    'output-stride': { type: 'string' },
    crop: { type: 'string' },
    fraction: { type: 'string' },
    kernel: { type: 'string' },
  },
});

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

const required = (name: keyof typeof args): string => (args[name] as string | undefined) ?? fail(`--${name} is required; ${USAGE}`);
const numberArg = (name: keyof typeof args): number | undefined => {
  const raw = args[name] as string | undefined;
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) fail(`--${name} ${raw} is not a number`);
  return value;
};

/** The in-process service's configuration (MODEL_REPOSITORY, MODEL_DIR, ... from the environment), and its repository. */
const config = loadConfig(process.env);
const repository = indexRepository(config.repository, config.modelDir);
const entryNamed = (name: string): CatalogEntry =>
  repository.find((m) => m.name === name)?.entry ?? fail(`no model '${name}' can be read from ${config.repository}; its models: ${repository.map((m) => m.name).join(', ')}`);

/** The model config's preprocessing, with the command line's changes; `model` undefined: a server's, which cannot change. */
function preprocessOverride(model: string | undefined): Preprocess | undefined {
  if (args.crop === undefined && args.fraction === undefined && args.kernel === undefined) return undefined;
  if (model === undefined) fail('--crop, --fraction and --kernel change the in-process service; a running server keeps its own preprocessing');
  const own = entryNamed(model).preprocess;
  const crop = (args.crop ?? own.crop) as Preprocess['crop'];
  if (!(CROP_POLICIES as readonly string[]).includes(crop)) fail(`--crop ${crop} must be one of ${CROP_POLICIES.join(', ')}`);
  const kernel = (args.kernel ?? own.kernel) as Preprocess['kernel'];
  if (!(RESIZE_KERNELS as readonly string[]).includes(kernel)) fail(`--kernel ${kernel} must be one of ${RESIZE_KERNELS.join(', ')}`);
  return crop === 'central' ? { crop, fraction: numberArg('fraction') ?? (own.crop === 'central' ? own.fraction : 0.875), kernel } : { crop, kernel };
}

/** A progress bar on a terminal; a line every tenth of the way otherwise (logs, CI). */
function progressBar(label: string): Progress {
  const started = performance.now();
  let lastTenth = -1;
  return (done, total) => {
    const seconds = (performance.now() - started) / 1000;
    const text = `${label} ${done}/${total} ${(seconds).toFixed(1)} s${done < total ? `, ~${((seconds / done) * (total - done)).toFixed(0)} s left` : ''}`;
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = Math.round((width * done) / total);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}${done === total ? '\n' : ''}`);
    } else if (Math.floor((10 * done) / total) > lastTenth) {
      lastTenth = Math.floor((10 * done) / total);
      process.stderr.write(`${text}\n`);
    }
  };
}

const pct = (v: number) => (v < 0 ? 'n/a' : `${(100 * v).toFixed(1)}`);

/** Published figures to set beside ours; each says what it was measured on. */
const PUBLISHED: Record<string, { source: string; figures: string }[]> = {
  classification: [
    { source: 'paper (Sandler et al. 2018, Table 4), float, ImageNet val, 224', figures: 'top-1 72.0' },
    { source: 'TF-slim release table, mobilenet_v2_1.0_224 float, ImageNet val, central crop', figures: 'top-1 71.8, top-5 91.0' },
    { source: 'TFLite hosted models, Mobilenet_V2_1.0_224_quant (uint8), ImageNet val', figures: 'top-1 70.8, top-5 89.9' },
  ],
  detection: [
    { source: 'paper (Table 6), SSDLite 320x320, COCO test-dev', figures: 'mAP 22.1' },
    { source: 'TF Object Detection API zoo, ssdlite_mobilenet_v2_coco 300x300, COCO val subset', figures: 'mAP 22' },
  ],
  segmentation: PAPER_SEGMENTATION_TABLE.map((r) => ({
    source: `paper (Table 7), MobileNetV2 1.0, OS ${r.outputStride}, ${r.head === 'aspp' ? 'ASPP' : 'no ASPP'}, ${r.strategy === 'mf' ? 'MF' : 'single scale'}, PASCAL VOC 2012 val`,
    figures: `mIoU ${r.mIOU}`,
  })),
};

function publishedTable(task: string): string[] {
  return ['', '| published | figures |', '| --- | --- |', ...(PUBLISHED[task] ?? []).map((p) => `| ${p.source} | ${p.figures} |`)];
}

function classificationReport(run: ClassificationRun, labelName: (id: number | undefined) => string): string[] {
  const m = run.metrics;
  return [
    `| images | top-1 | top-5 |`, '| --- | --- | --- |', `| ${m.images} | ${pct(m.top1)} | ${pct(m.top5)} |`,
    '', `Labels in the ${run.labelClasses}-class convention; the model has ${run.model.classes} outputs${run.model.classes > run.labelClasses ? ', background at 0 (a background answer counts as wrong)' : ''}.`,
    '', 'Most frequent confusions (true -> predicted):', '',
    ...m.confusions.map((c) => `- ${labelName(c.label)} -> ${labelName(c.predicted)} (${c.count})`),
  ];
}

function detectionReport(run: DetectionRun): string[] {
  const m = run.metrics;
  return [
    '| mAP@[.5:.95] | AP50 | AP75 | AP small | AP medium | AP large | AR@1 | AR@10 | AR@100 |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    `| ${[m.ap, m.ap50, m.ap75, m.apSmall, m.apMedium, m.apLarge, m.ar1, m.ar10, m.ar100].map(pct).join(' | ')} |`,
    '', `${run.results.length} detections (score >= ${run.settings.minScore}, IoU ${run.settings.iouThreshold}, at most ${run.settings.maxDetections} per image).`,
    ...(run.unmapped.length ? [`Labels without a dataset category, dropped: ${run.unmapped.join(', ')}.`] : []),
  ];
}

function segmentationReport(run: SegmentationRun, labelName: (id: number) => string): string[] {
  const m = run.metrics;
  return [
    '| images | mIoU | pixel accuracy |', '| --- | --- | --- |', `| ${run.images} | ${pct(m.mIoU)} | ${pct(m.pixelAccuracy)} |`,
    '', '| class | IoU |', '| --- | --- |',
    ...m.iou.flatMap((v, c) => (v === undefined ? [] : [`| ${labelName(c)} | ${pct(v)} |`])),
  ];
}

async function main(): Promise<void> {
  const task = positionals[0];
  if (task !== 'classification' && task !== 'detection' && task !== 'segmentation') fail(USAGE);
  const limit = numberArg('limit');
  const started = performance.now();
  let target: EvalTarget;
  let modelName: string;
  if (args.url) {
    preprocessOverride(undefined);
    target = urlTarget(args.url);
    modelName = args.model ?? (await servedModel(target, task, undefined)).name;
  } else {
    // The task's default model as the service would load it.
    modelName = args.model ?? config.models.map(entryNamed).find((e) => e.task === task)?.name ?? fail(`MODELS (${config.models.join(', ')}) has no ${task} model; name one with --model`);
    const preprocess = preprocessOverride(modelName);
    target = await inProcessTarget({ models: [modelName], ...(preprocess ? { preprocess: { [modelName]: preprocess } } : {}) });
  }
  const loadSeconds = (performance.now() - started) / 1000;
  const progress = progressBar(`${task} ${modelName}`);
  const evalStarted = performance.now();
  let report: string[];
  let results: { model: ServedModel } & Record<string, unknown>;
  const extraFiles: [string, string][] = [];
  // Class names from the model's label file, when the repository has the model.
  const entry = repository.find((m) => m.name === modelName)?.entry;
  const labels = entry ? Labels.read(entry.labels, entry.labelOffset) : undefined;
  const nameOf = (modelIndex: number) => labels?.of(modelIndex) ?? `class ${modelIndex}`;
  try {
    if (task === 'classification') {
      const all = args.folders ? readClassFolders(args.folders, args.synsets) : readLabelsFile(required('labels'), { column: args.column, imagesDir: args.images });
      const run = await evalClassification(target, modelName, all.slice(0, limit), numberArg('label-classes')!, progress);
      const offset = run.model.classes - run.labelClasses;
      report = classificationReport(run, (id) => (id === undefined ? 'background' : nameOf(id + offset)));
      results = { ...run };
    } else if (task === 'detection') {
      const dataset = readCocoDataset(required('annotations'));
      if (limit !== undefined) dataset.images = dataset.images.slice(0, limit);
      const settings = { ...DETECTION_EVAL_SETTINGS, minScore: numberArg('min-score')!, iouThreshold: numberArg('iou')! };
      const run = await evalDetection(target, modelName, dataset, required('images'), settings, progress);
      report = detectionReport(run);
      const { results: detections, ...rest } = run;
      results = rest;
      extraFiles.push(['detections.json', JSON.stringify(detections)]);
    } else {
      const strategy = args.strategy as 'single' | 'mf';
      if (strategy !== 'single' && strategy !== 'mf') fail(`--strategy ${args.strategy} must be single or mf`);
      const pairs = readMaskedImages(required('images'), required('masks'), args.list).slice(0, limit);
      const run = await evalSegmentation(target, modelName, pairs, { strategy, outputStride: numberArg('output-stride') }, progress);
      report = segmentationReport(run, nameOf);
      results = { ...run };
    }
  } finally {
    await target.close();
  }
  const seconds = (performance.now() - evalStarted) / 1000;
  const out = args.out ?? join('eval-results', `${task}-${modelName}`);
  mkdirSync(out, { recursive: true });
  // The preprocessing the service reported for the model: the run's own, in-process or at --url.
  const { preprocess } = results.model;
  const header = [`# ${task}: ${modelName}`, '', `Preprocessing: ${JSON.stringify(preprocess)}${args.url ? ` (the server at ${args.url})` : ''}.`, `Evaluated in ${seconds.toFixed(1)} s (models loaded in ${loadSeconds.toFixed(1)} s).`, ''];
  const markdown = [...header, ...report, ...publishedTable(task), ''].join('\n');
  writeFileSync(join(out, 'results.json'), JSON.stringify({ task, url: args.url, seconds, preprocess, ...results }, null, 2));
  writeFileSync(join(out, 'report.md'), markdown);
  for (const [name, text] of extraFiles) writeFileSync(join(out, name), text);
  console.log(markdown);
  console.log(`written to ${out}/`);
}

await main();
