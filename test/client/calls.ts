// Every route of the API called through a client generated from openapi.yaml (openapi-typescript
// types + openapi-fetch). test/client.test.ts generates ./generated/openapi.ts, type-checks this
// file against it with the project's compiler, then runs it against a live server; a call that
// no longer matches the document fails the type-check before it fails at run time.
import createClient from 'openapi-fetch';
import type { components, paths } from './generated/openapi.js';
import { outcomeOf, type Outcome } from './outcome.js';

/** The raw body as it is: openapi-fetch would otherwise send JSON. */
const raw = (body: unknown) => body as BodyInit;

/** One multipart form with the file field `image`. */
function form(body: unknown): FormData {
  const data = new FormData();
  data.append('image', (body as { image: Blob }).image, 'photo.jpg');
  return data;
}

export async function callEveryRoute(baseUrl: string, photos: { classify: Blob; detect: Blob; segment: Blob; notAnImage: Blob }, adminToken: string): Promise<Outcome> {
  const client = createClient<paths>({ baseUrl });
  const called: string[] = [];
  client.use({
    onRequest({ request, schemaPath }) {
      called.push(`${request.method} ${schemaPath}`);
    },
  });
  const errors: { status: number; code: components['schemas']['ErrorCode'] }[] = [];

  const classified = await client.POST('/v1/classify', {
    params: { query: { topk: 3 } },
    body: photos.classify,
    bodySerializer: raw,
    headers: { 'content-type': 'image/jpeg' },
  });
  if (!classified.data) throw new Error(`classify failed: ${JSON.stringify(classified.error)}`);

  const multipart = await client.POST('/v1/classify', {
    params: { query: { topk: 1, model: classified.data.model.name } },
    body: { image: photos.classify },
    bodySerializer: form,
  });
  if (!multipart.data) throw new Error(`multipart classify failed: ${JSON.stringify(multipart.error)}`);

  const detected = await client.POST('/v1/detect', {
    params: { query: { minScore: 0.4, classes: 'dog,cat' } },
    body: photos.detect,
    bodySerializer: raw,
  });
  // The route can also answer with a picture, so the type is JSON or Blob until narrowed.
  if (!detected.data || !('detections' in detected.data)) throw new Error(`detect failed: ${JSON.stringify(detected.error)}`);

  const picture = await client.POST('/v1/detect', {
    params: { query: { format: 'image' } },
    body: photos.detect,
    bodySerializer: raw,
    parseAs: 'blob',
  });
  if (!picture.data) throw new Error(`detect picture failed: ${picture.response.status}`);

  const segmented = await client.POST('/v1/segment', { body: photos.segment, bodySerializer: raw });
  if (!segmented.data || !('legend' in segmented.data)) throw new Error(`segment failed: ${JSON.stringify(segmented.error)}`);

  const mask = await client.POST('/v1/segment', {
    params: { query: { format: 'mask' } },
    body: { image: photos.segment },
    bodySerializer: form,
    parseAs: 'blob',
  });
  if (!mask.data) throw new Error(`segment mask failed: ${mask.response.status}`);

  const embedded = await client.POST('/v1/embed', { params: { query: { normalize: true } }, body: photos.classify, bodySerializer: raw });
  if (!embedded.data || !('embedding' in embedded.data)) throw new Error(`embed failed: ${JSON.stringify(embedded.error)}`);

  const models = await client.GET('/v1/models');
  const health = await client.GET('/healthz');
  const ready = await client.GET('/readyz');
  const metrics = await client.GET('/metrics', { parseAs: 'text' });
  if (!models.data || !health.data || !ready.data || metrics.data === undefined) throw new Error('a GET route failed');

  // The Open Inference Protocol: health answers are bare statuses, the rest typed JSON.
  const name = classified.data.model.name;
  const model = { params: { path: { name } } };
  const version = { params: { path: { name, version: '1' } } };
  const v2Health = [
    await client.GET('/v2/health/live'),
    await client.GET('/v2/health/ready'),
    await client.GET('/v2/models/{name}/ready', model),
    await client.GET('/v2/models/{name}/versions/{version}/ready', version),
  ].map((r) => r.response.status);
  const server = await client.GET('/v2');
  const metadata = await client.GET('/v2/models/{name}', model);
  const versioned = await client.GET('/v2/models/{name}/versions/{version}', version);
  if (!server.data || !metadata.data || !versioned.data) throw new Error('a v2 metadata route failed');
  const image = await photos.classify.arrayBuffer();
  const request: components['schemas']['V2InferRequest'] = {
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [Buffer.from(image).toString('base64')] }],
    outputs: [{ name: 'probabilities', parameters: { classification: 1 } }],
  };
  const inferred = await client.POST('/v2/models/{name}/infer', { ...model, body: request });
  const inferredVersion = await client.POST('/v2/models/{name}/versions/{version}/infer', { ...version, body: request });
  // The route can also answer with binary tensors, so the type is JSON or Blob until narrowed.
  if (!inferred.data || !('outputs' in inferred.data) || !inferredVersion.data || !('outputs' in inferredVersion.data)) {
    throw new Error(`v2 infer failed: ${JSON.stringify(inferred.error ?? inferredVersion.error)}`);
  }

  // Refusals come back as the typed error body, with the documented codes.
  const refusedImage = await client.POST('/v1/classify', { body: photos.notAnImage, bodySerializer: raw });
  if (refusedImage.error) errors.push({ status: refusedImage.response.status, code: refusedImage.error.error.code });
  const refusedModel = await client.POST('/v1/detect', { params: { query: { model: 'no_such_model' } }, body: photos.detect, bodySerializer: raw });
  if (refusedModel.error) errors.push({ status: refusedModel.response.status, code: refusedModel.error.error.code });
  const refusedV2 = await client.POST('/v2/models/{name}/infer', { params: { path: { name: 'no_such_model' } }, body: request });
  if (refusedV2.error) errors.push({ status: refusedV2.response.status, code: refusedV2.error.code });

  // The management API, with the admin token; a call without it is refused.
  const unauthorized = await client.POST('/v2/repository/index', { body: {} });
  if (unauthorized.error) errors.push({ status: unauthorized.response.status, code: unauthorized.error.error.code });
  const admin = { authorization: `Bearer ${adminToken}` };
  const index = await client.POST('/v2/repository/index', { body: { ready: true }, headers: admin });
  const reload = await client.POST('/v2/repository/models/{name}/load', { params: { path: { name: classified.data.model.name } }, headers: admin });
  const unload = await client.POST('/v2/repository/models/{name}/unload', { params: { path: { name: segmented.data.model.name } }, headers: admin });
  if (!index.data || !reload.data || !unload.data) throw new Error(`a management route failed: ${JSON.stringify(index.error ?? reload.error ?? unload.error)}`);
  // Loaded again, so the next client finds the service as this one did.
  const restored = await client.POST('/v2/repository/models/{name}/load', { params: { path: { name: segmented.data.model.name } }, headers: admin });
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
