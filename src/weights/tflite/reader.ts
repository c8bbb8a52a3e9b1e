// A reader for the parts of the TFLite flatbuffer schema (tensorflow/lite/schema/schema.fbs)
// that weight import needs: tensors with their quantization, buffers and the operator list.
// Field numbers below are the schema's field ids; flatbuffers addresses a field by 4 + 2 * id.
import { ByteBuffer } from 'flatbuffers';

export type TensorType = 'float32' | 'float16' | 'int32' | 'uint8' | 'int64' | 'int16' | 'int8' | 'other';
const TENSOR_TYPES: Record<number, TensorType> = {
  0: 'float32', 1: 'float16', 2: 'int32', 3: 'uint8', 4: 'int64', 7: 'int16', 9: 'int8',
};

/** Builtin operator codes we interpret (schema enum BuiltinOperator). */
export const BuiltinOp = {
  ADD: 0, AVERAGE_POOL_2D: 1, CONCATENATION: 2, CONV_2D: 3, DEPTHWISE_CONV_2D: 4, DEQUANTIZE: 6,
  FULLY_CONNECTED: 9, LOGISTIC: 14, RESHAPE: 22, RESIZE_BILINEAR: 23, SOFTMAX: 25, MEAN: 40, SQUEEZE: 43, ARG_MAX: 56, QUANTIZE: 114,
} as const;

export interface Quantization {
  scale: Float32Array;
  zeroPoint: BigInt64Array;
  /** Axis along which per-channel scales apply. */
  axis: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: TensorType;
  /** Raw bytes of a constant tensor, or undefined for activations. */
  data?: Uint8Array;
  quantization?: Quantization;
}

export interface ConvOptions {
  padding: 'same' | 'valid';
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  activation: 'none' | 'relu' | 'relu6' | 'other';
}

/** RESIZE_BILINEAR's coordinate flags (ResizeBilinearOptions). */
export interface ResizeOptions {
  alignCorners: boolean;
  halfPixelCenters: boolean;
}

/** AVERAGE_POOL_2D / MAX_POOL_2D (Pool2DOptions). */
export interface PoolOptions {
  padding: 'same' | 'valid';
  strideH: number;
  strideW: number;
  filterH: number;
  filterW: number;
  activation: ConvOptions['activation'];
}

export interface TfliteOperator {
  index: number;
  builtinCode: number;
  inputs: number[];
  outputs: number[];
  /** Present for CONV_2D and DEPTHWISE_CONV_2D. */
  conv?: ConvOptions;
  /** Present for RESIZE_BILINEAR; absent options mean both flags false. */
  resize?: ResizeOptions;
  /** Present for AVERAGE_POOL_2D. */
  pool?: PoolOptions;
  /** Present for CONCATENATION: the axis in TFLite's NHWC order. */
  concatAxis?: number;
  /** Present for FULLY_CONNECTED (FullyConnectedOptions' fused activation; none when absent). */
  denseActivation?: ConvOptions['activation'];
}

export interface TfliteModel {
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
}

export class TfliteFormatError extends Error {}

/** Random access to one flatbuffer table. */
class Table {
  constructor(private readonly bb: ByteBuffer, readonly pos: number) {}

  private field(id: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * id);
  }
  has(id: number): boolean {
    return this.field(id) !== 0;
  }
  int32(id: number, fallback = 0): number {
    const o = this.field(id);
    return o ? this.bb.readInt32(this.pos + o) : fallback;
  }
  uint32(id: number, fallback = 0): number {
    const o = this.field(id);
    return o ? this.bb.readUint32(this.pos + o) : fallback;
  }
  int8(id: number, fallback = 0): number {
    const o = this.field(id);
    return o ? this.bb.readInt8(this.pos + o) : fallback;
  }
  uint64(id: number): bigint {
    const o = this.field(id);
    return o ? this.bb.readUint64(this.pos + o) : 0n;
  }
  string(id: number): string {
    const o = this.field(id);
    return o ? (this.bb.__string(this.pos + o) as string) : '';
  }
  table(id: number): Table | undefined {
    const o = this.field(id);
    return o ? new Table(this.bb, this.bb.__indirect(this.pos + o)) : undefined;
  }
  /** Start offset and length of a vector field (length 0 when absent). */
  private vector(id: number): { start: number; length: number } {
    const o = this.field(id);
    if (!o) return { start: 0, length: 0 };
    return { start: this.bb.__vector(this.pos + o), length: this.bb.__vector_len(this.pos + o) };
  }
  tables(id: number): Table[] {
    const { start, length } = this.vector(id);
    return Array.from({ length }, (_, i) => new Table(this.bb, this.bb.__indirect(start + 4 * i)));
  }
  int32s(id: number): number[] {
    const { start, length } = this.vector(id);
    return Array.from({ length }, (_, i) => this.bb.readInt32(start + 4 * i));
  }
  float32s(id: number): Float32Array {
    const { start, length } = this.vector(id);
    return Float32Array.from({ length }, (_, i) => this.bb.readFloat32(start + 4 * i));
  }
  int64s(id: number): BigInt64Array {
    const { start, length } = this.vector(id);
    return BigInt64Array.from({ length }, (_, i) => this.bb.readInt64(start + 8 * i));
  }
  bytes(id: number): Uint8Array | undefined {
    const { start, length } = this.vector(id);
    return length ? this.bb.bytes().subarray(start, start + length) : undefined;
  }
}

