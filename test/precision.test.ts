// int8 against independent references: ONNX Runtime's own quantizer (quantize_static, in a Python
// venv, on our float32 ONNX bytes with the same calibration photos), ONNX Runtime's optimized
// model (the QDQ pairs fused into integer kernels), the float32 model's confident answers; and
// precision as a setting (config, PRECISION, the tfjs engine, /v1/models).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { findEntry, loadWeights } from '../src/catalog/catalog.js';
import { ConfigError } from '../src/config.js';
import { decodeImage } from '../src/decode/decode.js';
import { calibrate } from '../src/engine/onnx/calibrate.js';
import { emitOnnx } from '../src/engine/onnx/emit.js';
import { OnnxEngine } from '../src/engine/onnx/engine.js';
import { activationQuantization, quantizedTensors } from '../src/engine/onnx/quantize.js';
import { activationRanges, calibrationDir, calibrationInputs } from '../src/worker/calibration.js';
import { topK } from '../src/worker/classify.js';
import { normalize } from '../src/worker/normalize.js';
import { MODEL_DIR, multipart, photo, testConfig } from './helpers.js';

const VENV = fileURLToPath(new URL('../node_modules/.cache/ort-quantization-venv/', import.meta.url));
const PYTHON = join(VENV, 'bin', 'python');

/** The venv's python, with onnxruntime (its quantization tools) and onnx installed the first time. */
function quantizerPython(): string {
  if (!existsSync(join(VENV, '.installed'))) {
    rmSync(VENV, { recursive: true, force: true });
    execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
    execFileSync(PYTHON, ['-m', 'pip', 'install', '--quiet', '--retries', '0', 'onnxruntime', 'onnx', 'numpy'], { stdio: 'inherit' });
    writeFileSync(join(VENV, '.installed'), '');
  }
  return PYTHON;
}

// quantize_static as its documentation describes a QDQ model for a CPU with VNNI: uint8
// activations, int8 weights per channel (symmetric), MinMax calibration; the operators our int8
// model quantizes (convolutions, additions, the activations fused into them). Then ONNX Runtime
// runs it on the test inputs and prints every output.
const SCRIPT = `
import json, sys
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType, CalibrationMethod
model, calib, tests, out, h, w = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
name = ort.InferenceSession(model, providers=['CPUExecutionProvider']).get_inputs()[0].name
load = lambda f: np.fromfile(f, dtype=np.float32).reshape(-1, 1, h, w, 3)
class Reader(CalibrationDataReader):
    def __init__(self): self.items = iter(load(calib))
    def get_next(self):
        x = next(self.items, None)
        return None if x is None else {name: x}
quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=['Conv', 'Add', 'Clip', 'Relu'])
options = ort.SessionOptions(); options.intra_op_num_threads = 1
session = ort.InferenceSession(out, options, providers=['CPUExecutionProvider'])
print(json.dumps([{o.name: session.run([o.name], {name: x})[0].ravel().tolist() for o in session.get_outputs()} for x in load(tests)]))
`;

const MODEL = 'mobilenet_v2_1.0_224';
// Photos outside the calibration set (models/manifest.json, calibration/).
const TEST_PHOTOS = ['bird.png', 'cat.png', 'parrot.jpg', 'dragonfly.png', 'chelsea.png', 'camera.png', 'sparrow.png', 'motorcycle_left.png'];

