// The Open Inference Protocol over gRPC, against the real process, through a Python client
// generated in the test from the protocol's official .proto (../shared/protocols) with
// grpc_tools.protoc: all six RPCs, for classification, detection and segmentation, single and
// batched, raw and typed contents; every answer is compared with the task API's for the same
// photo, and errors must come with the gRPC status codes docs/inference-protocol.md gives.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEntry } from '../src/catalog/catalog.js';
import { decodeImage } from '../src/decode/decode.js';
import { photo } from './helpers.js';
import { generateClient, grpcPython } from './grpc/python.js';
import { startServer, type ServerProcess } from './server-process.js';

const CLIENT = fileURLToPath(new URL('./grpc/client.py', import.meta.url));
const CLASSIFIER = 'mobilenet_v2_1.0_224';
const DETECTOR = 'ssdlite_mobilenet_v2_coco';
const SEGMENTER = 'deeplabv3_mobilenet_v2_0.5_257';

interface Call {
  rpc: 'ServerLive' | 'ServerReady' | 'ModelReady' | 'ServerMetadata' | 'ModelMetadata' | 'ModelInfer';
  request?: object;
  timeout?: number;
  repeat?: number;
}
interface Output {
  name: string;
  datatype: string;
  shape: number[];
  data: (number | string)[];
}
interface Result {
  ok?: Record<string, unknown> & { outputs?: Output[]; parameters?: Record<string, { int64_param?: number }> };
  code?: string;
  details?: string;
  trailers?: Record<string, string>;
  ms: number[];
}

let python: string;
let generated: string;
let server: ServerProcess;
let target: string;

/** Runs calls through the generated Python client; one result per call. */
function callPython(calls: Call[]): { results: Promise<Result[]> } {
  const child = spawn(python, [CLIENT, generated, target], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(JSON.stringify(calls));
  const results = new Promise<Result[]>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Result[]) : reject(new Error(`client.py exited ${code}: ${err}`))));
  });
  return { results };
}
const grpcCalls = (calls: Call[]) => callPython(calls).results;

const b64 = (bytes: Buffer | Uint8Array) => Buffer.from(bytes).toString('base64');
/** A BYTES tensor in raw form: each element preceded by its length, a 4-byte little-endian integer. */
const rawBytes = (elements: Buffer[]) => Buffer.concat(elements.flatMap((e) => {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(e.length);
  return [length, e];
}));
const images = (count: number) => ({ name: 'image', datatype: 'BYTES', shape: [count] });
const inferCall = (model: string, request: object, timeout?: number): Call => ({ rpc: 'ModelInfer', request: { model_name: model, ...request }, timeout });
const outputOf = (result: Result, name: string) => result.ok!.outputs!.find((o) => o.name === name)!;

async function taskApi<T>(route: string, image: Buffer, query = ''): Promise<T> {
  const response = await fetch(`${server.base}/v1/${route}${query}`, { method: 'POST', body: new Uint8Array(image), headers: { 'content-type': 'application/octet-stream' } });
  expect(response.status).toBe(200);
  return (query.includes('format=mask') ? Buffer.from(await response.arrayBuffer()) : await response.json()) as T;
}
type Classified = { predictions: { index: number; score: number; label: string }[] };

beforeAll(async () => {
  python = await grpcPython();
  generated = await generateClient(python);
  server = await startServer({ MODELS: [CLASSIFIER, DETECTOR, SEGMENTER].join(','), POOL_SIZE: '2', GRPC_PORT: '0' });
  const port = /gRPC server listening at 127\.0\.0\.1:(\d+)/.exec(server.log())?.[1];
  expect(port, server.log()).toBeDefined();
  target = `127.0.0.1:${port}`;
}, 600_000);

