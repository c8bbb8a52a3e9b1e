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
