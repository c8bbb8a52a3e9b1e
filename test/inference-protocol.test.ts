// The Open Inference Protocol over REST, checked against definitions no one here wrote: every
// v2 response body is validated against KServe's own OpenAPI document for the protocol
// (../shared/protocols/kserve_rest_predict_v2.yaml), binary requests are built by hand from the
// text of Triton's binary tensor data extension, and every answer is compared with the task
// API's answer for the same photo.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { buildWithWeights, findEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { MODEL_DIR, photo, testConfig } from './helpers.js';

const PROTOCOLS = fileURLToPath(new URL('../../shared/protocols/', import.meta.url));
const CLASSIFIER = 'mobilenet_v2_1.0_224';
const DETECTOR = 'ssdlite_mobilenet_v2_coco';
const SEGMENTER = 'deeplabv3_mobilenet_v2_0.5_257';

// ---------------------------------------------------------------------------------------------
// KServe's schemas. The document is OpenAPI 3.0: its schemas are JSON Schema (draft 4 style)
// plus OpenAPI's annotations, which Ajv is told to ignore.

const kserve = parse(readFileSync(`${PROTOCOLS}kserve_rest_predict_v2.yaml`, 'utf8')) as { components: { schemas: Record<string, unknown> } };
const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addSchema({ components: kserve.components }, 'kserve');
const schema = (name: string): ValidateFunction => ajv.getSchema(`kserve#/components/schemas/${name}`)!;

/** Which KServe schema answers which route, for success and for failure. */
function schemasFor(method: string, url: string): { ok?: string; error?: string } {
  const path = url.split('?')[0]!;
  if (/^\/v2\/health\/|\/ready$/.test(path)) return {};
  if (path === '/v2') return { ok: 'metadata_server_response', error: 'metadata_server_error_response' };
  if (method === 'POST' && path.endsWith('/infer')) return { ok: 'inference_response', error: 'inference_error_response' };
  return { ok: 'metadata_model_response', error: 'metadata_model_error_response' };
}

interface Output {
  name: string;
  datatype: string;
  shape: number[];
  data?: (number | string)[];
  parameters?: { binary_data_size?: number };
}
interface InferBody {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: { multiply_adds?: number };
  outputs: Output[];
}

/** Binary outputs, read as the extension says: little-endian, in output order, BYTES with 4-byte lengths. */
function readBinaryOutputs(header: InferBody, binary: Buffer): InferBody {
  let offset = 0;
  const outputs = header.outputs.map((o) => {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) return o;
    const bytes = binary.subarray(offset, offset + size);
    offset += size;
    const data: (number | string)[] = [];
    if (o.datatype === 'FP32') for (let i = 0; i < size; i += 4) data.push(bytes.readFloatLE(i));
    else if (o.datatype === 'INT32') for (let i = 0; i < size; i += 4) data.push(bytes.readInt32LE(i));
    else if (o.datatype === 'UINT8') data.push(...bytes);
    else for (let i = 0; i < size; ) {
      const length = bytes.readUInt32LE(i);
      data.push(bytes.subarray(i + 4, i + 4 + length).toString('utf8'));
      i += 4 + length;
    }
    const { parameters: _binary, ...rest } = o;
    return { ...rest, data };
  });
  expect(offset, 'every byte after the JSON belongs to an output').toBe(binary.length);
  return { ...header, outputs };
}

function expectValid(name: string, body: unknown, what: string): void {
  const validate = schema(name);
  expect(validate(body), `${what} is not a KServe ${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 400)}`).toBe(true);
}

let app: FastifyInstance;
/** Responses checked, by KServe schema, to show the checks ran. */
const validated = new Map<string, number>();

/**
 * Sends a v2 request and validates the answer against KServe's document: JSON bodies against
 * their schema; a binary answer (the extension) with its tensors read back into `data` first,
 * which is what the extension replaces; health answers are bodiless. Errors must carry the
 * protocol's `error` string.
 */
