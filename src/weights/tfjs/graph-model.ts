// Reads a TensorFlow.js graph model (model.json + binary shards) into named tensors, and the
// node attributes that importers need (e.g. batch-norm epsilons). Shards are read from disk.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NamedTensor {
  name: string;
  shape: number[];
  dtype: string;
  values: Float32Array;
}

/** A string attribute: base64 in newer converter output, char codes in older. */
export type AttrString = string | number[];

export interface GraphNodeDef {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, {
    f?: number;
    i?: string;
    b?: boolean;
    s?: AttrString;
    list?: { i?: string[]; s?: AttrString[] };
    shape?: { dim?: { size?: string }[] };
  }>;
}

export const attrString = (s: AttrString | undefined): string | undefined =>
  s === undefined ? undefined : Array.isArray(s) ? String.fromCharCode(...s) : Buffer.from(s, 'base64').toString('latin1');

export interface TfjsGraphModel {
  tensors: Map<string, NamedTensor>;
  nodes: Map<string, GraphNodeDef>;
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | string;
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

export type WeightsManifest = { paths: string[]; weights: WeightSpec[] }[];

interface ModelJson {
  modelTopology: { node: GraphNodeDef[] };
  weightsManifest: WeightsManifest;
}

export class TfjsFormatError extends Error {}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function decode(spec: WeightSpec, bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / BYTES[spec.quantization?.dtype ?? spec.dtype]!;
  const q = spec.quantization;
  if (!q) {
    return spec.dtype === 'int32'
      ? Float32Array.from({ length: count }, (_, i) => view.getInt32(4 * i, true))
      : Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  }
  if (q.dtype === 'float16') return Float32Array.from({ length: count }, (_, i) => float16ToFloat32(view.getUint16(2 * i, true)));
  // Affine quantization: value = q * scale + min.
  const read = q.dtype === 'uint8' ? (i: number) => view.getUint8(i) : (i: number) => view.getUint16(2 * i, true);
  return Float32Array.from({ length: count }, (_, i) => read(i) * q.scale! + q.min!);
}

/** A TensorFlow.js model folder's model.json, parsed. */
export function readModelJson(dir: string): unknown {
  try {
    return JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  } catch (err) {
    throw new TfjsFormatError(`cannot read ${join(dir, 'model.json')}: ${(err as Error).message}`);
  }
}

/** The tensors a weights manifest describes, read from its shards in `dir` (graph and layers models share the format). */
export function readWeights(dir: string, manifest: WeightsManifest): Map<string, NamedTensor> {
  const tensors = new Map<string, NamedTensor>();
  for (const group of manifest) {
    // A group's specs run through its shards back to back.
    let data: Buffer;
    try {
      data = Buffer.concat(group.paths.map((p) => readFileSync(join(dir, p))));
    } catch (err) {
      throw new TfjsFormatError(`cannot read the weight shards of ${dir}: ${(err as Error).message}`);
    }
    let offset = 0;
    for (const spec of group.weights) {
      const elements = spec.shape.reduce((a, b) => a * b, 1);
      const width = BYTES[spec.quantization?.dtype ?? spec.dtype];
      if (!width) throw new TfjsFormatError(`weight ${spec.name} has unsupported dtype ${spec.dtype}`);
      const end = offset + elements * width;
      if (end > data.length) throw new TfjsFormatError(`weight ${spec.name} runs past the end of its shards (${end} > ${data.length} bytes)`);
      tensors.set(spec.name, { name: spec.name, shape: spec.shape, dtype: spec.dtype, values: decode(spec, data.subarray(offset, end)) });
      offset = end;
    }
    if (offset !== data.length) throw new TfjsFormatError(`shards ${group.paths.join(', ')} hold ${data.length - offset} bytes no weight describes`);
  }
  return tensors;
}

export function readTfjsGraphModel(dir: string): TfjsGraphModel {
  const json = readModelJson(dir) as ModelJson;
  if (!json.modelTopology?.node || !Array.isArray(json.weightsManifest)) {
    throw new TfjsFormatError(`${join(dir, 'model.json')} is not a TensorFlow.js graph model`);
  }
  return { tensors: readWeights(dir, json.weightsManifest), nodes: new Map(json.modelTopology.node.map((n) => [n.name, n])) };
}
