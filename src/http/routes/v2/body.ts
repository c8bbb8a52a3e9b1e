// The REST form of an Open Inference Protocol inference: a JSON object, and with the binary
// tensor data extension the tensors' bytes after it, the JSON's length in
// Inference-Header-Content-Length. Inputs whose parameters carry `binary_data_size` take their
// bytes from after the JSON, in input order; outputs are sent as bytes when their `binary_data`
// parameter (or the request's `binary_data_output`) is true.
import type { InferRequest, InferResponse, InputTensor, RequestedOutput } from '../../../oip/infer.js';
import {
  ProtocolError, datatypeOf, valuesFromBytes, valuesFromJson, valuesToBytes, valuesToJson, type Params,
} from '../../../oip/tensors.js';

export const HEADER_LENGTH = 'inference-header-content-length';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function paramsOf(what: string, value: unknown): Params {
  if (value === undefined) return {};
  if (!isObject(value)) throw new ProtocolError(`${what}: parameters must be an object`);
  for (const [key, v] of Object.entries(value)) {
    if (!['string', 'number', 'boolean'].includes(typeof v)) throw new ProtocolError(`${what}: parameter '${key}' must be a string, number or boolean`);
  }
  return value as Params;
}

function booleanParam(what: string, params: Params, name: string): boolean | undefined {
  const value = params[name];
  if (value !== undefined && typeof value !== 'boolean') throw new ProtocolError(`${what}: parameter '${name}' must be a boolean`);
  return value;
}

function stringOf(what: string, value: unknown): string {
  if (typeof value !== 'string') throw new ProtocolError(`${what} must be a string`);
  return value;
}

/** The request in the body; `headerLength` is the Inference-Header-Content-Length header, if sent. */
export function parseInferBody(body: Buffer | undefined, headerLength: string | undefined): InferRequest {
  if (!body || body.length === 0) throw new ProtocolError('the body is empty; send an inference request (JSON)');
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    jsonLength = /^\d+$/.test(headerLength) ? Number(headerLength) : NaN;
    if (!(jsonLength <= body.length)) throw new ProtocolError(`${HEADER_LENGTH} must be a whole number up to the body's ${body.length} bytes; got '${headerLength}'`);
    // The raw binary form (no JSON at all) is for models with one input; these have two.
    if (jsonLength === 0) throw new ProtocolError(`${HEADER_LENGTH}: 0 (a body without JSON) is not taken: the models have two inputs; send the JSON header`);
  }
  let json: unknown;
  try {
    json = JSON.parse(body.subarray(0, jsonLength).toString('utf8'));
  } catch (err) {
    throw new ProtocolError(`the inference request is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(json) || !Array.isArray(json.inputs)) throw new ProtocolError('the inference request must be an object with an array of inputs');
  const binary = body.subarray(jsonLength);
  let offset = 0;
  const inputs = json.inputs.map((raw, i): InputTensor => {
    const what = `inputs[${i}]`;
    if (!isObject(raw)) throw new ProtocolError(`${what} must be an object`);
    const name = stringOf(`${what}.name`, raw.name);
    const shape = raw.shape;
    if (!Array.isArray(shape)) throw new ProtocolError(`input '${name}': shape must be an array`);
    const datatype = datatypeOf(`input '${name}'`, raw.datatype);
    const parameters = paramsOf(`input '${name}'`, raw.parameters);
    const size = parameters.binary_data_size;
    if (size === undefined) {
      if (raw.data === undefined) throw new ProtocolError(`input '${name}' has neither data nor a binary_data_size parameter`);
      return { name, datatype, shape, parameters, data: valuesFromJson(`input '${name}'`, datatype, shape, raw.data) };
    }
    if (!Number.isSafeInteger(size) || (size as number) < 0 || offset + (size as number) > binary.length) {
      throw new ProtocolError(`input '${name}': binary_data_size ${String(size)} does not fit the ${binary.length - offset} bytes left after the JSON`);
    }
    const bytes = binary.subarray(offset, offset + (size as number));
    offset += size as number;
    return { name, datatype, shape, parameters, data: valuesFromBytes(`input '${name}'`, datatype, shape, bytes) };
  });
  if (offset !== binary.length) throw new ProtocolError(`${binary.length - offset} bytes after the JSON belong to no input (binary_data_size)`);
  if (json.outputs !== undefined && !Array.isArray(json.outputs)) throw new ProtocolError('outputs must be an array');
  const outputs = ((json.outputs ?? []) as unknown[]).map((raw, i): RequestedOutput => {
    if (!isObject(raw)) throw new ProtocolError(`outputs[${i}] must be an object`);
    const name = stringOf(`outputs[${i}].name`, raw.name);
    const parameters = paramsOf(`output '${name}'`, raw.parameters);
    booleanParam(`output '${name}'`, parameters, 'binary_data');
    return { name, parameters };
  });
  const parameters = paramsOf('the request', json.parameters);
  booleanParam('the request', parameters, 'binary_data_output');
  const id = json.id === undefined ? undefined : stringOf('id', json.id);
  return { id, parameters, inputs, outputs };
}

/** The answer's body: JSON, or JSON followed by the outputs asked as bytes, with the JSON's length. */
export function encodeInferResponse(response: InferResponse, request: InferRequest): { body: Buffer; headerLength?: number } {
  const allBinary = request.parameters.binary_data_output === true;
  const binaries: Buffer[] = [];
  const outputs = response.outputs.map(({ tensor, requested }) => {
    const { name, datatype, shape, data } = tensor;
    if (!((requested.binary_data as boolean | undefined) ?? allBinary)) return { name, datatype, shape, data: valuesToJson(data) };
    const bytes = valuesToBytes(data);
    binaries.push(bytes);
    return { name, datatype, shape, parameters: { binary_data_size: bytes.length } };
  });
  const json = Buffer.from(JSON.stringify({ ...response, outputs }));
  return binaries.length === 0 ? { body: json } : { body: Buffer.concat([json, ...binaries]), headerLength: json.length };
}