async function v2(method: 'GET' | 'POST', url: string, body?: Buffer | string | object, headers: Record<string, string> = {}) {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) || typeof body === 'string' ? body : JSON.stringify(body);
  const res = await app.inject({ method, url, payload, headers: { 'content-type': 'application/json', ...headers } });
  const { ok, error } = schemasFor(method, url);
  let json: unknown;
  if (!ok) {
    expect(res.body, `${url} answers without a body`).toBe('');
    expect([200, 400]).toContain(res.statusCode);
  } else if (res.statusCode === 200) {
    const headerLength = res.headers['inference-header-content-length'];
    if (headerLength === undefined) {
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      json = res.json();
    } else {
      expect(res.headers['content-type']).toBe('application/octet-stream');
      const header = JSON.parse(res.rawPayload.subarray(0, Number(headerLength)).toString()) as InferBody;
      json = readBinaryOutputs(header, res.rawPayload.subarray(Number(headerLength)));
    }
    expectValid(ok, json, `${method} ${url}`);
    validated.set(ok, (validated.get(ok) ?? 0) + 1);
  } else {
    json = res.json();
    expectValid(error!, json, `${method} ${url} ${res.statusCode}`);
    expect(typeof (json as { error: unknown }).error, 'the protocol\'s error is a string').toBe('string');
    validated.set(error!, (validated.get(error!) ?? 0) + 1);
  }
  return { res, json: json as InferBody & { error: string; code: string } & Record<string, unknown> };
}

const imageInput = (...names: string[]) => ({ name: 'image', datatype: 'BYTES', shape: [names.length], data: names.map((n) => photo(n).toString('base64')) });
const infer = (model: string, request: object) => v2('POST', `/v2/models/${model}/infer`, request);
const outputOf = (body: InferBody, name: string) => body.outputs.find((o) => o.name === name)!;

