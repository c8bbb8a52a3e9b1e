#!/usr/bin/env node
// Generates test/fixtures/tflite-reference.json: top-5 predictions of the real
// TensorFlow Lite interpreter (the TFLite C++ runtime compiled to WebAssembly,
// shipped in the npm package @tensorflow/tfjs-tflite) for our test photos.
//
// This is a maintenance tool, NOT part of the test suite. Its dependencies are
// deliberately not in the project's package.json; install them into a scratch
// directory and run this script from there (see README.md next to this file).
//
//   cd /path/to/scratch && node /path/to/main/test/reference/tflite-reference.mjs \
//       [--shared DIR] [--out FILE] [--wasm plain|simd] [--feed auto|quantize]

import { createRequire } from 'node:module';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

const here = dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const opts = {
    deps: process.cwd(),
    shared: process.env.SHARED_DIR ?? resolve(here, '../../../shared'),
    out: resolve(here, '../fixtures/tflite-reference.json'),
    wasm: 'plain',
    feed: 'auto',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts)) throw new Error(`unknown option ${argv[i]}`);
    opts[key] = argv[++i];
  }
  if (!['plain', 'simd'].includes(opts.wasm)) throw new Error('--wasm must be plain or simd');
  if (!['auto', 'quantize'].includes(opts.feed)) throw new Error('--feed must be auto or quantize');
  return opts;
}
const opts = parseArgs(process.argv.slice(2));

// Packages are resolved from the scratch directory (--deps, default: cwd),
// never from the project's own node_modules.
const requireDep = createRequire(join(resolve(opts.deps), 'noop.js'));

const MODELS = ['mobilenet_v2_1.0_224_quant.tflite', 'tf2_mobilenet_v2_1.0_224_ptq.tflite'];
const EXCLUDED_IMAGES = new Set([
  'truncated.jpg',
  'bird_segmentation_mask.png',
  'dog_segmentation_mask.png',
  'segmentation_golden_rotation0.png',
]);
const SIZE = 224;

// ------------------------------------------- TFLite flatbuffer header reader
// tfjs-tflite does not expose tensor quantization parameters, so we read them
// (and only them: type, shape, name, scale, zero point of the graph's input and
// output tensors) from the model file. Field ids follow tensorflow/lite/schema.
const TFLITE_TYPES = ['float32', 'float16', 'int32', 'uint8', 'int64', 'string', 'bool', 'int16', 'complex64', 'int8', 'float64'];

function readModelIo(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (p) => dv.getUint32(p, true);
  const field = (table, id) => {
    const vt = table - dv.getInt32(table, true);
    const vtSize = dv.getUint16(vt, true);
    const off = 4 + 2 * id < vtSize ? dv.getUint16(vt + 4 + 2 * id, true) : 0;
    return off ? table + off : 0;
  };
  const deref = (p) => p + u32(p);
  const vector = (table, id) => {
    const p = field(table, id);
    if (!p) return { len: 0, start: 0 };
    const v = deref(p);
    return { len: u32(v), start: v + 4 };
  };
  const tableAt = (vec, i) => deref(vec.start + 4 * i);
  const string = (table, id) => {
    const { len, start } = vector(table, id);
    return new TextDecoder().decode(bytes.subarray(start, start + len));
  };

  const model = deref(0);
  const subgraph = tableAt(vector(model, 2), 0); // Model.subgraphs[0]
  const tensors = vector(subgraph, 0);
  const describe = (tensorIndex) => {
    const t = tableAt(tensors, tensorIndex);
    const shapeVec = vector(t, 0);
    const shape = Array.from({ length: shapeVec.len }, (_, i) => dv.getInt32(shapeVec.start + 4 * i, true));
    const typePos = field(t, 1);
    const type = TFLITE_TYPES[typePos ? dv.getInt8(typePos) : 0];
    const qPos = field(t, 4);
    let quantization = null;
    if (qPos) {
      const q = deref(qPos);
      const scales = vector(q, 2);
      const zps = vector(q, 3);
      const scale = Array.from({ length: scales.len }, (_, i) => dv.getFloat32(scales.start + 4 * i, true));
      const zeroPoint = Array.from({ length: zps.len }, (_, i) => Number(dv.getBigInt64(zps.start + 8 * i, true)));
      if (scale.length) quantization = { scale: scale.length === 1 ? scale[0] : scale, zeroPoint: zeroPoint.length === 1 ? zeroPoint[0] : zeroPoint };
    }
    return { name: string(t, 3), type, shape, quantization };
  };
  const indices = (id) => {
    const v = vector(subgraph, id);
    return Array.from({ length: v.len }, (_, i) => dv.getInt32(v.start + 4 * i, true));
  };
  return { inputs: indices(1).map(describe), outputs: indices(2).map(describe) };
}

