// Tensors as the Open Inference Protocol (KServe v2) carries them, whatever the transport: a
// name, a datatype, a shape, and the elements in row-major order, either as JSON values or as
// little-endian bytes (the binary tensor data extension, gRPC's raw contents). BYTES elements
// are byte strings, each preceded by its length as a 4-byte little-endian integer in the raw form.
import { floatBytes } from '../render/tensor-bytes.js';

/** The request does not follow the protocol, or does not fit the model's metadata. */
export class ProtocolError extends Error {}

export type ParamValue = string | number | boolean;
export type Params = Record<string, ParamValue>;

/** The datatypes this service reads and writes; the protocol defines more (its table of sizes). */
export type Datatype = 'FP32' | 'UINT8' | 'INT32' | 'BYTES';
export const DATATYPES: readonly Datatype[] = ['FP32', 'UINT8', 'INT32', 'BYTES'];

export type TensorValues = Float32Array | Uint8Array | Int32Array | Uint8Array[];

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorValues;
}

const ELEMENT_BYTES: Record<Exclude<Datatype, 'BYTES'>, number> = { FP32: 4, UINT8: 1, INT32: 4 };

/** The number of elements of a shape; every dimension must be a whole number >= 0. */
export function elementsOf(what: string, shape: readonly unknown[]): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || (dim as number) < 0) throw new ProtocolError(`${what}: shape [${shape.join(', ')}] must be whole numbers >= 0`);
    count *= dim as number;
  }
  return count;
}

export function datatypeOf(what: string, datatype: unknown): Datatype {
  if (!DATATYPES.includes(datatype as Datatype)) {
    throw new ProtocolError(`${what}: datatype ${JSON.stringify(datatype)} is not one this service reads (${DATATYPES.join(', ')})`);
  }
  return datatype as Datatype;
}

/** Flattens JSON tensor data, nested in its natural form or already flat, in row-major order. */
function flatten(what: string, data: unknown): unknown[] {
  if (!Array.isArray(data)) throw new ProtocolError(`${what}: data must be an array`);
  return data.some(Array.isArray) ? data.flat(Infinity) : data;
}

function expectCount(what: string, shape: readonly number[], length: number): void {
  const count = elementsOf(what, shape);
  if (length !== count) throw new ProtocolError(`${what}: shape [${shape.join(', ')}] has ${count} elements, data has ${length}`);
}

/** BYTES elements given as byte strings (gRPC's bytes_contents), checked against the shape. */
export function bytesElements(what: string, shape: readonly number[], elements: Uint8Array[]): Uint8Array[] {
  expectCount(what, shape, elements.length);
  return elements;
}

/** JSON tensor data to elements. BYTES elements are base64 strings: a JSON string carries text, not bytes. */
export function valuesFromJson(what: string, datatype: Datatype, shape: readonly number[], data: unknown): TensorValues {
  const flat = flatten(what, data);
  expectCount(what, shape, flat.length);
  const numbers = (check: (v: number) => boolean, expected: string) => flat.map((v, i) => {
    if (typeof v !== 'number' || !check(v)) throw new ProtocolError(`${what}: element ${i} is ${JSON.stringify(v)}, not ${expected}`);
    return v;
  });
  switch (datatype) {
    case 'FP32':
      return Float32Array.from(numbers(Number.isFinite, 'a finite number'));
    case 'UINT8':
      return Uint8Array.from(numbers((v) => Number.isInteger(v) && v >= 0 && v <= 255, 'an integer 0..255'));
    case 'INT32':
      return Int32Array.from(numbers((v) => Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31, 'a 32-bit integer'));
    case 'BYTES':
      return flat.map((v, i) => {
        if (typeof v !== 'string') throw new ProtocolError(`${what}: element ${i} must be a base64 string`);
        return Buffer.from(v, 'base64');
      });
  }
}

/** Raw little-endian tensor bytes to elements; the size must be exactly what the shape and datatype make. */
export function valuesFromBytes(what: string, datatype: Datatype, shape: readonly number[], bytes: Uint8Array): TensorValues {
  const count = elementsOf(what, shape);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (datatype === 'BYTES') {
    const elements: Uint8Array[] = [];
    let at = 0;
    while (at < view.length) {
      if (at + 4 > view.length) throw new ProtocolError(`${what}: BYTES element ${elements.length} has a truncated 4-byte length`);
      const length = view.readUInt32LE(at);
      if (at + 4 + length > view.length) throw new ProtocolError(`${what}: BYTES element ${elements.length} claims ${length} bytes, ${view.length - at - 4} remain`);
      elements.push(view.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    return bytesElements(what, shape, elements);
  }
  const expected = count * ELEMENT_BYTES[datatype];
  if (view.length !== expected) throw new ProtocolError(`${what}: ${datatype} [${shape.join(', ')}] is ${expected} bytes, ${view.length} were sent`);
  switch (datatype) {
    case 'UINT8':
      return Uint8Array.from(view);
    case 'FP32':
      return Float32Array.from({ length: count }, (_, i) => view.readFloatLE(4 * i));
    case 'INT32':
      return Int32Array.from({ length: count }, (_, i) => view.readInt32LE(4 * i));
  }
}

/** Elements to raw little-endian bytes. */
export function valuesToBytes(values: TensorValues): Buffer {
  if (Array.isArray(values)) {
    return Buffer.concat(values.flatMap((element) => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(element.length);
      return [length, element];
    }));
  }
  if (values instanceof Uint8Array) return Buffer.from(values);
  if (values instanceof Float32Array) return floatBytes(values, 'float32');
  const out = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => out.writeInt32LE(v, 4 * i));
  return out;
}

/** Elements as JSON values; BYTES outputs (classification labels) are text. */
export function valuesToJson(values: TensorValues): (number | string)[] {
  return Array.isArray(values) ? values.map((v) => Buffer.from(v).toString('utf8')) : Array.from(values);
}