/** A binary request exactly as the extension's example lays it out: the JSON, then each input's bytes. */
function binaryRequest(json: object, tensors: Buffer[]): { body: Buffer; headers: Record<string, string> } {
  const header = Buffer.from(JSON.stringify(json));
  return { body: Buffer.concat([header, ...tensors]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
}
/** A BYTES tensor in binary form: each element preceded by its length, a 4-byte little-endian integer. */
const bytesTensor = (elements: Buffer[]) => Buffer.concat(elements.flatMap((e) => {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(e.length);
  return [length, e];
}));

async function taskApi<T>(route: string, image: Buffer, query = ''): Promise<T> {
  const res = await app.inject({ method: 'POST', url: `/v1/${route}${query}`, payload: image, headers: { 'content-type': 'application/octet-stream' } });
  expect(res.statusCode, res.body).toBe(200);
  return (route === 'segment' && query.includes('format=mask') ? res.rawPayload : res.json()) as T;
}

beforeAll(async () => {
  app = await buildApp(testConfig({ MODELS: [CLASSIFIER, DETECTOR, SEGMENTER].join(','), POOL_SIZE: '2' }));
  await app.modelsLoaded;
});
afterAll(() => app.close());

describe('Open Inference Protocol, REST', () => {
  it('answers health, server metadata and model readiness as the protocol says', async () => {
    for (const url of ['/v2/health/live', '/v2/health/ready', `/v2/models/${CLASSIFIER}/ready`, `/v2/models/${CLASSIFIER}/versions/1/ready`]) {
      expect((await v2('GET', url)).res.statusCode, url).toBe(200);
    }
    for (const url of ['/v2/models/nothing/ready', `/v2/models/${CLASSIFIER}/versions/2/ready`]) expect((await v2('GET', url)).res.statusCode, url).toBe(400);
    const { json } = await v2('GET', '/v2');
    expect(json).toMatchObject({ name: 'mobilenet-serving', extensions: ['binary_tensor_data', 'classification', 'model_repository'] });
  });

  it('describes each model: its inputs (a tensor at its resolution, or encoded images) and its outputs', async () => {
    const shapes = async (model: string) => {
      const { json } = await v2('GET', `/v2/models/${model}`);
      const versioned = await v2('GET', `/v2/models/${model}/versions/1`);
      expect(versioned.json).toEqual(json);
      return Object.fromEntries([...(json.inputs as Output[]), ...(json.outputs as Output[])].map((t) => [t.name, `${t.datatype} [${t.shape.join(', ')}]`]));
    };
    expect(await shapes(CLASSIFIER)).toEqual({ input: 'FP32 [-1, 224, 224, 3]', image: 'BYTES [-1]', probabilities: 'FP32 [-1, 1001]', embedding: 'FP32 [-1, 1280]' });
    expect(await shapes(DETECTOR)).toEqual({
      input: 'FP32 [-1, 300, 300, 3]', image: 'BYTES [-1]',
      detection_boxes: 'FP32 [-1, -1, 4]', detection_scores: 'FP32 [-1, -1]', detection_classes: 'INT32 [-1, -1]', num_detections: 'INT32 [-1]',
    });
    expect(await shapes(SEGMENTER)).toEqual({ input: 'FP32 [-1, 257, 257, 3]', image: 'BYTES [-1]', class_map: 'UINT8 [-1, 257, 257]' });
    for (const url of ['/v2/models/nothing', `/v2/models/${CLASSIFIER}/versions/7`]) {
      const { res, json } = await v2('GET', url);
      expect([res.statusCode, json.code], url).toEqual([400, 'unknown_model']);
    }
  });

  describe('classification', () => {
    it('gives the probabilities of the task API, and with the classification extension its top-k', async () => {
      const [parrot, all] = [photo('parrot.jpg'), await taskApi<{ predictions: { index: number; score: number; label: string }[] }>('classify', photo('parrot.jpg'), '?topk=1001')];
      const { json } = await infer(CLASSIFIER, { id: 'p-1', inputs: [imageInput('parrot.jpg')] });
      expect([json.model_name, json.id]).toEqual([CLASSIFIER, 'p-1']);
      const probabilities = outputOf(json, 'probabilities');
      expect([probabilities.datatype, probabilities.shape]).toEqual(['FP32', [1, 1001]]);
      for (const { index, score } of all.predictions) expect(probabilities.data![index]).toBe(score);

      const { json: top } = await infer(CLASSIFIER, { inputs: [imageInput('parrot.jpg')], outputs: [{ name: 'probabilities', parameters: { classification: 5 } }] });
      const classes = outputOf(top, 'probabilities');
      expect([classes.datatype, classes.shape]).toEqual(['BYTES', [1, 5]]);
      const five = (await taskApi<{ predictions: { index: number; score: number; label: string }[] }>('classify', parrot, '?topk=5')).predictions;
      // "<value>:<index>[:<label>]", as the extension defines it.
      expect(classes.data).toEqual(five.map((p) => `${p.score}:${p.index}:${p.label}`));
      expect(top.parameters?.multiply_adds).toBe(300_775_552);
    });

    it('runs a batch of N images as N tasks: each row is the single answer, the cost N times one', async () => {
      const names = ['parrot.jpg', 'cat.png', 'burger.jpg'];
      const { json } = await infer(CLASSIFIER, { inputs: [imageInput(...names)], outputs: [{ name: 'probabilities', parameters: { classification: 3 } }] });
      const classes = outputOf(json, 'probabilities');
      expect(classes.shape).toEqual([3, 3]);
      for (const [i, name] of names.entries()) {
        const single = (await taskApi<{ predictions: { index: number; score: number; label: string }[] }>('classify', photo(name), '?topk=3')).predictions;
        expect(classes.data!.slice(3 * i, 3 * i + 3)).toEqual(single.map((p) => `${p.score}:${p.index}:${p.label}`));
      }
      expect(json.parameters?.multiply_adds).toBe(3 * 300_775_552);
    });

    it('answers a binary request built from the extension\'s text as it answers the JSON one, outputs in binary too', async () => {
      const names = ['owl.jpg', 'sunflower.png'];
      const images = names.map((n) => photo(n));
      const { body, headers } = binaryRequest({
        inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: bytesTensor(images).length } }],
        outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'embedding' }],
      }, [bytesTensor(images)]);
      const binary = await v2('POST', `/v2/models/${CLASSIFIER}/infer`, body, headers);
      expect(binary.res.headers['inference-header-content-length']).toBeDefined();
      const json = await infer(CLASSIFIER, { inputs: [imageInput(...names)], outputs: [{ name: 'probabilities' }, { name: 'embedding' }] });
      expect(binary.json.outputs).toEqual(json.json.outputs.map((o) => ({ ...o, data: o.data!.map((v) => Math.fround(v as number)) })));
      // Asked together, probabilities and embedding come from one run per image: the classifier's cost.
      expect(json.json.parameters?.multiply_adds).toBe(2 * 300_775_552);
      const all = await v2('POST', `/v2/models/${CLASSIFIER}/infer`, ...Object.values(binaryRequest({
        parameters: { binary_data_output: true },
        inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: bytesTensor(images).length } }],
        outputs: [{ name: 'probabilities' }, { name: 'embedding', parameters: { binary_data: false } }],
      }, [bytesTensor(images)])) as [Buffer, Record<string, string>]);
      expect(all.json.outputs).toEqual(binary.json.outputs);
    });

    it('returns the embedding of /v1/embed, at the backbone\'s cost when asked alone', async () => {
      const { json } = await infer(CLASSIFIER, { inputs: [imageInput('coffee.png')], outputs: [{ name: 'embedding', parameters: { normalize: true } }] });
      const embedded = await taskApi<{ embedding: number[]; multiplyAdds: number }>('embed', photo('coffee.png'), '?normalize=true');
      expect(outputOf(json, 'embedding')).toMatchObject({ datatype: 'FP32', shape: [1, 1280], data: embedded.embedding });
      expect(json.parameters?.multiply_adds).toBe(embedded.multiplyAdds);
    });

    it('takes the preprocessed tensor: UINT8 pixels as the encoded image, FP32 normalized with the file\'s input quantization', async () => {
      // The model's own crop and resize: the tensor a client sends is the model's input.
      const { pixels } = await decodeImage(photo('chelsea.png'), 224, { maxPixels: 5e7, minSide: 1 }, findEntry(CLASSIFIER).preprocess);
      const fromImage = outputOf((await infer(CLASSIFIER, { inputs: [imageInput('chelsea.png')] })).json, 'probabilities').data!;
      const uint8 = await infer(CLASSIFIER, { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 224, 224, 3], data: Array.from(pixels) }] });
      expect(outputOf(uint8.json, 'probabilities').data).toEqual(fromImage);
      // The TFLite file's input tensor says how its uint8 pixels map to the floats it was trained on.
      const { scale, zeroPoint } = buildWithWeights(findEntry(CLASSIFIER), MODEL_DIR).imported.input;
      const normalized = Float32Array.from(pixels, (p) => scale * (p - zeroPoint));
      const fp32 = binaryRequest({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 224, 224, 3], parameters: { binary_data_size: normalized.byteLength } }] }, [Buffer.from(normalized.buffer)]);
      const fromTensor = outputOf((await v2('POST', `/v2/models/${CLASSIFIER}/infer`, fp32.body, fp32.headers)).json, 'probabilities').data!;
      expect(Math.max(...fromTensor.map((v, i) => Math.abs((v as number) - (fromImage[i] as number))))).toBeLessThan(1e-6);
      // Nested JSON data, in the tensor's natural form, is the same tensor.
      const nested = Array.from({ length: 224 }, (_, y) => Array.from({ length: 224 }, (_, x) => Array.from(pixels.subarray((y * 224 + x) * 3, (y * 224 + x) * 3 + 3))));
      expect(outputOf((await infer(CLASSIFIER, { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 224, 224, 3], data: [nested] }] })).json, 'probabilities').data).toEqual(fromImage);
    });
  });

  it('detects as the task API does: normalized corners, padded to the batch\'s most, num_detections', async () => {
    type Detected = { detections: { classId: number; score: number; box: { x: number; y: number; width: number; height: number } }[]; image: { width: number; height: number } };
    const names = ['pets.jpg', 'kite_and_cold.jpg'];
    const { json } = await infer(DETECTOR, { parameters: { minScore: 0.4, maxDetections: 10 }, inputs: [imageInput(...names)] });
    const counts = outputOf(json, 'num_detections').data as number[];
    const boxes = outputOf(json, 'detection_boxes');
    const most = Math.max(...counts);
    expect(boxes.shape).toEqual([2, most, 4]);
    for (const [i, name] of names.entries()) {
      const task = await taskApi<Detected>('detect', photo(name), '?minScore=0.4&maxDetections=10');
      expect(counts[i]).toBe(task.detections.length);
      const { width, height } = task.image;
      task.detections.forEach((d, j) => {
        const at = i * most + j;
        expect(outputOf(json, 'detection_classes').data![at]).toBe(d.classId);
        expect(outputOf(json, 'detection_scores').data![at]).toBeCloseTo(d.score, 6);
        const [ymin, xmin, ymax, xmax] = boxes.data!.slice(4 * at, 4 * at + 4) as number[];
        expect(xmin! * width).toBeCloseTo(d.box.x, 3);
        expect(ymin! * height).toBeCloseTo(d.box.y, 3);
        expect((xmax! - xmin!) * width).toBeCloseTo(d.box.width, 3);
        expect((ymax! - ymin!) * height).toBeCloseTo(d.box.height, 3);
      });
      // Padding past the image's own detections is zeros.
      expect(outputOf(json, 'detection_scores').data!.slice(i * most + counts[i]!, (i + 1) * most).every((s) => s === 0)).toBe(true);
    }
  });

  it('segments as the task API does: the class map of a photo at the model\'s size is its mask PNG', async () => {
    const square = await sharp(photo('pets.jpg')).resize(257, 257, { fit: 'fill' }).png().toBuffer();
    const { body, headers } = binaryRequest({
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: bytesTensor([square]).length } }],
      outputs: [{ name: 'class_map', parameters: { binary_data: true } }],
    }, [bytesTensor([square])]);
    const { json } = await v2('POST', `/v2/models/${SEGMENTER}/infer`, body, headers);
    const classMap = outputOf(json, 'class_map');
    expect([classMap.datatype, classMap.shape]).toEqual(['UINT8', [1, 257, 257]]);
    // The mask PNG is greyscale: one channel, the grey level the class id.
    const greys = async (png: Buffer) => sharp(png).extractChannel(0).raw().toBuffer();
    const mask = await greys(await taskApi<Buffer>('segment', square, '?format=mask'));
    expect(Buffer.from(classMap.data as number[]).equals(mask)).toBe(true);
    expect(new Set(classMap.data)).toEqual(new Set([0, 12])); // background and the dog
    // A request parameter picks the setting, as ?outputStride does.
    const coarse = await infer(SEGMENTER, { parameters: { outputStride: 16 }, inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [square.toString('base64')] }] });
    const coarseMask = await greys(await taskApi<Buffer>('segment', square, '?format=mask&outputStride=16'));
    expect(Buffer.from(outputOf(coarse.json, 'class_map').data as number[]).equals(coarseMask)).toBe(true);
  });

  it('refuses what the protocol or the model does not allow, in the protocol\'s error form and our status codes', async () => {
    const refused = async (status: number, code: string, model: string, request: object | string | Buffer, headers?: Record<string, string>) => {
      const { res, json } = typeof request === 'object' && !Buffer.isBuffer(request)
        ? await infer(model, request)
        : await v2('POST', `/v2/models/${model}/infer`, request, headers);
      expect([res.statusCode, json.code], `${JSON.stringify(request).slice(0, 200)}: ${json.error}`).toEqual([status, code]);
      return json.error;
    };
    const pixels = { name: 'input', datatype: 'UINT8', shape: [1, 224, 224, 3], data: new Array(224 * 224 * 3).fill(0) };
    expect(await refused(400, 'unknown_model', 'resnet50', { inputs: [imageInput('cat.png')] })).toMatch(/resnet50/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [{ ...pixels, datatype: 'FP64' }] })).toMatch(/FP64/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [{ ...pixels, datatype: 'INT32' }] })).toMatch(/FP32 .* or UINT8/);
    const wrongSize = { ...pixels, shape: [1, 300, 300, 3], data: new Array(300 * 300 * 3).fill(0) };
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [wrongSize] })).toMatch(/\[N, 224, 224, 3\]/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [{ ...pixels, shape: [224, 224, 3] }] })).toMatch(/NHWC/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [{ ...pixels, data: [1, 2, 3] }] })).toMatch(/150528 elements, data has 3/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1, 1], data: ['x'] }] })).toMatch(/shape \[N\]/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [imageInput('cat.png'), pixels] })).toMatch(/exactly one input/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [{ ...pixels, name: 'pixels' }] })).toMatch(/unknown input 'pixels'/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [imageInput('cat.png')], outputs: [{ name: 'logits' }] })).toMatch(/unknown output 'logits'/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { inputs: [imageInput('cat.png')], outputs: [{ name: 'probabilities', parameters: { classification: 1002 } }] })).toMatch(/1\.\.1001/);
    expect(await refused(400, 'invalid_request', DETECTOR, { inputs: [imageInput('cat.png')], outputs: [{ name: 'detection_scores', parameters: { classification: 3 } }] })).toMatch(/classification parameter/);
    expect(await refused(400, 'invalid_request', DETECTOR, { parameters: { minScore: 2 }, inputs: [imageInput('cat.png')] })).toMatch(/minScore/);
    expect(await refused(400, 'invalid_request', SEGMENTER, { parameters: { outputStride: 12 }, inputs: [imageInput('cat.png')] })).toMatch(/outputStride/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, '{"inputs": [')).toMatch(/not JSON/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, { outputs: [] })).toMatch(/array of inputs/);
    // Bad image bytes: the task API's own limits and codes.
    expect(await refused(415, 'unsupported_media_type', CLASSIFIER, { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [Buffer.from('not an image at all').toString('base64')] }] })).toBeTruthy();
    expect(await refused(422, 'invalid_image', CLASSIFIER, { inputs: [imageInput('cat.png', 'truncated.jpg')] })).toBeTruthy();
    // Binary sizes that do not add up.
    const image = bytesTensor([photo('cat.png')]);
    const short = binaryRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: image.length + 10 } }] }, [image]);
    expect(await refused(400, 'invalid_request', CLASSIFIER, short.body, short.headers)).toMatch(/binary_data_size/);
    const extra = binaryRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: image.length } }] }, [image, Buffer.alloc(3)]);
    expect(await refused(400, 'invalid_request', CLASSIFIER, extra.body, extra.headers)).toMatch(/3 bytes after the JSON/);
    expect(await refused(400, 'invalid_request', CLASSIFIER, extra.body, { ...extra.headers, 'inference-header-content-length': '0' })).toMatch(/two inputs/);
  });

  it('validated every kind of answer against KServe\'s schemas (the checks are not vacuous)', () => {
    for (const name of ['metadata_server_response', 'metadata_model_response', 'metadata_model_error_response', 'inference_response', 'inference_error_response']) {
      expect(validated.get(name), name).toBeGreaterThan(0);
    }
    expect(schema('inference_response')({ model_name: 'm', outputs: [{ name: 'o', shape: [1], datatype: 'FP32' }] })).toBe(false);
    expect(schema('metadata_model_response')({ name: 'm' })).toBe(false);
    expect(schema('metadata_tensor')({ name: 't', datatype: 'FP32', shape: ['-1'] })).toBe(false);
  });
});

