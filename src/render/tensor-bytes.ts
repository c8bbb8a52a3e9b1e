// Tensors as little-endian bytes, the layout binary answers use (the embedding's float32 or
// float16, the Open Inference Protocol's binary tensors), whatever the host's byte order.

export type FloatBytes = 'float32' | 'float16';

const scratch = new DataView(new ArrayBuffer(4));

/** IEEE 754 binary16 bits of a number, rounded to nearest, ties to even; overflow is infinity. */
export function float16Bits(value: number): number {
  scratch.setFloat32(0, value);
  const bits = scratch.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  // Below binary16's normal range: a subnormal, the implicit leading 1 shifted in.
  const normal = halfExponent > 0;
  if (!normal && halfExponent < -10) return sign;
  const significand = normal ? mantissa : mantissa | 0x800000;
  const shift = normal ? 13 : 14 - halfExponent;
  const kept = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  const rounded = kept + (rest > half || (rest === half && kept & 1) ? 1 : 0);
  // A carry out of the mantissa moves into the exponent, which is the right result.
  return sign | ((normal ? halfExponent << 10 : 0) + rounded);
}

export function floatBytes(values: ArrayLike<number>, type: FloatBytes): Buffer {
  const size = type === 'float32' ? 4 : 2;
  const out = Buffer.allocUnsafe(values.length * size);
  for (let i = 0; i < values.length; i++) {
    if (type === 'float32') out.writeFloatLE(values[i]!, 4 * i);
    else out.writeUInt16LE(float16Bits(values[i]!), 2 * i);
  }
  return out;
}
