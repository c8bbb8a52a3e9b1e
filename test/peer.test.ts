// The bench's FastAPI peer (bench/peer) is a fair opponent only if it computes what we compute:
// the same ONNX bytes, photos prepared the same way. Its preprocessing is written again in
// Pillow + numpy and its inference runs in Python's onnxruntime, so it is an independent oracle
// for ours: the same top class on every shared photo, probabilities within a rounding of pixels.
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { PEER_MODEL, peerPython, startPeer, writePeerModel, type Peer, type PeerModel } from '../bench/peer.js';
import { IMAGES_DIR, multipart, photo, testConfig } from './helpers.js';

interface Prediction {
  label: string;
  index: number;
  score: number;
}

// Without python3 (or its venv module, or the wheels) there is no peer; CI sets REQUIRE_TOOLS=1.
const python = await peerPython().catch((err: unknown) => {
  const message = `no Python venv for the FastAPI peer (python3 -m venv and pip install -r bench/peer/requirements.txt): ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  if (process.env.REQUIRE_TOOLS === '1') throw new Error(`REQUIRE_TOOLS=1 and ${message}`);
  console.warn(`SKIPPED: ${message}`);
  return undefined;
});

// A probability may differ this much: libvips interpolates in fixed point, numpy in float, so a
// resized pixel can differ by one level (measured here: 0.004 at most over the shared photos).
const TOLERANCE = 0.01;

// Every photo in ../shared/images, but the masks and goldens of the segmentation tests and the truncated file.
const PHOTOS = readdirSync(IMAGES_DIR).filter((f) => /\.(jpe?g|png)$/.test(f) && !/mask|golden|truncated/.test(f)).sort();

describe.skipIf(!python)('the FastAPI peer of the bench against our service', () => {
  let model: PeerModel;
  let peer: Peer;
  let app: Awaited<ReturnType<typeof buildApp>>;

  beforeAll(async () => {
    model = writePeerModel();
    [peer, app] = await Promise.all([startPeer(python!, model.config(1), 1), buildApp(testConfig({ MODELS: PEER_MODEL, POOL_SIZE: '1', PRECISION: 'float32' }))]);
    await app.modelsLoaded;
  });

  afterAll(async () => {
    await Promise.all([peer?.stop(), app?.close()]);
    model?.dispose();
  });

  const ours = async (body: Buffer): Promise<Prediction[]> => {
    const res = await app.inject({ method: 'POST', url: '/v1/classify?topk=5', headers: { 'content-type': 'application/octet-stream' }, payload: body });
    expect(res.statusCode).toBe(200);
    return (res.json() as { predictions: Prediction[] }).predictions;
  };

  const theirs = async (init: { body: Buffer; headers: Record<string, string> }): Promise<Prediction[]> => {
    const res = await fetch(`http://127.0.0.1:${peer.port}/classify?topk=5`, { method: 'POST', headers: init.headers, body: new Uint8Array(init.body) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { predictions: Prediction[] }).predictions;
  };

  it('answers a multipart field `image` as it answers the raw body', async () => {
    const body = photo('parrot.jpg');
    const form = multipart([{ name: 'image', filename: 'parrot.jpg', type: 'image/jpeg', data: body }]);
    const [fromForm, fromRaw] = await Promise.all([theirs({ body: form.payload, headers: form.headers }), theirs({ body, headers: { 'content-type': 'image/jpeg' } })]);
    expect(fromForm).toEqual(fromRaw);
    expect(fromRaw[0]!.label).toBe('macaw');
  });

  it(`gives our top class and probabilities on the ${PHOTOS.length} shared photos`, async () => {
    expect(PHOTOS.length).toBeGreaterThan(10);
    let worst = 0;
    for (const file of PHOTOS) {
      const body = photo(file);
      const [mine, peers] = await Promise.all([ours(body), theirs({ body, headers: { 'content-type': 'application/octet-stream' } })]);
      expect({ file, top1: peers[0]!.index, label: peers[0]!.label }).toEqual({ file, top1: mine[0]!.index, label: mine[0]!.label });
      // Each of our five classes scored alike by the peer (where it ranks it in its five).
      for (const p of mine) {
        const q = peers.find((c) => c.index === p.index);
        const difference = Math.abs(p.score - (q?.score ?? 0));
        worst = Math.max(worst, difference);
        expect({ file, index: p.index, difference: difference <= TOLERANCE }).toEqual({ file, index: p.index, difference: true });
      }
    }
    console.log(`largest probability difference, ours vs the peer: ${worst.toFixed(4)}`);
  });
});
