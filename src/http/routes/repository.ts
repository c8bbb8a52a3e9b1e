// The management API, in the shape of the Open Inference Protocol's model repository extension
// as Triton defines it: index, load (or reload), unload. Off unless ADMIN_TOKEN is set; every
// call needs `Authorization: Bearer <ADMIN_TOKEN>`. Errors keep this API's own body,
// {error: {code, message}}, not Triton's {error: string}.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { errorSchema } from '../schemas.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Refuses a request without the admin token; the comparison takes the same time whatever the token. */
function authorize(token: string | undefined, request: FastifyRequest): void {
  if (token === undefined) throw new ApiError('forbidden', 'the management API is off: set ADMIN_TOKEN to enable it');
  const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
  if (!match) throw new ApiError('unauthorized', 'the management API needs Authorization: Bearer <ADMIN_TOKEN>', { 'www-authenticate': 'Bearer' });
  // Equal-length digests: timingSafeEqual leaks neither the token's content nor its length.
  if (!timingSafeEqual(digest(match[1]!), digest(token))) throw new ApiError('forbidden', 'wrong admin token');
}

/** The JSON body, if any: an empty body is an empty request. */
function bodyOf(request: FastifyRequest): Record<string, unknown> {
  const raw = request.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8').trim() : '';
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError('invalid_request', 'the body must be a JSON object');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ApiError('invalid_request', 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

const indexEntry = {
  type: 'object',
  required: ['name', 'version', 'state', 'reason'],
  properties: { name: { type: 'string' }, version: { type: 'string' }, state: { type: 'string' }, reason: { type: 'string' } },
} as const;
const loadAnswer = { type: 'object', required: ['name', 'version'], properties: { name: { type: 'string' }, version: { type: 'string' } } } as const;
const errors = Object.fromEntries([400, 401, 403].map((status) => [status, errorSchema]));
const params = { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } as const;

export async function repositoryRoutes(app: FastifyInstance): Promise<void> {
  const { manager } = app;
  const token = app.config.adminToken;
  app.addHook('onRequest', async (request) => authorize(token, request));

  app.post('/v2/repository/index', { schema: { response: { 200: { type: 'array', items: indexEntry }, ...errors } } }, async (request) => {
    const { ready = false } = bodyOf(request);
    if (typeof ready !== 'boolean') throw new ApiError('invalid_request', 'ready must be true or false');
    return manager.index(ready);
  });

  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/load', { schema: { params, response: { 200: loadAnswer, ...errors } } }, async (request) => {
    // Our extension: parameters.version loads that version rather than the served one.
    const parameters = (bodyOf(request).parameters ?? {}) as Record<string, unknown>;
    const version = parameters.version === undefined ? undefined : Number(parameters.version);
    if (version !== undefined && !(Number.isInteger(version) && version > 0)) throw new ApiError('invalid_request', 'parameters.version must be a positive integer');
    const loaded = await manager.load(request.params.name, version);
    return { name: request.params.name, version: String(loaded) };
  });

  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/unload', { schema: { params, response: { 200: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } }, ...errors } } }, async (request) => {
    bodyOf(request);
    await manager.unload(request.params.name);
    return { name: request.params.name };
  });
}