afterAll(async () => {
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

describe('Open Inference Protocol, gRPC, through a client generated from the official .proto', () => {
  it('answers health, server metadata, model readiness and metadata as the REST routes do', async () => {
    const [live, ready, ...rest] = await grpcCalls([
      { rpc: 'ServerLive' },
      { rpc: 'ServerReady' },
      ...[CLASSIFIER, DETECTOR, SEGMENTER, 'resnet50'].map((name): Call => ({ rpc: 'ModelReady', request: { name } })),
      { rpc: 'ModelReady', request: { name: CLASSIFIER, version: '2' } },
      { rpc: 'ServerMetadata' },
      ...[CLASSIFIER, DETECTOR, SEGMENTER].map((name): Call => ({ rpc: 'ModelMetadata', request: { name, version: '1' } })),
      { rpc: 'ModelMetadata', request: { name: 'resnet50' } },
    ]);
    expect([live!.ok, ready!.ok]).toEqual([{ live: true }, { ready: true }]);
    // proto3's JSON form leaves out false booleans.
    expect(rest.slice(0, 5).map((r) => r.ok!.ready ?? false)).toEqual([true, true, true, false, false]);
    // The same, less the extension served over REST only (the management API).
    const restMetadata = (await (await fetch(`${server.base}/v2`)).json()) as { extensions: string[] };
    expect(rest[5]!.ok).toEqual({ ...restMetadata, extensions: restMetadata.extensions.filter((e) => e !== 'model_repository') });
    for (const [i, name] of [CLASSIFIER, DETECTOR, SEGMENTER].entries()) {
      expect(rest[6 + i]!.ok, name).toEqual(await (await fetch(`${server.base}/v2/models/${name}`)).json());
    }
    expect([rest[9]!.code, rest[9]!.details]).toEqual(['NOT_FOUND', expect.stringMatching(/resnet50/)]);
  });

  it('classifies as the task API does: raw BYTES with the classification extension, typed contents batched, UINT8 tensors', async () => {
    const names = ['parrot.jpg', 'cat.png', 'grace_hopper.png'];
    const { pixels } = await decodeImage(photo('parrot.jpg'), 224, { maxPixels: 5e7, minSide: 1 }, findEntry(CLASSIFIER).preprocess);
    const [top, batch, tensor] = await grpcCalls([
      inferCall(CLASSIFIER, {
        id: 'q-7',
        inputs: [images(1)],
        outputs: [{ name: 'probabilities', parameters: { classification: { int64_param: 5 } } }],
        raw_input_contents: [b64(rawBytes([photo('parrot.jpg')]))],
      }),
      inferCall(CLASSIFIER, {
        inputs: [{ ...images(3), contents: { bytes_contents: names.map((n) => b64(photo(n))) } }],
        outputs: [{ name: 'probabilities' }, { name: 'embedding', parameters: { normalize: { bool_param: true } } }],
      }),
      inferCall(CLASSIFIER, { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 224, 224, 3] }], raw_input_contents: [b64(pixels)] }),
    ]);
    const five = (await taskApi<Classified>('classify', photo('parrot.jpg'), '?topk=5')).predictions;
    expect(top!.ok).toMatchObject({ model_name: CLASSIFIER, model_version: '1', id: 'q-7' });
    expect(outputOf(top!, 'probabilities')).toEqual({ name: 'probabilities', datatype: 'BYTES', shape: [1, 5], data: five.map((p) => `${p.score}:${p.index}:${p.label}`) });
    expect(top!.ok!.parameters!.multiply_adds!.int64_param).toBe(300_775_552);

    const probabilities = outputOf(batch!, 'probabilities');
    const embedding = outputOf(batch!, 'embedding');
    expect([probabilities.shape, embedding.shape]).toEqual([[3, 1001], [3, 1280]]);
    for (const [i, name] of names.entries()) {
      const all = (await taskApi<Classified>('classify', photo(name), '?topk=1001')).predictions;
      for (const { index, score } of all) expect(probabilities.data[i * 1001 + index]).toBe(Math.fround(score));
      const embedded = await taskApi<{ embedding: number[] }>('embed', photo(name), '?normalize=true');
      expect(embedding.data.slice(i * 1280, (i + 1) * 1280)).toEqual(embedded.embedding.map((v) => Math.fround(v)));
    }
    expect(outputOf(tensor!, 'probabilities').data).toEqual(probabilities.data.slice(0, 1001));
  });

  it('detects and segments as the task API does, single and batched', async () => {
    type Detected = { detections: { classId: number; score: number; box: { x: number; y: number; width: number; height: number } }[]; image: { width: number; height: number } };
    const names = ['pets.jpg', 'kite_and_cold.jpg'];
    const squares = await Promise.all(names.map((n) => sharp(photo(n)).resize(257, 257, { fit: 'fill' }).png().toBuffer()));
    const both = [b64(rawBytes(names.map((n) => photo(n))))];
    const [wrongType, batch, single, segmented] = await grpcCalls([
      inferCall(DETECTOR, { parameters: { minScore: { string_param: 'x' } }, inputs: [images(2)], raw_input_contents: both }),
      inferCall(DETECTOR, { parameters: { maxDetections: { int64_param: 10 } }, inputs: [images(2)], raw_input_contents: both }),
      inferCall(DETECTOR, { inputs: [images(1)], raw_input_contents: [b64(rawBytes([photo('pets.jpg')]))], outputs: [{ name: 'num_detections' }] }),
      inferCall(SEGMENTER, { inputs: [images(2)], raw_input_contents: [b64(rawBytes(squares))] }),
    ]);
    // A parameter of the wrong type is refused, not ignored.
    expect([wrongType!.code, wrongType!.details]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/minScore/)]);
    const counts = outputOf(batch!, 'num_detections').data as number[];
    const most = Math.max(...counts);
    for (const [i, name] of names.entries()) {
      const task = await taskApi<Detected>('detect', photo(name), '?maxDetections=10');
      expect(counts[i]).toBe(task.detections.length);
      const { width, height } = task.image;
      task.detections.forEach((d, j) => {
        const at = i * most + j;
        expect(outputOf(batch!, 'detection_classes').data[at]).toBe(d.classId);
        expect(outputOf(batch!, 'detection_scores').data[at]).toBeCloseTo(d.score, 6);
        const [ymin, xmin, ymax, xmax] = outputOf(batch!, 'detection_boxes').data.slice(4 * at, 4 * at + 4) as number[];
        expect([xmin! * width, ymin! * height, (xmax! - xmin!) * width, (ymax! - ymin!) * height].map((v) => v.toFixed(2)))
          .toEqual([d.box.x, d.box.y, d.box.width, d.box.height].map((v) => v.toFixed(2)));
      });
    }
    expect(single!.ok!.outputs!.map((o) => o.name)).toEqual(['num_detections']);
    expect(outputOf(single!, 'num_detections').data).toEqual([counts[0]]);

    const classMap = outputOf(segmented!, 'class_map');
    expect([classMap.datatype, classMap.shape]).toEqual(['UINT8', [2, 257, 257]]);
    for (const [i, square] of squares.entries()) {
      // The mask PNG is greyscale: one channel, the grey level the class id.
      const mask = await sharp(await taskApi<Buffer>('segment', square, '?format=mask')).extractChannel(0).raw().toBuffer();
      expect(Buffer.from(classMap.data.slice(i * 257 * 257, (i + 1) * 257 * 257) as number[]).equals(mask), names[i]).toBe(true);
    }
  });

  it('refuses with the protocol\'s status codes: unknown model, wrong datatype or shape, bad image bytes, a passed deadline', async () => {
    const pixels = (datatype: string, shape: number[], bytes: number) => inferCall(CLASSIFIER, { inputs: [{ name: 'input', datatype, shape }], raw_input_contents: [b64(Buffer.alloc(bytes))] });
    const results = await grpcCalls([
      inferCall('resnet50', { inputs: [images(1)], raw_input_contents: [b64(rawBytes([photo('cat.png')]))] }),
      pixels('FP64', [1, 224, 224, 3], 8 * 224 * 224 * 3),
      pixels('INT32', [1, 224, 224, 3], 4 * 224 * 224 * 3),
      pixels('UINT8', [1, 300, 300, 3], 300 * 300 * 3),
      pixels('UINT8', [1, 224, 224, 3], 1000),
      inferCall(CLASSIFIER, { inputs: [images(1)], raw_input_contents: [b64(rawBytes([Buffer.from('not an image')]))] }),
      inferCall(CLASSIFIER, { inputs: [images(1)], raw_input_contents: [b64(rawBytes([photo('truncated.jpg')]))] }),
      inferCall(CLASSIFIER, { inputs: [{ ...images(1), contents: { bytes_contents: [b64(photo('cat.png'))] } }], raw_input_contents: [b64(rawBytes([photo('cat.png')]))] }),
      inferCall(SEGMENTER, { parameters: { strategy: { string_param: 'mf' } }, inputs: [images(1)], raw_input_contents: [b64(rawBytes([photo('pets.jpg')]))] }, 0.05),
    ]);
    expect(results.map((r) => r.code)).toEqual([
      'NOT_FOUND', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT',
      'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED',
    ]);
    expect(results.slice(0, 8).map((r) => r.details)).toEqual([
      expect.stringMatching(/no model named 'resnet50'/), expect.stringMatching(/FP64/), expect.stringMatching(/FP32 .* or UINT8/),
      expect.stringMatching(/\[N, 224, 224, 3\]/), expect.stringMatching(/is 150528 bytes, 1000 were sent/),
      expect.stringMatching(/supported|format/i), expect.stringMatching(/cannot be (read|decoded)/),
      expect.stringMatching(/contents must be empty/),
    ]);
    // The service went on: a valid call afterwards is answered.
    const [after] = await grpcCalls([{ rpc: 'ServerReady' }]);
    expect(after!.ok).toEqual({ ready: true });
  });

  it('feeds the shared metrics: gRPC calls by method and code, and the pipeline\'s images', async () => {
    const text = await (await fetch(`${server.base}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
    expect(value(/^grpc_server_handled_total\{grpc_method="ModelInfer",grpc_code="OK"\} (\d+)/m)).toBeGreaterThanOrEqual(6);
    expect(value(/^grpc_server_handled_total\{grpc_method="ModelInfer",grpc_code="INVALID_ARGUMENT"\} (\d+)/m)).toBeGreaterThanOrEqual(8);
    expect(value(/^grpc_server_handled_total\{grpc_method="ModelMetadata",grpc_code="NOT_FOUND"\} (\d+)/m)).toBe(1);
    expect(value(/^vision_images_processed_total\{model="ssdlite_mobilenet_v2_coco",task="detection"\} (\d+)/m)).toBeGreaterThanOrEqual(3);
  });

  it('measures gRPC against REST v2 on the same classification (reported, not asserted)', async () => {
    const runs = 30;
    const bytes = photo('parrot.jpg');
    const [grpcRun] = await grpcCalls([{ ...inferCall(CLASSIFIER, { inputs: [images(1)], outputs: [{ name: 'probabilities', parameters: { classification: { int64_param: 1 } } }], raw_input_contents: [b64(rawBytes([bytes]))] }), repeat: runs }]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: bytes.length + 4 } }], outputs: [{ name: 'probabilities', parameters: { classification: 1 } }] }));
    const body = Buffer.concat([header, rawBytes([bytes])]);
    const rest: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const response = await fetch(`${server.base}/v2/models/${CLASSIFIER}/infer`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } });
      await response.arrayBuffer();
      rest.push(performance.now() - started);
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    console.info(`classification of parrot.jpg, ${runs} sequential calls, median: gRPC (Python client) ${median(grpcRun!.ms).toFixed(1)} ms, REST v2 binary (Node fetch) ${median(rest).toFixed(1)} ms`);
    expect(grpcRun!.ms).toHaveLength(runs);
  });

  it('drains on SIGTERM: a call in flight is answered, then the process exits 0', async () => {
    const inFlight = callPython([inferCall(SEGMENTER, { parameters: { strategy: { string_param: 'mf' } }, inputs: [images(1)], raw_input_contents: [b64(rawBytes([photo('pets.jpg')]))] }, 30)]);
    // Until the call is in the pipeline: it holds its message in the body budget while it runs.
    const held = async () => Number(/^vision_request_memory_held_bytes\{budget="bodies"\} (\d+)/m.exec(await (await fetch(`${server.base}/metrics`)).text())?.[1]);
    for (let i = 0; i < 300 && (await held()) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await held()).toBeGreaterThan(0);
    server.child.kill('SIGTERM');
    const [result] = await inFlight.results;
    expect(result!.code, result!.details).toBeUndefined();
    expect(outputOf(result!, 'class_map').shape).toEqual([1, 257, 257]);
    expect(await server.exited).toBe(0);
  });
});
