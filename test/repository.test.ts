// The repository on disk: config files checked against the schema with errors that name the file,
// the field and the valid values; versions, pins and defaults; the built-in repository.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOG, indexRepository } from '../src/catalog/catalog.js';
import { readModelConfig } from '../src/catalog/config.js';
import { listRepository, servedVersion } from '../src/catalog/repository.js';
import { loadConfig } from '../src/config.js';
import { MODEL_DIR } from './helpers.js';
import { writeVersion } from './repository-fixtures.js';

const valid = { task: 'classification', format: 'tflite', weights: '@models/mobilenet_v2_1.0_224_quant.tflite', labels: '@models/labels/imagenet_labels.txt' };

function configFile(config: unknown, name = 'config.yaml'): string {
  const file = join(mkdtempSync(join(tmpdir(), 'config-')), name);
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return file;
}

describe('config files', () => {
  it('reads YAML and JSON', () => {
    expect(readModelConfig(configFile(valid, 'config.json'))).toEqual(valid);
    expect(readModelConfig(configFile('task: classification\nformat: onnx\nweights: m.onnx\nlabels: l.txt\npreprocessing: { mean: [0.5, 0.5, 0.5], std: 0.5 }\n'))).toMatchObject({ format: 'onnx', preprocessing: { std: 0.5 } });
  });

  it.each([
    [{ ...valid, format: 'caffe' }, /config\.yaml: format is "caffe"; valid values: tflite, tfjs-layers, tfjs-graph, onnx/],
    [{ ...valid, task: 'ocr' }, /task is "ocr"; valid values: classification, detection, segmentation/],
    [{ ...valid, weigths: 'x' }, /weigths is not a field; valid fields: task, format, weights, labels/],
    [{ task: 'classification', format: 'tflite', labels: 'l.txt' }, /weights is required/],
    [{ ...valid, preprocessing: { channels: 'RGBA' } }, /preprocessing\.channels is "RGBA"; valid values: RGB, BGR/],
    [{ ...valid, preprocessing: { std: [1, 2] } }, /preprocessing\.std must NOT have fewer than 3 items/],
    [{ ...valid, preprocessing: { scale: 0.5, mean: 0.5 } }, /preprocessing gives scale\/zeroPoint or mean\/std, not both/],
    [{ ...valid, preprocessing: { crop: 'centre' } }, /preprocessing\.crop is "centre"; valid values: none, central/],
    [{ ...valid, preprocessing: { crop: 'central', kernel: 'cubic' } }, /preprocessing\.kernel is "cubic"; valid values: lanczos3, bilinear/],
    [{ ...valid, preprocessing: { crop: 'central', fraction: 1.5 } }, /preprocessing\.fraction must be <= 1/],
    [{ ...valid, preprocessing: { fraction: 0.875 } }, /preprocessing\.fraction .* needs crop: central/],
    [{ ...valid, task: 'segmentation', preprocessing: { crop: 'central' } }, /a segmentation model's mask covers the whole photo, so its crop must be none/],
    [{ ...valid, architecture: { alpha: 0.6 } }, /architecture\.alpha is 0\.6; valid values: 0\.35, 0\.5, 0\.75, 1, 1\.3, 1\.4/],
    [{ ...valid, architecture: { resolution: 16 } }, /architecture\.resolution must be >= 32 \(found 16\)/],
    [{ ...valid, precision: 'fp16' }, /precision is "fp16"; valid values: float32, int8/],
    [{ ...valid, task: 'segmentation', precision: 'int8' }, /precision is 'int8', which segmentation models do not have; valid precisions for segmentation: float32/],
    ['task: [unclosed', /config\.yaml: cannot be read/],
  ])('refuses %j naming the file, the field and the valid values', (config, message) => {
    const file = configFile(config);
    expect(() => readModelConfig(file)).toThrow(message);
    expect(() => readModelConfig(file)).toThrow(file);
  });
});

describe('versions', () => {
  it('serves the newest version, or the one model.yaml pins, and skips folders that are not versions', () => {
    const repository = mkdtempSync(join(tmpdir(), 'versions-'));
    for (const version of [1, 2, 10]) writeVersion(repository, 'm', version, { config: valid });
    writeVersion(repository, 'm', 3, { config: valid });
    writeFileSync(join(repository, 'm', '3', 'config.yaml'), '');
    const [model] = listRepository(repository);
    expect(model!.versions).toEqual([1, 2, 3, 10]);
    expect(servedVersion(model!)).toBe(10);
    writeFileSync(join(repository, 'm', 'model.yaml'), 'version: 2\n');
    expect(servedVersion(listRepository(repository)[0]!)).toBe(2);
    writeFileSync(join(repository, 'm', 'model.yaml'), 'version: 7\n');
    expect(servedVersion(listRepository(repository)[0]!)).toBeUndefined();
    expect(indexRepository(repository, MODEL_DIR)[0]!.problem).toMatch(/pins version 7/);
    writeFileSync(join(repository, 'm', 'model.yaml'), 'versoin: 2\n');
    expect(() => listRepository(repository)).toThrow(/model\.yaml: valid fields are version .* and default/);
  });

  it('lists a broken model with its reason instead of failing the others', () => {
    const repository = mkdtempSync(join(tmpdir(), 'broken-'));
    writeVersion(repository, 'good', 1, { config: valid });
    writeVersion(repository, 'bad', 1, { config: { ...valid, format: 'caffe' } });
    const index = indexRepository(repository, MODEL_DIR);
    expect(index.map((m) => [m.name, Boolean(m.entry)])).toEqual([['good', true], ['bad', false]]);
    expect(() => loadConfig({ MODEL_REPOSITORY: repository, MODEL_DIR, MODELS: 'bad' })).toThrow(/MODELS: bad: .*format is "caffe"/);
    expect(loadConfig({ MODEL_REPOSITORY: repository, MODEL_DIR }).models).toEqual(['good']);
  });
});

describe('the built-in repository', () => {
  it('holds the models the catalog had, in its order, each task\'s default first', () => {
    expect(CATALOG.map((e) => [e.name, e.task, e.version])).toEqual([
      ['mobilenet_v2_1.0_224', 'classification', 1],
      ['mobilenet_v2_1.0_224_tf2', 'classification', 1],
      ['ssdlite_mobilenet_v2_coco', 'detection', 1],
      ['deeplabv3_mobilenet_v2_1.0_513', 'segmentation', 1],
      ['deeplabv3_mobilenet_v2_0.5_257', 'segmentation', 1],
      ['deeplabv3_mobilenet_v2_0.5_513', 'segmentation', 1],
    ]);
    expect(loadConfig({}).models).toEqual(CATALOG.filter((e) => e.loadByDefault).map((e) => e.name));
    expect(loadConfig({}).models).not.toContain('deeplabv3_mobilenet_v2_0.5_513');
  });
});