const ACTIVATIONS: Record<number, ConvOptions['activation']> = { 0: 'none', 1: 'relu', 3: 'relu6' };

function convOptions(options: Table, depthwise: boolean): ConvOptions {
  // DepthwiseConv2DOptions has depth_multiplier at id 3, shifting the later fields by one.
  const shift = depthwise ? 1 : 0;
  return {
    padding: options.int8(0) === 0 ? 'same' : 'valid',
    strideW: options.int32(1),
    strideH: options.int32(2),
    activation: ACTIVATIONS[options.int8(3 + shift)] ?? 'other',
    dilationW: options.int32(4 + shift, 1),
    dilationH: options.int32(5 + shift, 1),
  };
}

function poolOptions(options: Table): PoolOptions {
  return {
    padding: options.int8(0) === 0 ? 'same' : 'valid',
    strideW: options.int32(1),
    strideH: options.int32(2),
    filterW: options.int32(3),
    filterH: options.int32(4),
    activation: ACTIVATIONS[options.int8(5)] ?? 'other',
  };
}

/** Parses a .tflite file's first subgraph. Buffer data is referenced, not copied. */
export function readTflite(file: Uint8Array): TfliteModel {
  if (file.length < 8 || String.fromCharCode(...file.subarray(4, 8)) !== 'TFL3') {
    throw new TfliteFormatError('not a TFLite flatbuffer (file identifier TFL3 missing)');
  }
  const bb = new ByteBuffer(file);
  const model = new Table(bb, bb.readInt32(bb.position()) + bb.position());
  const buffers = model.tables(4);
  const codes = model.tables(1).map((c) => Math.max(c.int8(0), c.int32(3)));
  const [subgraph] = model.tables(2);
  if (!subgraph) throw new TfliteFormatError('model has no subgraph');

  const tensors = subgraph.tables(0).map((t, index): TfliteTensor => {
    const buffer = buffers[t.uint32(2)];
    const q = t.table(4);
    const scale = q?.float32s(2);
    return {
      index,
      name: t.string(3),
      shape: t.int32s(0),
      type: TENSOR_TYPES[t.int8(1)] ?? 'other',
      data: buffer ? bufferData(buffer, file) : undefined,
      quantization: q && scale && scale.length > 0
        ? { scale, zeroPoint: q.int64s(3), axis: q.int32(6) }
        : undefined,
    };
  });

  const operators = subgraph.tables(3).map((op, index): TfliteOperator => {
    const builtinCode = codes[op.uint32(0)] ?? -1;
    const options = op.table(4);
    const isConv = builtinCode === BuiltinOp.CONV_2D || builtinCode === BuiltinOp.DEPTHWISE_CONV_2D;
    return {
      index,
      builtinCode,
      inputs: op.int32s(1),
      outputs: op.int32s(2),
      conv: isConv && options ? convOptions(options, builtinCode === BuiltinOp.DEPTHWISE_CONV_2D) : undefined,
      // ResizeBilinearOptions: new_height, new_width (deprecated), align_corners, half_pixel_centers.
      resize: builtinCode === BuiltinOp.RESIZE_BILINEAR
        ? { alignCorners: options?.int8(2) === 1, halfPixelCenters: options?.int8(3) === 1 }
        : undefined,
      pool: builtinCode === BuiltinOp.AVERAGE_POOL_2D && options ? poolOptions(options) : undefined,
      concatAxis: builtinCode === BuiltinOp.CONCATENATION ? (options?.int32(0) ?? 0) : undefined,
      denseActivation: builtinCode === BuiltinOp.FULLY_CONNECTED ? (ACTIVATIONS[options?.int8(0) ?? 0] ?? 'other') : undefined,
    };
  });

  return { tensors, operators, inputs: subgraph.int32s(1), outputs: subgraph.int32s(2) };
}

/** Buffers are inline, or (files over 2 GB) stored after the flatbuffer at offset/size. */
function bufferData(buffer: Table, file: Uint8Array): Uint8Array | undefined {
  const inline = buffer.bytes(0);
  if (inline) return inline;
  const offset = Number(buffer.uint64(1));
  const size = Number(buffer.uint64(2));
  return offset > 1 && size > 0 ? file.subarray(offset, offset + size) : undefined;
}
