// The TF.js graph-model reader on small models written here: every storage format it decodes,
// and the damaged files it must refuse.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTfjsGraphModel, TfjsFormatError } from '../src/weights/tfjs/graph-model.js';

function writeModel(weights: object[], shard: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'graph-model-'));
  const json = {
    modelTopology: { node: [{ name: 'bn/FusedBatchNorm', op: 'FusedBatchNorm', attr: { epsilon: { f: 0.001 } } }] },
    weightsManifest: [{ paths: ['group1-shard1of1'], weights }],
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'group1-shard1of1'), shard);
  return dir;
}

describe('readTfjsGraphModel', () => {
  it('decodes float32, int32, float16 and affine uint8 weights back to back in one shard', () => {
    const f32 = Buffer.from(Float32Array.of(1.5, -2).buffer);
    const i32 = Buffer.from(Int32Array.of(7).buffer);
    // float16 bit patterns of 1, -0.5 and 65504 (the largest finite half).
    const f16 = Buffer.from(Uint16Array.of(0x3c00, 0xb800, 0x7bff).buffer);
    const u8 = Buffer.from([0, 10, 255]);
    const dir = writeModel([
      { name: 'a', shape: [2], dtype: 'float32' },
      { name: 'b', shape: [], dtype: 'int32' },
      { name: 'c', shape: [3], dtype: 'float32', quantization: { dtype: 'float16' } },
      { name: 'd', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
    ], Buffer.concat([f32, i32, f16, u8]));
    const model = readTfjsGraphModel(dir);
    expect([...model.tensors.get('a')!.values]).toEqual([1.5, -2]);
    expect([...model.tensors.get('b')!.values]).toEqual([7]);
    expect(model.tensors.get('b')!.dtype).toBe('int32');
    expect([...model.tensors.get('c')!.values]).toEqual([1, -0.5, 65504]);
    expect([...model.tensors.get('d')!.values]).toEqual([-1, 4, 126.5]);
    expect(model.nodes.get('bn/FusedBatchNorm')!.attr!.epsilon!.f).toBe(0.001);
  });

  it('refuses shards shorter or longer than the weights they should hold, naming the weight', () => {
    const specs = [{ name: 'w', shape: [4], dtype: 'float32' }];
    expect(() => readTfjsGraphModel(writeModel(specs, Buffer.alloc(12)))).toThrow(/weight w runs past the end of its shards \(16 > 12 bytes\)/);
    expect(() => readTfjsGraphModel(writeModel(specs, Buffer.alloc(20)))).toThrow(/hold 4 bytes no weight describes/);
    expect(() => readTfjsGraphModel(writeModel([{ name: 'q', shape: [1], dtype: 'bool' }], Buffer.alloc(1)))).toThrow(/weight q has unsupported dtype bool/);
  });

  it('refuses a folder without a graph model', () => {
    const dir = mkdtempSync(join(tmpdir(), 'graph-model-'));
    expect(() => readTfjsGraphModel(dir)).toThrow(TfjsFormatError);
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model' }));
    expect(() => readTfjsGraphModel(dir)).toThrow(/is not a TensorFlow.js graph model/);
  });
});