// ------------------------------------- make the browser build load in Node
// The package's loader behaves like a web worker when there is no `window`:
// it calls importScripts(<wasmPath>/tflite_web_api_cc[_simd].js), then the
// emscripten glue fetch()es the .wasm next to it. We provide exactly those
// hooks, backed by local files.
function installNodeShims(wasmDir, variant) {
  // Pretend SharedArrayBuffer is unavailable so that feature detection picks a
  // single-threaded build (the threaded ones need Web Workers).
  delete globalThis.SharedArrayBuffer;

  const base = pathToFileURL(wasmDir + '/').href;
  globalThis.self = globalThis;
  globalThis.location = { origin: 'file://', href: base };

  globalThis.importScripts = (url) => {
    let file = fileURLToPath(url);
    // Choose the wasm build explicitly instead of trusting feature detection.
    const name = file.slice(file.lastIndexOf('/') + 1);
    if (!/^tflite_web_api_cc(_simd)?\.js$/.test(name)) throw new Error(`unexpected script ${url}`);
    file = join(dirname(file), variant === 'simd' ? 'tflite_web_api_cc_simd.js' : 'tflite_web_api_cc.js');
    globalThis.__tfliteWasmFile = file.replace(/\.js$/, '.wasm');
    vm.runInThisContext(readFileSync(file, 'utf8'), { filename: file });
  };

  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    if (url.startsWith('file:')) {
      const body = readFileSync(fileURLToPath(url));
      const type = url.endsWith('.wasm') ? 'application/wasm' : 'application/octet-stream';
      return new Response(body, { status: 200, headers: { 'content-type': type } });
    }
    return realFetch(input, init);
  };
}

