// ModelInfer's messages to the protocol's data model and back (src/oip). Tensors arrive either in
// `raw_input_contents` (one byte string per input, little-endian) or in typed `contents`; answers
// are always raw (`raw_output_contents`), as Triton answers. Message shapes are as
// @grpc/proto-loader gives them: snake_case, int64 as numbers, unset fields at their defaults.
import type { InferRequest, InferResponse, InputTensor } from '../oip/infer.js';
import {
  ProtocolError, bytesElements, datatypeOf, valuesFromBytes, valuesFromJson, valuesToBytes, type Params, type ParamValue,
} from '../oip/tensors.js';

export interface InferParameter {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param';
}

interface TensorContents {
  int_contents: number[];
  uint_contents: number[];
  fp32_contents: number[];
  bytes_contents: Buffer[];
  [other: string]: unknown[];
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameter>;
  inputs: { name: string; datatype: string; shape: number[]; parameters: Record<string, InferParameter>; contents: TensorContents | null }[];
  outputs: { name: string; parameters: Record<string, InferParameter> }[];
  raw_input_contents: Buffer[];
}

function paramsOf(params: Record<string, InferParameter>): Params {
  return Object.fromEntries(Object.entries(params).flatMap(([name, p]): [string, ParamValue][] => (p.parameter_choice ? [[name, p[p.parameter_choice]!]] : [])));
}

const CONTENTS_FIELD = { FP32: 'fp32_contents', UINT8: 'uint_contents', INT32: 'int_contents', BYTES: 'bytes_contents' } as const;

/** The message as the protocol's request; the tensors' sizes are checked against their shapes. */
export function inferRequestOf(message: ModelInferRequest): InferRequest {
  const raw = message.raw_input_contents;
  if (raw.length > 0 && raw.length !== message.inputs.length) {
    throw new ProtocolError(`raw_input_contents has ${raw.length} entries for ${message.inputs.length} inputs: one per input, in order`);
  }
  const inputs = message.inputs.map((input, i): InputTensor => {
    const what = `input '${input.name}'`;
    const datatype = datatypeOf(what, input.datatype);
    const parameters = paramsOf(input.parameters);
    const filled = input.contents ? Object.entries(input.contents).filter(([, values]) => Array.isArray(values) && values.length > 0) : [];
    if (raw.length > 0) {
      if (filled.length > 0) throw new ProtocolError(`${what}: contents must be empty when raw_input_contents is used`);
      return { name: input.name, datatype, shape: input.shape, parameters, data: valuesFromBytes(what, datatype, input.shape, raw[i]!) };
    }
    const field = CONTENTS_FIELD[datatype];
    const stray = filled.find(([name]) => name !== field);
    if (stray) throw new ProtocolError(`${what}: a ${datatype} tensor's values go in contents.${field}, not ${stray[0]}`);
    const values = input.contents?.[field] ?? [];
    // Elements of BYTES are byte strings already; numbers are checked as JSON numbers are.
    const data = datatype === 'BYTES' ? bytesElements(what, input.shape, values as Buffer[]) : valuesFromJson(what, datatype, input.shape, values);
    return { name: input.name, datatype, shape: input.shape, parameters, data };
  });
  return {
    id: message.id,
    parameters: paramsOf(message.parameters),
    inputs,
    outputs: message.outputs.map((o) => ({ name: o.name, parameters: paramsOf(o.parameters) })),
  };
}

function parameterOf(value: ParamValue): InferParameter {
  if (typeof value === 'boolean') return { bool_param: value };
  if (typeof value === 'number') return { int64_param: value };
  return { string_param: value };
}

export function inferResponseOf(response: InferResponse) {
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id ?? '',
    parameters: Object.fromEntries(Object.entries(response.parameters).map(([name, value]) => [name, parameterOf(value)])),
    outputs: response.outputs.map(({ tensor: { name, datatype, shape } }) => ({ name, datatype, shape, parameters: {} })),
    raw_output_contents: response.outputs.map(({ tensor }) => valuesToBytes(tensor.data)),
  };
}
