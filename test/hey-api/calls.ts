// Every route of the API called through the client @hey-api/openapi-ts generates from
// openapi.yaml (its fetch client and SDK functions). test/client.test.ts generates ./generated,
// type-checks this file against it with the project's compiler, then runs it against a live
// server; it reports what test/client/calls.ts reports, so both clients meet the same checks.
import { createClient } from './generated/client/index.js';
import * as api from './generated/sdk.gen.js';
import type { ErrorCode, V2InferRequest } from './generated/types.gen.js';
import { outcomeOf, type Outcome } from '../client/outcome.js';

/** The SDK types every image body as its multipart form; a raw body is that form's file sent as it is. */
const raw = (headers: Record<string, string> = {}) => ({ bodySerializer: (body: unknown) => (body as { image: Blob }).image, headers: { 'Content-Type': 'application/octet-stream', ...headers } });

export async function callEveryRoute(baseUrl: string, photos: { classify: Blob; detect: Blob; segment: Blob; notAnImage: Blob }, adminToken: string): Promise<Outcome> {
  const client = createClient({ baseUrl });
  const called: string[] = [];
  client.interceptors.request.use((request, options) => {
    called.push(`${request.method} ${options.url}`);
    return request;
  });
  const errors: { status: number; code: ErrorCode }[] = [];

  const classified = await api.classify({ client, query: { topk: 3 }, body: { image: photos.classify }, ...raw({ 'Content-Type': 'image/jpeg' }) });
  if (!classified.data) throw new Error(`classify failed: ${JSON.stringify(classified.error)}`);
  // The SDK's own serializer: a multipart form.
  const multipart = await api.classify({ client, query: { topk: 1, model: classified.data.model.name }, body: { image: photos.classify } });
  if (!multipart.data) throw new Error(`multipart classify failed: ${JSON.stringify(multipart.error)}`);

  const detected = await api.detect({ client, query: { minScore: 0.4, classes: 'dog,cat' }, body: { image: photos.detect }, ...raw() });
  // The route can also answer with a picture, so the type is JSON or Blob until narrowed.
  if (!detected.data || !('detections' in detected.data)) throw new Error(`detect failed: ${JSON.stringify(detected.error)}`);
  const picture = await api.detect({ client, query: { format: 'image' }, body: { image: photos.detect }, ...raw(), parseAs: 'blob' });
  if (!(picture.data instanceof Blob)) throw new Error(`detect picture failed: ${picture.response.status}`);

  const segmented = await api.segment({ client, body: { image: photos.segment }, ...raw() });
  if (!segmented.data || !('legend' in segmented.data)) throw new Error(`segment failed: ${JSON.stringify(segmented.error)}`);
  const mask = await api.segment({ client, query: { format: 'mask' }, body: { image: photos.segment }, parseAs: 'blob' });
  if (!(mask.data instanceof Blob)) throw new Error(`segment mask failed: ${mask.response.status}`);

  const embedded = await api.embed({ client, query: { normalize: true }, body: { image: photos.classify }, ...raw() });
  if (!embedded.data || !('embedding' in embedded.data)) throw new Error(`embed failed: ${JSON.stringify(embedded.error)}`);

  const models = await api.listModels({ client });
  const health = await api.health({ client });
  const ready = await api.ready({ client });
  const metrics = await api.metrics({ client, parseAs: 'text' });
  if (!models.data || !health.data || !ready.data || typeof metrics.data !== 'string') throw new Error('a GET route failed');

  // The Open Inference Protocol: health answers are bare statuses, the rest typed JSON.
  const name = classified.data.model.name;
  const model = { client, path: { name } };
  const version = { client, path: { name, version: '1' } };
  const v2Health = [
    await api.v2Live({ client }),
    await api.v2Ready({ client }),
    await api.v2ModelReady(model),
    await api.v2ModelVersionReady(version),
  ].map((r) => r.response.status);
  const server = await api.v2ServerMetadata({ client });
  const metadata = await api.v2ModelMetadata(model);
  const versioned = await api.v2ModelVersionMetadata(version);
  if (!server.data || !metadata.data || !versioned.data) throw new Error('a v2 metadata route failed');
  const request: V2InferRequest = {
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [Buffer.from(await photos.classify.arrayBuffer()).toString('base64')] }],
    outputs: [{ name: 'probabilities', parameters: { classification: 1 } }],
  };
  const inferred = await api.v2Infer({ ...model, body: request });
  const inferredVersion = await api.v2InferVersion({ ...version, body: request });
  if (!inferred.data || !inferredVersion.data) throw new Error(`v2 infer failed: ${JSON.stringify(inferred.error ?? inferredVersion.error)}`);

  // Refusals come back as the typed error bodies, with the documented codes.
  const refusedImage = await api.classify({ client, body: { image: photos.notAnImage }, ...raw() });
  if (refusedImage.error && 'error' in refusedImage.error && typeof refusedImage.error.error === 'object') {
    errors.push({ status: refusedImage.response.status, code: refusedImage.error.error.code });
  }
  const refusedModel = await api.detect({ client, query: { model: 'no_such_model' }, body: { image: photos.detect }, ...raw() });
  if (refusedModel.error && typeof refusedModel.error.error === 'object') errors.push({ status: refusedModel.response.status, code: refusedModel.error.error.code });
  const refusedV2 = await api.v2Infer({ client, path: { name: 'no_such_model' }, body: request });
  if (refusedV2.error && 'code' in refusedV2.error) errors.push({ status: refusedV2.response.status, code: refusedV2.error.code });

  // The management API, with the admin token; a call without it is refused.
  const unauthorized = await api.repositoryIndex({ client, body: {} });
  if (unauthorized.error && typeof unauthorized.error.error === 'object') errors.push({ status: unauthorized.response.status, code: unauthorized.error.error.code });
  const admin = { authorization: `Bearer ${adminToken}` };
  const index = await api.repositoryIndex({ client, body: { ready: true }, headers: admin });
  const reload = await api.repositoryLoad({ client, path: { name }, headers: admin });
  const unload = await api.repositoryUnload({ client, path: { name: segmented.data.model.name }, headers: admin });
  if (!index.data || !reload.data || !unload.data) throw new Error(`a management route failed: ${JSON.stringify(index.error ?? reload.error ?? unload.error)}`);
  // Loaded again, so the next client finds the service as this one did.
  const restored = await api.repositoryLoad({ client, path: { name: segmented.data.model.name }, headers: admin });
  if (!restored.data) throw new Error(`loading ${segmented.data.model.name} again failed: ${JSON.stringify(restored.error)}`);

  return outcomeOf({
    called,
    classified: classified.data,
    multipart: multipart.data,
    detected: detected.data,
    picture: picture.data,
    segmented: segmented.data,
    mask: mask.data,
    embedded: embedded.data,
    models: models.data,
    health: health.data,
    ready: ready.data,
    metrics: metrics.data,
    v2: { health: v2Health, server: server.data, metadata: metadata.data, versioned: versioned.data, inferred: [inferred.data, inferredVersion.data] },
    errors,
    management: { index: index.data, reload: reload.data, unload: unload.data },
  });
}