// ------------------------------------------------------------ preprocessing
async function loadRgb(sharp, filePath) {
  const { data, info } = await sharp(filePath)
    .rotate()
    .resize(SIZE, SIZE, { fit: 'fill' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== SIZE || info.height !== SIZE || data.length !== SIZE * SIZE * 3) {
    throw new Error(`${filePath}: unexpected raw output ${info.width}x${info.height}x${info.channels} (${data.length} bytes)`);
  }
  return data;
}

// Convert RGB bytes to what the model's input tensor expects.
// Model-space value is pixel/127.5 - 1 (MobileNetV2 convention); for quantized
// inputs it is quantized with the tensor's own scale/zero point.
function makeInput(tf, rgb, io) {
  const { type, shape, quantization } = io;
  const n = rgb.length;
  if (type === 'float32') {
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = rgb[i] / 127.5 - 1;
    return { tensor: tf.tensor(f, shape, 'float32'), mode: 'float32: pixel/127.5 - 1' };
  }
  if (type !== 'uint8' && type !== 'int8') throw new Error(`unsupported input type ${type}`);
  const { scale, zeroPoint } = quantization;
  const [lo, hi] = type === 'uint8' ? [0, 255] : [-128, 127];
  const roundAway = (x) => Math.sign(x) * Math.round(Math.abs(x)); // like std::round
  const quantize = (p) => Math.min(hi, Math.max(lo, roundAway((p / 127.5 - 1) / scale + zeroPoint)));
  const q = new Int32Array(n);
  // Standard TFLite practice (label_image, Task Library) for a uint8 image
  // input whose quantization already encodes ~pixel/127.5-1 (scale ~1/127.5,
  // zero point ~128) is to feed the raw pixel bytes. We do that when every raw
  // byte dequantizes to within one quantization step of pixel/127.5-1;
  // otherwise (or with --feed quantize) we quantize pixel/127.5-1 explicitly.
  let identity = type === 'uint8' && opts.feed === 'auto';
  for (let v = 0; v < 256 && identity; v++) {
    if (Math.abs(scale * (v - zeroPoint) - (v / 127.5 - 1)) > scale * 1.0001) identity = false;
  }
  for (let i = 0; i < n; i++) {
    q[i] = identity ? rgb[i] : quantize(rgb[i]);
  }
  const mode = identity
    ? `${type}: raw pixel bytes (input quantization scale ${scale}, zero point ${zeroPoint} already maps byte v to ~v/127.5-1)`
    : `${type}: round((pixel/127.5 - 1)/${scale} + ${zeroPoint}), clamped to [${lo}, ${hi}]`;
  return { tensor: tf.tensor(q, shape, 'int32'), mode };
}

function topK(values, io, labels, k) {
  const q = io.quantization;
  const dequant = io.type === 'float32' ? (x) => x : (x) => q.scale * (x - q.zeroPoint);
  const order = Array.from(values.keys());
  // Highest score first; ties (common with 8-bit outputs) broken by lower index.
  order.sort((a, b) => values[b] - values[a] || a - b);
  const labelOffset = values.length === labels.length - 1 ? 1 : 0;
  return order.slice(0, k).map((index) => {
    const entry = { index, label: labels[index + labelOffset], score: dequant(values[index]) };
    if (io.type !== 'float32') entry.quantized = values[index];
    return entry;
  });
}

// ---------------------------------------------------------------------- main
async function main() {
  const tflitePkgDir = dirname(requireDep.resolve('@tensorflow/tfjs-tflite/package.json'));
  installNodeShims(join(tflitePkgDir, 'wasm'), opts.wasm);

  // tfjs-tflite warns on every predict() that our int32 tensor is copied into
  // a uint8/int8 input; that is intended (values are already in range).
  const warn = console.warn;
  console.warn = (...args) => {
    if (typeof args[0] === 'string' && /^WARNING: converting 'int32' to '(u?int8)'$/.test(args[0])) return;
    warn(...args);
  };

  const tf = requireDep('@tensorflow/tfjs-core');
  requireDep('@tensorflow/tfjs-backend-cpu');
  const tflite = requireDep('@tensorflow/tfjs-tflite');
  const sharp = requireDep('sharp');
  await tf.setBackend('cpu');
  await tf.ready();
  tflite.setWasmPath(''); // relative to location.href = the package's wasm/ dir

  const pkgVersion = (name) => {
    // Some packages (sharp) do not export ./package.json; find it on disk.
    let dir = dirname(requireDep.resolve(name));
    while (true) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
        if (pkg.name === name) return pkg.version;
      } catch {}
      if (dir === dirname(dir)) throw new Error(`no package.json for ${name}`);
      dir = dirname(dir);
    }
  };
  const versions = {
    node: process.versions.node,
    '@tensorflow/tfjs-tflite': pkgVersion('@tensorflow/tfjs-tflite'),
    '@tensorflow/tfjs-core': pkgVersion('@tensorflow/tfjs-core'),
    '@tensorflow/tfjs-backend-cpu': pkgVersion('@tensorflow/tfjs-backend-cpu'),
    sharp: pkgVersion('sharp'),
    libvips: sharp.versions?.vips,
  };

  const labels = readFileSync(join(opts.shared, 'labels/imagenet_labels.txt'), 'utf8').split('\n').map((s) => s.trim());
  while (labels.length && labels.at(-1) === '') labels.pop();

  const imageDir = join(opts.shared, 'images');
  const images = readdirSync(imageDir)
    .filter((f) => /\.(png|jpe?g)$/i.test(f) && !EXCLUDED_IMAGES.has(f))
    .sort();
  const rgbByImage = new Map();
  for (const f of images) rgbByImage.set(f, await loadRgb(sharp, join(imageDir, f)));

  const result = {
    generatedBy: '',
    preprocessing:
      'sharp: .rotate() (EXIF auto-orient) -> .resize(224, 224, { fit: "fill" }) ' +
      '(default lanczos3 kernel, scale so the shorter side is 224, then centre crop) -> .removeAlpha() -> ' +
      '.toColourspace("srgb") -> .raw(): 224*224*3 bytes, RGB, HWC; grayscale images become 3 identical channels. ' +
      'Model-space value = pixel/127.5 - 1, fed to the input tensor as described in modelInfo.*.inputFeed.',
    note: '',
    modelInfo: {},
    models: {},
  };

  const notes = [];
  for (const modelName of MODELS) {
    const bytes = readFileSync(join(opts.shared, 'models', modelName));
    const io = readModelIo(bytes);
    if (io.inputs.length !== 1 || io.outputs.length !== 1) throw new Error(`${modelName}: expected 1 input, 1 output`);
    const model = await tflite.loadTFLiteModel(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), { numThreads: 1 });

    // Cross-check what the runtime reports against the flatbuffer header.
    const rtIn = model.modelRunner.getInputs()[0];
    const rtOut = model.modelRunner.getOutputs()[0];
    for (const [rt, fb] of [[rtIn, io.inputs[0]], [rtOut, io.outputs[0]]]) {
      if (rt.dataType !== fb.type || rt.shape !== fb.shape.join(',')) {
        throw new Error(`${modelName}: runtime says ${rt.name} ${rt.dataType} [${rt.shape}], file says ${fb.name} ${fb.type} [${fb.shape}]`);
      }
    }

    const numClasses = io.outputs[0].shape.at(-1);
    if (numClasses === labels.length - 1) {
      notes.push(`${modelName} outputs ${numClasses} classes (no background): index i corresponds to imagenet_labels.txt line i+2 (0-based line i+1).`);
    } else if (numClasses !== labels.length) {
      throw new Error(`${modelName}: ${numClasses} classes but ${labels.length} labels`);
    }

    const perImage = {};
    let inputFeed = '';
    for (const f of images) {
      const { tensor, mode } = makeInput(tf, rgbByImage.get(f), io.inputs[0]);
      inputFeed = mode;
      const out = model.predict(tensor);
      const values = out.dataSync();
      perImage[f] = { top5: topK(values, io.outputs[0], labels, 5) };
      tf.dispose([tensor, out]);
    }
    result.modelInfo[modelName] = { input: io.inputs[0], output: io.outputs[0], numClasses, inputFeed };
    result.models[modelName] = perImage;
  }

  result.generatedBy =
    `TensorFlow Lite interpreter (C++ compiled to WebAssembly, ${opts.wasm === 'simd' ? 'SIMD' : 'non-SIMD'}, single-threaded build) ` +
    `from @tensorflow/tfjs-tflite ${versions['@tensorflow/tfjs-tflite']} with @tensorflow/tfjs-core/backend-cpu ${versions['@tensorflow/tfjs-core']}, ` +
    `sharp ${versions.sharp} (libvips ${versions.libvips}), Node ${versions.node}; generated by test/reference/tflite-reference.mjs`;
  result.note =
    (notes.length ? notes.join(' ') : 'All models output 1001 classes: index i corresponds to imagenet_labels.txt 0-based line i (index 0 = background).') +
    ' Scores are dequantized outputs (scale * (q - zeroPoint)); "quantized" is the raw 8-bit output value. Top-5 ties are ordered by lower index.';

  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');

  console.log(result.generatedBy);
  for (const m of MODELS) console.log(m, JSON.stringify(result.modelInfo[m]));
  console.log(['image', ...MODELS].join('\t'));
  for (const f of images) {
    console.log([f, ...MODELS.map((m) => `${result.models[m][f].top5[0].label} (${result.models[m][f].top5[0].score.toFixed(3)})`)].join('\t'));
  }
  console.log(`wrote ${opts.out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
