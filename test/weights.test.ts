import { describe, expect, it } from 'vitest';
import { paramsOf } from '../src/model/graph.js';
import { mobileNetV2Classifier } from '../src/model/mobilenet-v2.js';
import { WeightImportError } from '../src/weights/common.js';
import { dequantize, importTfliteWeights } from '../src/weights/tflite/import.js';
import { readTflite, TfliteFormatError } from '../src/weights/tflite/reader.js';
import { modelFile } from './helpers.js';

const FILES = ['mobilenet_v2_1.0_224_quant.tflite', 'tf2_mobilenet_v2_1.0_224_ptq.tflite'];

describe('TFLite weight import', () => {
  it.each(FILES)('fills every parameter of the graph from %s', (file) => {
    const graph = mobileNetV2Classifier({ alpha: 1, resolution: 224 }).graph;
    const { weights, input } = importTfliteWeights(graph, modelFile(file));
    for (const spec of paramsOf(graph)) {
      const values = weights.get(spec.name);
      expect(values, spec.name).toBeDefined();
      expect(values!.length).toBe(spec.shape.reduce((a, b) => a * b, 1));
      expect(values!.every(Number.isFinite)).toBe(true);
    }
    expect(weights.size).toBe(paramsOf(graph).length);
    // Both files take uint8 pixels mapped to about [-1, 1].
    expect(input.scale * (255 - input.zeroPoint)).toBeCloseTo(1, 1);
    expect(input.scale * (0 - input.zeroPoint)).toBeCloseTo(-1, 1);
  });

  it('reads per-tensor and per-channel quantization as stored', () => {
    const quant = readTflite(modelFile(FILES[0]!));
    const ptq = readTflite(modelFile(FILES[1]!));
    const firstFilter = (m: typeof quant) => m.tensors[m.operators.find((op) => op.conv)!.inputs[1]!]!;
    expect(firstFilter(quant)).toMatchObject({ type: 'uint8', shape: [32, 3, 3, 3] });
    expect(firstFilter(quant).quantization!.scale).toHaveLength(1);
    expect(firstFilter(ptq)).toMatchObject({ type: 'int8', shape: [32, 3, 3, 3] });
    expect(firstFilter(ptq).quantization!.scale).toHaveLength(32);
  });

  it('dequantizes per-channel along the quantized axis', () => {
    const tensor = {
      index: 7, name: 'w', shape: [1, 1, 2, 3], type: 'int8' as const,
      data: new Uint8Array(Int8Array.of(1, 2, 3, -1, -2, -3).buffer),
      quantization: { scale: Float32Array.of(1, 10, 100), zeroPoint: BigInt64Array.of(0n, 0n, 0n), axis: 3 },
    };
    expect([...dequantize(tensor, 6, 'test')]).toEqual([1, 20, 300, -1, -20, -300]);
  });

  it('names the layer and the tensor when a shape does not match', () => {
    const narrow = mobileNetV2Classifier({ alpha: 0.5, resolution: 224 }).graph;
    expect(() => importTfliteWeights(narrow, modelFile(FILES[0]!))).toThrow(WeightImportError);
    // TFLite stores a convolution's filter as [out, kh, kw, in]: half width gives 16 filters where the file has 32.
    expect(() => importTfliteWeights(narrow, modelFile(FILES[0]!))).toThrow(/^layer Conv1 expects \[16,3,3,3\] but tensor \d+ 'MobilenetV2\/Conv\/Conv2D_Fold' \[32,3,3,3\] does not match$/);
    const thousand = mobileNetV2Classifier({ alpha: 1, resolution: 224, classes: 1000 }).graph;
    expect(() => importTfliteWeights(thousand, modelFile(FILES[1]!))).toThrow(/layer Logits expects \[1000,1,1,1280\] but tensor \d+ '.*Conv2d_1x1_output.*' \[1001,1,1,1280\]/);
  });

  it('refuses files that are not TFLite flatbuffers', () => {
    expect(() => readTflite(Buffer.from('definitely not a model'))).toThrow(TfliteFormatError);
  });
});