describe('int8 MobileNetV2 from the graph description', () => {
  const entry = findEntry(MODEL, 'classification');
  const { model, weights, normalization } = loadWeights(entry);
  const [, h, w] = model.input.shape as [number, number, number];
  const probabilities = model.probabilities.name;
  const dir = mkdtempSync(join(tmpdir(), 'int8-'));
  let tests: Float32Array[];
  let calibration: Float32Array[];
  let float32: OnnxEngine;
  let int8: OnnxEngine;

  beforeAll(async () => {
    tests = await Promise.all(TEST_PHOTOS.map(async (f) => normalize((await decodeImage(photo(f), h, { maxPixels: 1e8, minSide: 1 }, entry.preprocess)).pixels, normalization)));
    calibration = await calibrationInputs(entry, h, normalization, MODEL_DIR);
    const ranges = await calibrate(model.graph, weights, calibration);
    float32 = await OnnxEngine.load(model.graph, weights, { threads: 1 });
    int8 = await OnnxEngine.load(model.graph, weights, { threads: 1, quantization: ranges, optimizedModelPath: join(dir, 'optimized.onnx') });
  }, 120_000);

  afterAll(async () => {
    await float32?.dispose();
    await int8?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (engine: OnnxEngine, input: Float32Array) => (await engine.run({ data: input, batch: 1 })).get(probabilities)!;

  it('is fused by ONNX Runtime into integer kernels: every convolution a QLinearConv, every addition a QLinearAdd', () => {
    const optimized = onnxProto.onnx.ModelProto.decode(readFileSync(join(dir, 'optimized.onnx')));
    const ops = optimized.graph!.node!.map((n) => n.opType!);
    const count = (op: string) => ops.filter((o) => o === op).length;
    expect(count('QLinearConv')).toBe(model.graph.nodes.filter((n) => n.kind === 'conv2d').length);
    expect(count('QLinearAdd')).toBe(model.graph.nodes.filter((n) => n.kind === 'add').length);
    expect(count('Conv') + count('FusedConv') + count('Add')).toBe(0);
  });

  it("gives ONNX Runtime's own quantization of the same float32 model, calibrated on the same photos", async () => {
    const files = { model: join(dir, 'float32.onnx'), calib: join(dir, 'calib.f32'), tests: join(dir, 'tests.f32'), out: join(dir, 'reference.onnx'), script: join(dir, 'quantize.py') };
    writeFileSync(files.model, emitOnnx(model.graph, weights));
    const raw = (inputs: Float32Array[]) => Buffer.concat(inputs.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)));
    writeFileSync(files.calib, raw(calibration));
    writeFileSync(files.tests, raw(tests));
    writeFileSync(files.script, SCRIPT);
    const answer = execFileSync(quantizerPython(), [files.script, files.model, files.calib, files.tests, files.out, String(h), String(w)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const reference = (JSON.parse(answer.trim().split('\n').at(-1)!) as Record<string, number[]>[]).map((o) => Float32Array.from(o[probabilities]!));
    expect(reference).toHaveLength(tests.length);
    for (const [i, expected] of reference.entries()) {
      // The same tensors quantized with the same scales, zero points, int8 weights and int32
      // biases (rounded as NumPy rounds, ties to even), fused into the same kernels: the same bits.
      expect(await run(int8, tests[i]!), TEST_PHOTOS[i]).toEqual(expected);
    }
  }, 300_000);

  it('answers as float32 does on the photos float32 is confident about', async () => {
    let confident = 0;
    for (const [i, input] of tests.entries()) {
      const [best] = topK(await run(float32, input), 1);
      if (best!.score < 0.6) continue;
      confident++;
      expect(topK(await run(int8, input), 1)[0]!.index, TEST_PHOTOS[i]).toBe(best!.index);
    }
    expect(confident).toBeGreaterThanOrEqual(5);
  });

  it('keeps calibrated ranges in a cache keyed by the photos, and names the install step when there are none', async () => {
    const modelDir = join(dir, 'model-dir');
    await expect(activationRanges(entry, model.graph, weights, normalization, modelDir)).rejects.toThrow(/calibration photos .*npm run models/);
    const photos = calibrationDir(modelDir);
    mkdirSync(photos, { recursive: true });
    for (const f of ['bird.png', 'cat.png']) writeFileSync(join(photos, f), photo(f));
    const first = await activationRanges(entry, model.graph, weights, normalization, modelDir);
    expect(Object.keys(first)).toEqual(quantizedTensors(model.graph));
    const [cached] = readdirSync(join(photos, 'cache'));
    // A later load reads the file instead of calibrating: what it holds comes back.
    const marked = { ...first, [quantizedTensors(model.graph)[0]!]: [-1, 1] };
    writeFileSync(join(photos, 'cache', cached!), JSON.stringify(marked));
    expect(await activationRanges(entry, model.graph, weights, normalization, modelDir)).toEqual(marked);
    // Another photo set is another key: calibrated again, not read from the old file.
    writeFileSync(join(photos, 'parrot.jpg'), photo('parrot.jpg'));
    const widened = await activationRanges(entry, model.graph, weights, normalization, modelDir);
    expect(widened).not.toEqual(marked);
    expect(readdirSync(join(photos, 'cache'))).toHaveLength(2);
  }, 60_000);

  it('quantizes the inputs and outputs of convolutions and additions, with uint8 steps that hold 0 exactly', () => {
    const tensors = quantizedTensors(model.graph);
    // The input, every convolution's output (the logits included) and the pooled features the class layer reads.
    expect(tensors).toContain(model.input.name);
    expect(tensors).toContain(model.features.name);
    expect(tensors).toContain(model.logits.name);
    expect(tensors).not.toContain(probabilities);
    // [-1, 3] in 255 steps: 1/63.75 each, 0 at step 63.75, rounded to 64.
    expect(activationQuantization([-1, 3])).toEqual({ scale: Math.fround(4 / 255), zeroPoint: 64 });
    // A range that misses 0 is widened to it: ReLU6's [0.5, 6] quantizes as [0, 6].
    expect(activationQuantization([0.5, 6])).toEqual({ scale: Math.fround(6 / 255), zeroPoint: 0 });
  });
});

describe('precision as a setting', () => {
  it('refuses int8 on the tfjs engine, and int8 for segmentation, naming the model and the valid values', () => {
    expect(() => testConfig({ MODELS: MODEL, ENGINE: 'tfjs', PRECISION: 'int8' })).toThrow(ConfigError);
    expect(() => testConfig({ MODELS: MODEL, ENGINE: 'tfjs', PRECISION: 'int8' })).toThrow(/model mobilenet_v2_1\.0_224: precision int8 runs on ENGINE=onnx only, not tfjs/);
    expect(() => testConfig({ MODELS: 'deeplabv3_mobilenet_v2_0.5_257', PRECISION: 'deeplabv3_mobilenet_v2_0.5_257=int8' })).toThrow(/which segmentation models do not have; valid precisions for segmentation: float32/);
    expect(() => testConfig({ MODELS: MODEL, PRECISION: 'int4' })).toThrow(/PRECISION: 'int4' must be one of float32, int8/);
  });

  it('reads PRECISION as one precision for every model that has it, or model=precision pairs', () => {
    const models = `${MODEL},ssdlite_mobilenet_v2_coco,deeplabv3_mobilenet_v2_0.5_257`;
    expect(testConfig({ MODELS: models, PRECISION: 'int8' }).precision).toEqual({ [MODEL]: 'int8', ssdlite_mobilenet_v2_coco: 'int8' });
    expect(testConfig({ MODELS: models, PRECISION: 'ssdlite_mobilenet_v2_coco=int8' }).precision).toEqual({ ssdlite_mobilenet_v2_coco: 'int8' });
    expect(testConfig({ MODELS: models }).precision).toEqual({});
  });

  describe('SSDLite at int8 against float32', () => {
    const apps: Record<string, Awaited<ReturnType<typeof buildApp>>> = {};
    beforeAll(async () => {
      for (const precision of ['float32', 'int8']) {
        apps[precision] = await buildApp(testConfig({ MODELS: 'ssdlite_mobilenet_v2_coco', PRECISION: precision, POOL_SIZE: '1', LOG_LEVEL: 'warn' }));
        await apps[precision]!.modelsLoaded;
      }
    }, 120_000);
    afterAll(async () => {
      for (const app of Object.values(apps)) await app.close();
    });

    type Box = { x: number; y: number; width: number; height: number };
    const iou = (a: Box, b: Box) => {
      const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
      const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
      return (w * h) / (a.width * a.height + b.width * b.height - w * h);
    };

    // Photos outside the calibration set; float32's confident objects are the reference.
    it.each(['kite_and_cold.jpg', 'cat.png', 'dog_segmentation.png'])('finds in %s the objects float32 is sure of, where it finds them', async (file) => {
      const detect = async (precision: string) => {
        const body = multipart([{ name: 'image', filename: file, data: photo(file) }]);
        const response = await apps[precision]!.inject({ method: 'POST', url: '/v1/detect', ...body });
        expect(response.statusCode).toBe(200);
        return response.json<{ detections: { label: string; score: number; box: Box }[] }>().detections;
      };
      const [reference, int8] = [await detect('float32'), await detect('int8')];
      const sure = reference.filter((d) => d.score >= 0.6);
      expect(sure.length).toBeGreaterThan(0);
      for (const d of sure) {
        const best = Math.max(0, ...int8.filter((e) => e.label === d.label).map((e) => iou(e.box, d.box)));
        expect(best, `${d.label} at ${JSON.stringify(d.box)}`).toBeGreaterThanOrEqual(0.8);
      }
    });
  });

  describe('the service with PRECISION=int8', () => {
    let app: Awaited<ReturnType<typeof buildApp>>;
    beforeAll(async () => {
      app = await buildApp(testConfig({ MODELS: MODEL, PRECISION: 'int8', POOL_SIZE: '1', LOG_LEVEL: 'warn' }));
      await app.modelsLoaded;
    }, 120_000);
    afterAll(async () => app?.close());

    it('says so in /v1/models and classifies with it', async () => {
      const { models } = (await app.inject('/v1/models')).json<{ models: { name: string; precision: string }[] }>();
      expect(models).toEqual([expect.objectContaining({ name: MODEL, precision: 'int8' })]);
      const body = multipart([{ name: 'image', filename: 'parrot.jpg', type: 'image/jpeg', data: photo('parrot.jpg') }]);
      const response = await app.inject({ method: 'POST', url: '/v1/classify', ...body });
      expect(response.statusCode).toBe(200);
      expect(response.json<{ predictions: { label: string }[] }>().predictions[0]!.label).toBe('macaw');
    });
  });
});
