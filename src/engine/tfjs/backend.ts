// TensorFlow.js keeps one active backend per JavaScript realm (the main thread or one worker
// thread), so it is chosen and initialized once per thread, here, and every engine of that
// thread shares it.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { TfjsBackend, TfjsBackendChoice } from '../engine.js';


// Not a dependency TypeScript can see: it is optional and usually absent (docs/engines.md, Enabling tfjs-node).
const TFJS_NODE = '@tensorflow/tfjs-node';

let chosen: { choice: TfjsBackendChoice; backend: Promise<TfjsBackend> } | undefined;

async function loadTfjsNode(): Promise<void> {
  // Registers the 'tensorflow' backend in the tfjs-core it resolves, which npm dedupes to ours;
  // a second copy of tfjs-core would leave the backend where we cannot see it.
  await import(TFJS_NODE);
  if (!tf.findBackendFactory('tensorflow')) throw new Error(`${TFJS_NODE} loaded but registered no 'tensorflow' backend with this tfjs-core`);
}

async function activate(backend: TfjsBackend): Promise<TfjsBackend> {
  if (backend === 'wasm') {
    const require = createRequire(import.meta.url);
    // Node has no page to serve the .wasm files from: point at the package's own copies.
    setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'))}/`);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TensorFlow.js backend '${backend}' failed to initialize`);
  await tf.ready();
  return backend;
}

async function resolve(choice: TfjsBackendChoice): Promise<TfjsBackend> {
  if (choice === 'wasm') return activate('wasm');
  try {
    await loadTfjsNode();
  } catch (err) {
    if (choice === 'tensorflow') throw new Error(`TFJS_BACKEND=tensorflow but ${TFJS_NODE} does not load: ${(err as Error).message}`);
    return activate('wasm');
  }
  return activate('tensorflow');
}

/** Initializes this thread's backend on first call; later calls get the same one. */
export function useTfjsBackend(choice: TfjsBackendChoice = 'auto'): Promise<TfjsBackend> {
  if (!chosen) {
    chosen = { choice, backend: resolve(choice) };
    // A failed start is not remembered, so a later call may try again.
    chosen.backend.catch(() => (chosen = undefined));
    return chosen.backend;
  }
  const { choice: first, backend } = chosen;
  if (choice === 'auto' || choice === first) return backend;
  return backend.then((active) => {
    if (active !== choice) throw new Error(`this thread already runs TensorFlow.js on '${active}'; it cannot also use '${choice}'`);
    return active;
  });
}

export { tf };
