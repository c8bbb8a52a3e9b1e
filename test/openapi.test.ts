// openapi.yaml against the running app: the routes, their Fastify schemas, the error codes and
// real responses must all agree with the document. Any drift on either side fails here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { FastifyInstance, FastifyServerOptions, LightMyRequestResponse } from 'fastify';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { ERROR_CODES } from '../src/http/errors.js';
import { SUPPORTED_FORMATS } from '../src/decode/decode.js';

const images = fileURLToPath(new URL('../../shared/images/', import.meta.url));
const photo = (name: string) => readFileSync(`${images}${name}`);
const DOC_ID = 'https://mobilenet-serving.invalid/openapi.json';
const ADMIN_TOKEN = 'openapi-test-token';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

// ---------------------------------------------------------------------------------------------
// The document, typed as far as this test reads it.

interface Schema {
  $ref?: string;
  type?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  allOf?: Schema[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
  description?: string;
  [keyword: string]: unknown;
}
interface Ref {
  $ref: string;
}
interface MediaType {
  schema?: Schema;
  example?: unknown;
  examples?: Record<string, { value?: unknown }>;
}
interface Header {
  required?: boolean;
  schema?: Schema;
}
interface Response {
  description: string;
  headers?: Record<string, Header | Ref>;
  content?: Record<string, MediaType>;
}
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
  example?: unknown;
}
interface Operation {
  operationId?: string;
  tags?: string[];
  description?: string;
  parameters?: (Parameter | Ref)[];
  requestBody?: { content: Record<string, MediaType> } | Ref;
  responses: Record<string, Response | Ref>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  servers?: { url: string }[];
  tags?: { name: string }[];
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: {
    schemas: Record<string, Schema>;
    responses: Record<string, Response>;
    parameters?: Record<string, Parameter>;
    headers?: Record<string, Header>;
    requestBodies?: Record<string, { content: Record<string, MediaType> }>;
  };
}

const doc = parse(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')) as OpenApiDocument;

const escapePointer = (token: string) => token.replaceAll('~', '~0').replaceAll('/', '~1');
const pointerOf = (...tokens: string[]) => tokens.map((t) => `/${escapePointer(t)}`).join('');

/** The value at a JSON pointer of the document. */
function at(pointer: string): unknown {
  let node: unknown = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (node === null || typeof node !== 'object' || !(token in node)) throw new Error(`no ${pointer} in openapi.yaml`);
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

/** Follows local $refs; returns the object and where it lives, so Ajv can compile it in place. */
function deref<T>(node: T | Ref, pointer: string): { value: T; pointer: string } {
  let current: unknown = node;
  let where = pointer;
  for (let hops = 0; current && typeof current === 'object' && '$ref' in current; hops++) {
    const ref = (current as Ref).$ref;
    if (!ref.startsWith('#/') || hops > 20) throw new Error(`unsupported $ref ${ref} at ${where}`);
    where = ref.slice(1);
    current = at(where);
  }
  return { value: current as T, pointer: where };
}

interface DocumentedOperation {
  path: string;
  method: string; // upper case, as Fastify reports it
  operation: Operation;
  pointer: string;
}

const operations: DocumentedOperation[] = Object.entries(doc.paths).flatMap(([path, item]) =>
  METHODS.filter((m) => item[m]).map((m) => ({ path, method: m.toUpperCase(), operation: item[m]!, pointer: pointerOf('paths', path, m) })),
);

/** Fastify's `:name` path parameters as OpenAPI writes them, `{name}`. */
const asTemplate = (url: string) => url.replace(/:(\w+)/g, '{$1}');
const templateMatches = (template: string, path: string) =>
  new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}$`).test(path);

/** The operation of a method and a path: a route pattern (Fastify's or the document's), or a concrete URL path. */
function operationFor(method: string, path: string): DocumentedOperation | undefined {
  const wanted = asTemplate(path);
  return operations.find((o) => o.method === method && o.path === wanted) ?? operations.find((o) => o.method === method && templateMatches(o.path, path));
}

/** The documented response of an operation for a status, resolved. */
function documentedResponse(op: DocumentedOperation, status: number): { value: Response; pointer: string } | undefined {
  const key = op.operation.responses[String(status)] ? String(status) : op.operation.responses[`${String(status)[0]}XX`] ? `${String(status)[0]}XX` : 'default';
  const response = op.operation.responses[key];
  return response ? deref(response, `${op.pointer}/responses/${key}`) : undefined;
}

const notFoundResponse = () => deref<Response>(doc.components.responses.NotFound!, '/components/responses/NotFound');

// ---------------------------------------------------------------------------------------------
// Schemas: validation with Ajv, and shape comparison with the Fastify schemas.

const ajv = new Ajv2020({ allErrors: true, formats: { binary: true, int32: true, int64: true, float: true, double: true } });
// The OpenAPI document is added whole so `#/components/...` refs resolve; its non-schema
// top-level members and OpenAPI's schema extensions are annotations to Ajv.
ajv.addVocabulary(['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags', 'externalDocs', 'example', 'discriminator', 'xml']);
ajv.addSchema(doc as unknown as object, DOC_ID);

const validators = new Map<string, ValidateFunction>();
function validatorAt(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.getSchema(`${DOC_ID}#${pointer}`);
    if (!validate) throw new Error(`no schema at ${pointer}`);
    validators.set(pointer, validate);
  }
  return validate;
}

function expectValid(pointer: string, value: unknown, what: string): void {
  const validate = validatorAt(pointer);
  const ok = validate(value);
  expect(ok, `${what} does not match ${pointer}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 500)}`).toBe(true);
}

/** Type, required and properties, recursively, with $ref and allOf resolved: what both sides must agree on. */
interface Shape {
  type?: string;
  required: string[];
  properties: Record<string, Shape>;
  items?: Shape;
}

function shapeOf(schema: Schema, resolve: (ref: string) => Schema): Shape {
  if (schema.$ref) return shapeOf(resolve(schema.$ref), resolve);
  let shape: Shape = {
    type: schema.type,
    required: [...(schema.required ?? [])].sort(),
    properties: Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, shapeOf(v, resolve)])),
    items: schema.items ? shapeOf(schema.items, resolve) : undefined,
  };
  for (const part of schema.allOf ?? []) shape = mergeShapes(shape, shapeOf(part, resolve));
  return shape;
}

function mergeShapes(a: Shape, b: Shape): Shape {
  if (a.type && b.type && a.type !== b.type) throw new Error(`allOf combines type ${a.type} with ${b.type}`);
  const properties = { ...a.properties };
  for (const [k, v] of Object.entries(b.properties)) properties[k] = properties[k] ? mergeShapes(properties[k], v) : v;
  return {
    type: a.type ?? b.type,
    required: [...new Set([...a.required, ...b.required])].sort(),
    properties,
    items: a.items && b.items ? mergeShapes(a.items, b.items) : a.items ?? b.items,
  };
}

const docShape = (schema: Schema) => shapeOf(schema, (ref) => deref<Schema>({ $ref: ref }, '').value);
const fastifyShape = (schema: Schema) =>
  shapeOf(schema, (ref) => {
    throw new Error(`unexpected $ref ${ref} in a Fastify schema`);
  });

/**
 * The error codes a documented error schema allows: the intersection of every enum on its code,
 * `error.code` in the task API's form, `code` beside the Open Inference Protocol's `error` string.
 */
function errorCodesOf(schema: Schema): string[] | undefined {
  const resolved = deref<Schema>(schema, '').value;
  let codes: string[] | undefined;
  const narrow = (next: string[] | undefined) => {
    if (next) codes = codes ? codes.filter((c) => next.includes(c)) : next;
  };
  const code = resolved.properties?.error?.properties?.code ?? resolved.properties?.code;
  if (code) {
    const codeSchema = deref<Schema>(code, '').value;
    narrow(codeSchema.enum as string[] | undefined);
  }
  for (const part of resolved.allOf ?? []) narrow(errorCodesOf(part));
  return codes;
}

// ---------------------------------------------------------------------------------------------
// The app and what Fastify knows about its routes.

interface FastifySchemas {
  querystring?: Schema;
  response?: Record<string, Schema>;
  /** Set on the pages for people (demo page, API docs): not part of the API, so not documented. */
  hide?: boolean;
}
interface RegisteredRoute {
  method: string;
  url: string;
  schema?: FastifySchemas;
}

/**
 * printRoutes({ includeMeta: true }) hands every route of the router, with its store (the route
 * context, which holds the route's schema), to the router's `buildPrettyMeta` option; that option
 * is how this test lists the app's routes with their schemas without touching src/.
 */
function routeCollector() {
  const seen: RegisteredRoute[] = [];
  const routerOptions = {
    buildPrettyMeta(route: { method: string; path: string; store?: { schema?: FastifySchemas } }) {
      seen.push({ method: route.method, url: route.path, schema: route.store?.schema });
      return {};
    },
  } as unknown as FastifyServerOptions['routerOptions'];
  const hidden: RegisteredRoute[] = [];
  const collect = (app: FastifyInstance): RegisteredRoute[] => {
    seen.length = 0;
    app.printRoutes({ includeMeta: true, commonPrefix: false });
    hidden.splice(0, hidden.length, ...seen.filter((r) => r.schema?.hide));
    return seen.filter((r) => !r.schema?.hide);
  };
  return { routerOptions, collect, hidden };
}

// ---------------------------------------------------------------------------------------------
// Requests, and the check every response goes through.

const BOUNDARY = '----openapi-test-7d1c3f';
interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer | string;
}
function multipartBody(parts: FormPart[]): { payload: Buffer; headers: Record<string, string> } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename ? `; filename="${part.filename}"` : ''}`;
    const type = part.contentType ? `Content-Type: ${part.contentType}\r\n` : '';
    chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } };
}
const imagePart = (data: Buffer, name = 'image'): FormPart => ({ name, filename: 'photo.jpg', contentType: 'image/jpeg', data });

const essence = (contentType: string | undefined) => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

/** Statuses and codes seen per operation, to check the requests below covered what they claim. */
const exercised = new Set<string>();

/**
 * Checks a response against the document: its status is documented for the operation (or is the
 * documented 404 of an unknown route), its Content-Type is one of the documented media types, its
 * JSON body matches the documented schema and its documented headers match their schemas.
 */
function expectDocumented(method: string, url: string, res: LightMyRequestResponse): unknown {
  const path = url.split('?')[0]!;
  const op = operationFor(method === 'HEAD' ? 'GET' : method, path);
  const response = op ? documentedResponse(op, res.statusCode) : res.statusCode === 404 ? notFoundResponse() : undefined;
  expect(response, `${method} ${url} answered ${res.statusCode}, which openapi.yaml does not document: ${res.body.slice(0, 300)}`).toBeDefined();
  const { value, pointer } = response!;
  exercised.add(`${op?.operation.operationId ?? 'unknown route'} ${res.statusCode}`);

  for (const [name, header] of Object.entries(value.headers ?? {})) {
    const { value: h, pointer: hp } = deref<Header>(header, `${pointer}/headers/${escapePointer(name)}`);
    const raw = res.headers[name.toLowerCase()];
    if (h.required) expect(raw, `${method} ${url}: header ${name} is required`).toBeDefined();
    if (raw !== undefined && h.schema) {
      const schema = deref<Schema>(h.schema, `${hp}/schema`).value;
      const typed = schema.type === 'integer' || schema.type === 'number' ? Number(raw) : raw;
      expectValid(`${hp}/schema`, typed, `${method} ${url}: header ${name}: ${String(raw)}`);
    }
  }

  if (method === 'HEAD') return undefined;
  // A response documented without content (the protocol's bodiless health answers) has none.
  if (!value.content) {
    expect(res.body, `${method} ${url} ${res.statusCode} is documented without a body`).toBe('');
    return undefined;
  }
  const content = value.content;
  const mediaType = Object.keys(content).find((m) => essence(m) === essence(String(res.headers['content-type'])));
  expect(mediaType, `${method} ${url} ${res.statusCode}: Content-Type ${res.headers['content-type']} is not one of ${Object.keys(content).join(', ')}`).toBeDefined();
  const isJson = essence(mediaType) === 'application/json';
  const body: unknown = isJson ? res.json() : res.body;
  if (content[mediaType!]!.schema) expectValid(`${pointer}/content/${escapePointer(mediaType!)}/schema`, body, `${method} ${url} ${res.statusCode}`);
  return body;
}

interface ErrorBodyJson {
  error: { code: string; message: string };
}

/** Sends a request, checks it against the document and that it is the expected status (and error code). */
async function call(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'HEAD',
  url: string,
  expected: { status: number; code?: string },
  request: { payload?: Buffer | string; headers?: Record<string, string> } = {},
): Promise<{ res: LightMyRequestResponse; body: unknown }> {
  const res = await app.inject({ method, url, payload: request.payload, headers: request.headers });
  const body = expectDocumented(method, url, res);
  expect(res.statusCode, `${method} ${url}: ${res.body.slice(0, 300)}`).toBe(expected.status);
  // The task API's {error: {code}}, or the Open Inference Protocol's {error, code}.
  if (expected.code) {
    const answer = body as ErrorBodyJson | { error: string; code: string };
    expect(typeof answer.error === 'string' ? (answer as { code: string }).code : answer.error.code).toBe(expected.code);
  }
  return { res, body };
}

// ---------------------------------------------------------------------------------------------

describe('openapi.yaml', () => {
  let app: FastifyInstance;
  let routes: RegisteredRoute[];
  let hiddenRoutes: RegisteredRoute[];
  let classifyBody: Record<string, unknown>;

  beforeAll(async () => {
    const { routerOptions, collect, hidden } = routeCollector();
    const config = loadConfig({ ...process.env, MODELS: 'mobilenet_v2_1.0_224,ssdlite_mobilenet_v2_coco,deeplabv3_mobilenet_v2_0.5_257', ENGINE_THREADS: '1', ADMIN_TOKEN });
    app = await buildApp(config, { routerOptions });
    await app.ready();
    routes = collect(app);
    hiddenRoutes = hidden;
    await app.modelsLoaded;
  });

  afterAll(async () => {
    await app?.close();
  });

  describe('the document', () => {
    it('is OpenAPI 3.1.0 with the expected servers, operationIds, tags and info', () => {
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.servers).toEqual([{ url: 'http://localhost:8080' }]);
      expect(doc.info.title).toBeTruthy();
      expect(doc.info.version).toBeTruthy();
      expect(doc.info.description).toMatch(/multiply-add/i);
      expect(doc.info.description).toMatch(/batch norm is folded/i);
      expect(doc.info.description).toMatch(/only convolutions count/i);

      const ids = Object.fromEntries(operations.map((o) => [o.operation.operationId, `${o.method} ${o.path}`]));
      expect(ids).toEqual({
        classify: 'POST /v1/classify',
        detect: 'POST /v1/detect',
        segment: 'POST /v1/segment',
        embed: 'POST /v1/embed',
        v2Live: 'GET /v2/health/live',
        v2Ready: 'GET /v2/health/ready',
        v2ServerMetadata: 'GET /v2',
        v2ModelMetadata: 'GET /v2/models/{name}',
        v2ModelVersionMetadata: 'GET /v2/models/{name}/versions/{version}',
        v2ModelReady: 'GET /v2/models/{name}/ready',
        v2ModelVersionReady: 'GET /v2/models/{name}/versions/{version}/ready',
        v2Infer: 'POST /v2/models/{name}/infer',
        v2InferVersion: 'POST /v2/models/{name}/versions/{version}/infer',
        listModels: 'GET /v1/models',
        health: 'GET /healthz',
        ready: 'GET /readyz',
        metrics: 'GET /metrics',
        repositoryIndex: 'POST /v2/repository/index',
        repositoryLoad: 'POST /v2/repository/models/{name}/load',
        repositoryUnload: 'POST /v2/repository/models/{name}/unload',
      });
      const tagNames = (doc.tags ?? []).map((t) => t.name);
      for (const { operation } of operations) {
        expect(operation.tags?.length, operation.operationId).toBeGreaterThan(0);
        for (const tag of operation.tags ?? []) expect(tagNames).toContain(tag);
      }
      for (const name of ['Error', 'ErrorCode', 'Prediction', 'ClassifyResponse', 'ModelInfo', 'ModelsResponse', 'Timings', 'Status']) {
        expect(doc.components.schemas[name], name).toBeDefined();
      }
    });

    it('has only $refs that resolve, and component schemas that compile under JSON Schema 2020-12', () => {
      const refs: string[] = [];
      const walk = (node: unknown) => {
        if (Array.isArray(node)) node.forEach(walk);
        else if (node && typeof node === 'object') {
          for (const [k, v] of Object.entries(node)) if (k === '$ref' && typeof v === 'string') refs.push(v);
          else walk(v);
        }
      };
      walk(doc);
      expect(refs.length).toBeGreaterThan(10);
      for (const ref of refs) {
        expect(ref.startsWith('#/'), ref).toBe(true);
        expect(() => at(ref.slice(1)), ref).not.toThrow();
      }
      for (const name of Object.keys(doc.components.schemas)) {
        expect(() => validatorAt(pointerOf('components', 'schemas', name)), name).not.toThrow();
      }
    });

    it('has examples that match their schemas', () => {
      let checked = 0;
      const checkMediaTypes = (content: Record<string, MediaType> | undefined, pointer: string) => {
        for (const [type, media] of Object.entries(content ?? {})) {
          if (!media.schema) continue;
          const schemaPointer = `${pointer}/content/${escapePointer(type)}/schema`;
          const examples = [...(media.example !== undefined ? [media.example] : []), ...Object.values(media.examples ?? {}).map((e) => e.value)];
          for (const example of examples) {
            expectValid(schemaPointer, example, `example at ${pointer} (${type})`);
            checked++;
          }
        }
      };
      for (const op of operations) {
        for (const [status, response] of Object.entries(op.operation.responses)) {
          const { value, pointer } = deref<Response>(response, `${op.pointer}/responses/${status}`);
          checkMediaTypes(value.content, pointer);
        }
        for (const param of op.operation.parameters ?? []) {
          const { value, pointer } = deref<Parameter>(param, '');
          if (value.example !== undefined && value.schema) {
            expectValid(`${pointer}/schema`, value.example, `example of parameter ${value.name}`);
            checked++;
          }
        }
      }
      for (const [name, response] of Object.entries(doc.components.responses)) checkMediaTypes(response.content, pointerOf('components', 'responses', name));
      // `examples` arrays inside component schemas.
      const walk = (node: unknown, pointer: string) => {
        if (!node || typeof node !== 'object' || Array.isArray(node)) return;
        const schema = node as Schema;
        if (Array.isArray(schema.examples)) {
          for (const example of schema.examples) {
            expectValid(pointer, example, `example at ${pointer}`);
            checked++;
          }
        }
        for (const [k, v] of Object.entries(schema.properties ?? {})) walk(v, `${pointer}/properties/${escapePointer(k)}`);
        if (schema.items) walk(schema.items, `${pointer}/items`);
      };
      for (const name of Object.keys(doc.components.schemas)) walk(doc.components.schemas[name], pointerOf('components', 'schemas', name));
      expect(checked).toBeGreaterThan(20);
    });

    it('lists exactly the error codes of src/http/errors.ts, each under the status it comes with', () => {
      const documented = doc.components.schemas.ErrorCode!.enum as string[];
      expect([...documented].sort()).toEqual(Object.keys(ERROR_CODES).sort());
      const description = doc.components.schemas.ErrorCode!.description ?? '';
      for (const [code, status] of Object.entries(ERROR_CODES)) expect(description, code).toContain(`\`${code}\` ${status}`);
      expect(docShape(doc.components.schemas.Error!).properties.error!.properties.code!.type).toBe('string');

      // Every documented error response: its codes all come with its status, and its description names them.
      const covered = new Set<string>();
      const errorResponses = [
        ...operations.flatMap((op) =>
          Object.keys(op.operation.responses)
            .filter((status) => Number(status) >= 400)
            .map((status) => ({ where: `${op.operation.operationId} ${status}`, status: Number(status), ...deref<Response>(op.operation.responses[status]!, `${op.pointer}/responses/${status}`) })),
        ),
        { where: 'NotFound', status: 404, ...notFoundResponse() },
      ];
      for (const { where, status, value } of errorResponses) {
        // The protocol's health "false": a status without a body, nothing to code.
        if (!value.content && status === 400 && where.startsWith('v2')) continue;
        const schema = value.content?.['application/json']?.schema;
        expect(schema, `${where} has no application/json schema`).toBeDefined();
        const codes = errorCodesOf(schema!);
        expect(codes?.length, `${where} does not say which codes it carries`).toBeGreaterThan(0);
        for (const code of codes!) {
          expect(ERROR_CODES[code as keyof typeof ERROR_CODES], `${where} documents code ${code}`).toBe(status);
          expect(value.description, `${where}: the description does not mention ${code}`).toContain(`\`${code}\``);
          covered.add(code);
        }
      }
      expect([...covered].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    });

    it('documents a Retry-After header on the 503 of classify', () => {
      const { value } = documentedResponse(operationFor('POST', '/v1/classify')!, 503)!;
      expect(Object.keys(value.headers ?? {}).map((h) => h.toLowerCase())).toContain('retry-after');
    });

    it('documents the image formats decode.ts detects', () => {
      expect(doc.components.schemas.ImageInfo!.properties!.format!.enum).toEqual([...SUPPORTED_FORMATS]);
      const body = deref(operationFor('POST', '/v1/classify')!.operation.requestBody!, '').value;
      expect(Object.keys(body.content).sort()).toEqual(
        ['multipart/form-data', 'application/octet-stream', ...SUPPORTED_FORMATS.map((f) => `image/${f}`)].sort(),
      );
      const form = deref<Schema>(body.content['multipart/form-data']!.schema!, '').value;
      expect(form.required).toEqual(['image']);
      expect(Object.keys(form.properties ?? {})).toEqual(['image']);
    });

    it('fails validation for wrong bodies (the checks are not vacuous)', async () => {
      const ok = await app.inject({ method: 'POST', url: '/v1/classify?topk=2', payload: photo('parrot.jpg') });
      expect(ok.statusCode).toBe(200);
      const pointer = `${operationFor('POST', '/v1/classify')!.pointer}/responses/200/content/application~1json/schema`;
      const validate = validatorAt(pointer);
      const good = ok.json() as Record<string, unknown>;
      expect(validate(good)).toBe(true);
      const { predictions: _dropped, ...noPredictions } = good;
      expect(validate(noPredictions)).toBe(false);
      expect(validate({ ...good, predictions: [{ label: 'macaw', index: 89, score: '0.99' }] })).toBe(false);
      expect(validate({ ...good, multiplyAdds: 1.5 })).toBe(false);
      expect(validate({ ...good, image: { format: 'bmp', width: 1, height: 1 } })).toBe(false);
      expect(validate({ ...good, timings: { decodeMs: 1, queueMs: 1, inferenceMs: 1 } })).toBe(false);

      const unsupported = documentedResponse(operationFor('POST', '/v1/classify')!, 415)!;
      const validateError = validatorAt(`${unsupported.pointer}/content/application~1json/schema`);
      expect(validateError({ error: { code: 'unsupported_media_type', message: 'x' } })).toBe(true);
      expect(validateError({ error: { code: 'invalid_image', message: 'x' } })).toBe(false);
      expect(validateError({ error: { code: 'unsupported_media_type' } })).toBe(false);
      expect(validateError({ code: 'unsupported_media_type', message: 'x' })).toBe(false);
      expect(validatorAt('/components/schemas/Error')({ error: { code: 'teapot', message: 'x' } })).toBe(false);
      // And the shape comparison sees a missing property.
      const fastify200 = routes.find((r) => r.method === 'POST' && r.url === '/v1/classify')!.schema!.response!['200']!;
      const trimmed = { ...fastify200, properties: { ...fastify200.properties } };
      delete trimmed.properties.timings;
      expect(fastifyShape(trimmed)).not.toEqual(docShape(deref<Schema>({ $ref: `#${pointer}` }, '').value));
    });
  });

  describe('the routes', () => {
    it('documents every route the app registers, and only those (HEAD aside)', () => {
      expect(routes.length).toBeGreaterThan(0);
      const registered = routes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${asTemplate(r.url)}`).sort();
      const documented = operations.map((o) => `${o.method} ${o.path}`).sort();
      expect(registered).toEqual(documented);
      for (const { method, path } of operations) expect(app.hasRoute({ method, url: path.replace(/\{(\w+)\}/g, ':$1') }), `${method} ${path}`).toBe(true);
      // The HEAD routes are Fastify's automatic ones for the GET routes.
      for (const head of routes.filter((r) => r.method === 'HEAD')) expect(operationFor('GET', head.url), `HEAD ${head.url}`).toBeDefined();
    });

    it('leaves out only the pages for people (schema.hide): the demo page and the API docs', () => {
      expect(hiddenRoutes.map((r) => `${r.method} ${r.url}`)).toContain('GET /');
      expect(hiddenRoutes.map((r) => `${r.method} ${r.url}`)).toContain('GET /docs');
      for (const r of hiddenRoutes) expect(`${r.method} ${r.url}`).toMatch(/^(GET|HEAD) (\/|\/demo\/[\w.-]+|\/docs(\/.*)?)$/);
    });

    it('documents every status each route declares in its Fastify response schema, and no other 2xx/4xx/503', () => {
      for (const route of routes.filter((r) => r.method !== 'HEAD')) {
        const op = operationFor(route.method, route.url)!;
        const declared = Object.keys(route.schema?.response ?? {}).sort();
        const documented = Object.keys(op.operation.responses).sort();
        for (const status of declared) expect(documented, `${route.method} ${route.url} declares ${status}`).toContain(status);
        // The document adds 500 (any route can fail unexpectedly); anything else it documents for
        // a route with a response schema, the route must declare.
        if (declared.length > 0) expect(documented.filter((s) => s !== '500')).toEqual(declared);
      }
    });

    it('documents each Fastify response schema with the same shape (types, required, properties)', () => {
      let compared = 0;
      for (const route of routes.filter((r) => r.method !== 'HEAD')) {
        const op = operationFor(route.method, route.url)!;
        for (const [status, schema] of Object.entries(route.schema?.response ?? {})) {
          const documented = documentedResponse(op, Number(status))!.value.content?.['application/json']?.schema;
          expect(documented, `${route.method} ${route.url} ${status} has no JSON schema`).toBeDefined();
          expect(docShape(documented!), `${route.method} ${route.url} ${status}`).toEqual(fastifyShape(schema));
          compared++;
        }
      }
      expect(compared).toBeGreaterThanOrEqual(9);
    });

    it('documents the query parameters as the routes validate them', () => {
      for (const route of routes.filter((r) => r.method !== 'HEAD')) {
        const op = operationFor(route.method, route.url)!;
        const params = (op.operation.parameters ?? []).map((p) => deref<Parameter>(p, '').value).filter((p) => p.in === 'query');
        const querystring = route.schema?.querystring;
        const declared = Object.entries(querystring?.properties ?? {});
        expect(params.map((p) => p.name).sort(), `${route.method} ${route.url}`).toEqual(declared.map(([name]) => name).sort());
        for (const [name, schema] of declared) {
          const param = params.find((p) => p.name === name)!;
          const documented = deref<Schema>(param.schema!, '').value;
          const pick = (s: Schema) => ({ type: s.type, minimum: s.minimum, maximum: s.maximum, default: s.default, enum: s.enum });
          expect(pick(documented), `${route.url} ?${name}`).toEqual(pick(schema));
          expect(Boolean(param.required), `${route.url} ?${name} required`).toBe((querystring?.required ?? []).includes(name));
        }
      }
    });
  });

  describe('real responses match the document', () => {
    const classify = '/v1/classify';

    it('classifies a raw photo sent with each documented raw media type', async () => {
      const body = deref(operationFor('POST', classify)!.operation.requestBody!, '').value;
      const rawTypes = Object.keys(body.content).filter((t) => t !== 'multipart/form-data');
      expect(rawTypes.length).toBeGreaterThan(0);
      const topk = deref<Parameter>(operationFor('POST', classify)!.operation.parameters!.find((p) => deref<Parameter>(p, '').value.name === 'topk')!, '').value;
      for (const type of rawTypes) {
        const { body: json } = await call(app, 'POST', classify, { status: 200 }, { payload: photo('parrot.jpg'), headers: { 'content-type': type } });
        const result = json as { predictions: { label: string }[]; image: { format: string } };
        // Without `topk`, the documented default applies.
        expect(result.predictions).toHaveLength(topk.schema!.default as number);
        expect(result.predictions[0]!.label).toBe('macaw');
        expect(result.image.format).toBe('jpeg');
        classifyBody = json as Record<string, unknown>;
      }
      // No Content-Type at all is the same raw body.
      await call(app, 'POST', `${classify}?topk=1`, { status: 200 }, { payload: photo('parrot.jpg') });
    });

    it('classifies a photo sent as a multipart form with the file field `image`', async () => {
      const { body } = await call(app, 'POST', `${classify}?topk=3&model=mobilenet_v2_1.0_224`, { status: 200 }, multipartBody([imagePart(photo('parrot.jpg'))]));
      expect((body as { predictions: unknown[] }).predictions).toHaveLength(3);
      await call(app, 'POST', `${classify}?topk=1`, { status: 200 }, multipartBody([{ ...imagePart(photo('cat.png')), contentType: 'application/octet-stream' }]));
    });

    it('honours the documented bounds of topk: 1 to the class count the model listing gives', async () => {
      const { value } = deref<Parameter>(doc.components.parameters!.TopK!, '');
      const { minimum } = deref<Schema>(value.schema!, '').value;
      const listing = (await app.inject({ method: 'GET', url: '/v1/models' })).json<{ models: { task: string; classes: number }[] }>();
      const maximum = listing.models.find((m) => m.task === 'classification')!.classes;
      expect(maximum).toBe(1001);
      const { body } = await call(app, 'POST', `${classify}?topk=${maximum}`, { status: 200 }, { payload: photo('burger.jpg') });
      expect((body as { predictions: unknown[] }).predictions).toHaveLength(maximum!);
      await call(app, 'POST', `${classify}?topk=${minimum}`, { status: 200 }, { payload: photo('burger.jpg') });
      // A misspelt parameter is refused, not ignored.
      await call(app, 'POST', `${classify}?top_k=3`, { status: 400, code: 'invalid_request' }, { payload: photo('burger.jpg') });
      for (const bad of [minimum! - 1, maximum! + 1, 'abc', '2.5']) {
        await call(app, 'POST', `${classify}?topk=${bad}`, { status: 400, code: 'invalid_request' }, { payload: photo('burger.jpg') });
      }
    });

    it('refuses bodies that are not usable images with the documented codes', async () => {
      const octet = { 'content-type': 'application/octet-stream' };
      await call(app, 'POST', classify, { status: 400, code: 'empty_body' }, { headers: octet });
      await call(app, 'POST', classify, { status: 400, code: 'empty_body' }, { payload: Buffer.alloc(0), headers: { 'content-type': 'image/jpeg' } });
      await call(app, 'POST', classify, { status: 415, code: 'unsupported_media_type' }, { payload: 'this is not an image, just text', headers: { 'content-type': 'text/plain' } });
      await call(app, 'POST', classify, { status: 415, code: 'unsupported_media_type' }, { payload: '{"image":"parrot.jpg"}', headers: { 'content-type': 'application/json' } });
      const bmp = Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]);
      const { body } = await call(app, 'POST', classify, { status: 415, code: 'unsupported_media_type' }, { payload: bmp, headers: { 'content-type': 'image/bmp' } });
      expect((body as ErrorBodyJson).error.message).toMatch(/BMP/);
      // A JPEG sent as image/png is still a JPEG: the bytes decide.
      await call(app, 'POST', `${classify}?topk=1`, { status: 200 }, { payload: photo('burger.jpg'), headers: { 'content-type': 'image/png' } });
      await call(app, 'POST', classify, { status: 422, code: 'invalid_image' }, { payload: photo('truncated.jpg'), headers: { 'content-type': 'image/jpeg' } });
      await call(app, 'POST', classify, { status: 422, code: 'invalid_image' }, { payload: photo('burger.jpg').subarray(0, 2000), headers: octet });
    });

    it('refuses an unknown model and malformed forms with the documented codes', async () => {
      await call(app, 'POST', `${classify}?model=no_such_model`, { status: 400, code: 'unknown_model' }, { payload: photo('burger.jpg') });
      await call(app, 'POST', classify, { status: 400, code: 'invalid_multipart' }, multipartBody([imagePart(photo('burger.jpg'), 'file')]));
      await call(app, 'POST', classify, { status: 400, code: 'invalid_multipart' }, multipartBody([imagePart(photo('burger.jpg')), imagePart(photo('burger.jpg'))]));
      await call(app, 'POST', classify, { status: 400, code: 'invalid_multipart' }, multipartBody([imagePart(photo('burger.jpg')), { name: 'topk', data: '3' }]));
      await call(app, 'POST', classify, { status: 400, code: 'invalid_multipart' }, multipartBody([]));
      await call(app, 'POST', classify, { status: 400, code: 'empty_body' }, multipartBody([imagePart(Buffer.alloc(0))]));
    });

    it('refuses a truncated multipart body with 400 invalid_multipart', async () => {
      const { payload, headers } = multipartBody([imagePart(photo('burger.jpg'))]);
      await call(app, 'POST', classify, { status: 400, code: 'invalid_multipart' }, { payload: payload.subarray(0, 3000), headers });
    });

    it('refuses a multipart body without a boundary with 400 invalid_multipart', async () => {
      const { payload } = multipartBody([imagePart(photo('burger.jpg'))]);
      await call(app, 'POST', classify, { status: 400, code: 'invalid_multipart' }, { payload, headers: { 'content-type': 'multipart/form-data' } });
    });

    it('detects as documented, in JSON and as a picture', async () => {
      const detect = '/v1/detect';
      const { body } = await call(app, 'POST', `${detect}?minScore=0.4&classes=dog,cat`, { status: 200 }, { payload: photo('pets.jpg') });
      expect((body as { detections: { label: string }[] }).detections.map((d) => d.label)).toContain('dog');
      await call(app, 'POST', detect, { status: 200 }, multipartBody([imagePart(photo('pets.jpg'))]));
      const { res } = await call(app, 'POST', `${detect}?format=image`, { status: 200 }, { payload: photo('pets.jpg') });
      expect(res.headers['content-type']).toBe('image/png');
      const jpeg = await call(app, 'POST', detect, { status: 200 }, { payload: photo('pets.jpg'), headers: { accept: 'image/jpeg' } });
      expect(jpeg.res.headers['content-type']).toBe('image/jpeg');
      // An explicit format wins over Accept; q=0 refuses a type; nothing acceptable is a 406 before any work.
      const json = await call(app, 'POST', `${detect}?format=json`, { status: 200 }, { payload: photo('pets.jpg'), headers: { accept: 'image/png' } });
      expect(json.res.headers['content-type']).toMatch(/^application\/json/);
      const refused = await call(app, 'POST', detect, { status: 200 }, { payload: photo('pets.jpg'), headers: { accept: 'image/png;q=0, */*;q=0.5' } });
      expect(refused.res.headers['content-type']).toMatch(/^application\/json/);
      const preferred = await call(app, 'POST', detect, { status: 200 }, { payload: photo('pets.jpg'), headers: { accept: 'application/json;q=0.5, image/jpeg' } });
      expect(preferred.res.headers['content-type']).toBe('image/jpeg');
      const images = (await app.metrics.images.get()).values.reduce((sum, v) => sum + v.value, 0);
      for (const accept of ['text/html', 'image/png;q=0']) {
        await call(app, 'POST', detect, { status: 406, code: 'not_acceptable' }, { payload: photo('pets.jpg'), headers: { accept } });
      }
      expect((await app.metrics.images.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(images);
      for (const query of ['minScore=2', 'maxDetections=0', 'iouThreshold=-1', 'classes=unicorn', 'format=svg', 'topk=3']) {
        await call(app, 'POST', `${detect}?${query}`, { status: 400, code: 'invalid_request' }, { payload: photo('pets.jpg') });
      }
      await call(app, 'POST', `${detect}?model=mobilenet_v2_1.0_224`, { status: 400, code: 'unknown_model' }, { payload: photo('pets.jpg') });
      await call(app, 'POST', detect, { status: 415, code: 'unsupported_media_type' }, { payload: Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]) });
      await call(app, 'POST', detect, { status: 422, code: 'invalid_image' }, { payload: photo('truncated.jpg') });
    });

    it('segments as documented: JSON with the mask, the mask alone, the overlay picture', async () => {
      const segment = '/v1/segment';
      const { body } = await call(app, 'POST', segment, { status: 200 }, { payload: photo('pets.jpg') });
      const json = body as { legend: { label: string; pixels: number }[]; mask: { width: number; height: number; data: string }; multiplyAdds: number; outputStride: number; strategy: string };
      expect(json.legend.map((l) => l.label)).toContain('dog');
      expect([json.mask.width, json.mask.height]).toEqual([512, 430]);
      expect([json.outputStride, json.strategy]).toEqual([8, 'single']);
      const { res: mask } = await call(app, 'POST', `${segment}?format=mask`, { status: 200 }, multipartBody([imagePart(photo('pets.jpg'))]));
      expect(mask.headers['content-type']).toBe('image/png');
      expect(mask.rawPayload.equals(Buffer.from(json.mask.data, 'base64'))).toBe(true);
      const { res: overlay } = await call(app, 'POST', segment, { status: 200 }, { payload: photo('pets.jpg'), headers: { accept: 'image/png' } });
      expect(overlay.headers['content-type']).toBe('image/png');
      expect(overlay.rawPayload.equals(mask.rawPayload)).toBe(false);
      // An explicit format wins over the Accept header; without one, nothing acceptable is a 406.
      await call(app, 'POST', `${segment}?format=json`, { status: 200 }, { payload: photo('pets.jpg'), headers: { accept: 'image/png' } });
      const { res: maskOverAccept } = await call(app, 'POST', `${segment}?format=mask`, { status: 200 }, { payload: photo('pets.jpg'), headers: { accept: 'image/jpeg' } });
      expect(maskOverAccept.rawPayload.equals(mask.rawPayload)).toBe(true);
      await call(app, 'POST', segment, { status: 406, code: 'not_acceptable' }, { payload: photo('pets.jpg'), headers: { accept: 'text/html, image/png;q=0' } });
      const { body: coarse } = await call(app, 'POST', `${segment}?outputStride=16`, { status: 200 }, { payload: photo('pets.jpg') });
      expect((coarse as typeof json).multiplyAdds).toBeLessThan(json.multiplyAdds);
      for (const query of ['outputStride=12', 'outputStride=abc', 'strategy=best', 'format=svg', 'topk=3']) {
        await call(app, 'POST', `${segment}?${query}`, { status: 400, code: 'invalid_request' }, { payload: photo('pets.jpg') });
      }
      await call(app, 'POST', `${segment}?model=mobilenet_v2_1.0_224`, { status: 400, code: 'unknown_model' }, { payload: photo('pets.jpg') });
      await call(app, 'POST', segment, { status: 400, code: 'empty_body' }, { payload: Buffer.alloc(0), headers: { 'content-type': 'image/png' } });
      await call(app, 'POST', segment, { status: 400, code: 'invalid_multipart' }, multipartBody([imagePart(photo('pets.jpg'), 'file')]));
      await call(app, 'POST', segment, { status: 415, code: 'unsupported_media_type' }, { payload: 'not an image', headers: { 'content-type': 'text/plain' } });
      await call(app, 'POST', segment, { status: 422, code: 'invalid_image' }, { payload: photo('truncated.jpg') });
    });

    it('embeds as documented, in JSON and as float32 or float16 bytes', async () => {
      const embed = '/v1/embed';
      const { body } = await call(app, 'POST', `${embed}?normalize=true`, { status: 200 }, { payload: photo('parrot.jpg') });
      expect((body as { dimensions: number }).dimensions).toBe(1280);
      await call(app, 'POST', embed, { status: 200 }, multipartBody([imagePart(photo('parrot.jpg'))]));
      for (const format of ['float32', 'float16']) {
        const { res } = await call(app, 'POST', `${embed}?format=${format}`, { status: 200 }, { payload: photo('parrot.jpg') });
        expect(res.rawPayload.length).toBe(1280 * (format === 'float32' ? 4 : 2));
      }
      for (const query of ['normalize=yes', 'format=float64', 'topk=3']) {
        await call(app, 'POST', `${embed}?${query}`, { status: 400, code: 'invalid_request' }, { payload: photo('parrot.jpg') });
      }
      await call(app, 'POST', `${embed}?model=ssdlite_mobilenet_v2_coco`, { status: 400, code: 'unknown_model' }, { payload: photo('parrot.jpg') });
      await call(app, 'POST', embed, { status: 415, code: 'unsupported_media_type' }, { payload: 'not an image', headers: { 'content-type': 'text/plain' } });
      await call(app, 'POST', embed, { status: 422, code: 'invalid_image' }, { payload: photo('truncated.jpg') });
    });

    it('answers the Open Inference Protocol routes as documented', async () => {
      const model = (name: string, suffix = '') => [`/v2/models/${name}${suffix}`, `/v2/models/${name}/versions/1${suffix}`];
      for (const url of ['/v2/health/live', '/v2/health/ready', ...model('mobilenet_v2_1.0_224', '/ready')]) await call(app, 'GET', url, { status: 200 });
      await call(app, 'GET', '/v2/models/nothing/ready', { status: 400 });
      await call(app, 'GET', '/v2/models/mobilenet_v2_1.0_224/versions/3/ready', { status: 400 });
      await call(app, 'GET', '/v2', { status: 200 });
      for (const url of model('ssdlite_mobilenet_v2_coco')) await call(app, 'GET', url, { status: 200 });
      for (const url of ['/v2/models/nothing', '/v2/models/ssdlite_mobilenet_v2_coco/versions/2']) await call(app, 'GET', url, { status: 400, code: 'unknown_model' });
      const json = { 'content-type': 'application/json' };
      const image = (name: string) => ({ name: 'image', datatype: 'BYTES', shape: [1], data: [photo(name).toString('base64')] });
      for (const url of model('mobilenet_v2_1.0_224', '/infer')) {
        const { body } = await call(app, 'POST', url, { status: 200 }, { payload: JSON.stringify({ id: 'a', inputs: [image('parrot.jpg')], outputs: [{ name: 'probabilities', parameters: { classification: 1 } }] }), headers: json });
        expect((body as { outputs: { data: string[] }[] }).outputs[0]!.data[0]).toMatch(/:89:macaw$/);
      }
      const header = Buffer.from(JSON.stringify({ inputs: [image('pets.jpg')], outputs: [{ name: 'class_map', parameters: { binary_data: true } }] }));
      const { res } = await call(app, 'POST', '/v2/models/deeplabv3_mobilenet_v2_0.5_257/infer', { status: 200 }, { payload: header, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } });
      expect(res.rawPayload.length).toBe(Number(res.headers['inference-header-content-length']) + 257 * 257);
      const refuse = (status: number, code: string, request: object, name = 'mobilenet_v2_1.0_224') =>
        call(app, 'POST', `/v2/models/${name}/infer`, { status, code }, { payload: JSON.stringify(request), headers: json });
      await refuse(400, 'invalid_request', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] });
      await refuse(400, 'unknown_model', { inputs: [image('parrot.jpg')] }, 'nothing');
      await refuse(415, 'unsupported_media_type', { inputs: [{ ...image('parrot.jpg'), data: [Buffer.from('plain text').toString('base64')] }] });
      await refuse(422, 'invalid_image', { inputs: [image('truncated.jpg')] });
    });

    it('answers the GET routes as documented', async () => {
      const { body: models } = await call(app, 'GET', '/v1/models', { status: 200 });
      const list = (models as { models: { name: string; multiplyAdds: number }[] }).models;
      expect(list.map((m) => m.name)).toEqual(['mobilenet_v2_1.0_224', 'ssdlite_mobilenet_v2_coco', 'deeplabv3_mobilenet_v2_0.5_257']);
      if (classifyBody) expect(classifyBody.multiplyAdds).toBe(list[0]!.multiplyAdds);
      await call(app, 'GET', '/healthz', { status: 200 });
      await call(app, 'GET', '/readyz', { status: 200 });
      for (const url of ['/healthz', '/readyz', '/v1/models', '/metrics']) await call(app, 'HEAD', url, { status: 200 });
    });

    it('answers the management routes as documented: auth, index, reload, unload', async () => {
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
      await call(app, 'POST', '/v2/repository/index', { status: 401, code: 'unauthorized' });
      await call(app, 'POST', '/v2/repository/index', { status: 403, code: 'forbidden' }, { headers: { authorization: 'Bearer nope' } });
      const { body } = await call(app, 'POST', '/v2/repository/index', { status: 200 }, { headers: admin, payload: '{"ready": true}' });
      expect((body as { name: string }[]).map((e) => e.name).sort()).toEqual(['deeplabv3_mobilenet_v2_0.5_257', 'mobilenet_v2_1.0_224', 'ssdlite_mobilenet_v2_coco']);
      await call(app, 'POST', '/v2/repository/index', { status: 400, code: 'invalid_request' }, { headers: admin, payload: '{"ready": "yes"}' });
      await call(app, 'POST', '/v2/repository/models/no_such_model/load', { status: 400, code: 'unknown_model' }, { headers: admin });
      await call(app, 'POST', '/v2/repository/models/mobilenet_v2_1.0_224/load', { status: 400, code: 'load_failed' }, { headers: admin, payload: '{"parameters": {"version": "9"}}' });
      await call(app, 'POST', '/v2/repository/models/ssdlite_mobilenet_v2_coco/unload', { status: 200 }, { headers: admin });
      await call(app, 'POST', '/v1/detect?model=ssdlite_mobilenet_v2_coco', { status: 503, code: 'model_not_loaded' }, { payload: photo('pets.jpg') });
      const { body: loaded } = await call(app, 'POST', '/v2/repository/models/ssdlite_mobilenet_v2_coco/load', { status: 200 }, { headers: admin });
      expect(loaded).toEqual({ name: 'ssdlite_mobilenet_v2_coco', version: '1' });
      await call(app, 'POST', '/v1/detect', { status: 200 }, { payload: photo('pets.jpg') });
    });

    it('answers unknown routes with the documented 404', async () => {
      await call(app, 'GET', '/v1/nothing', { status: 404, code: 'not_found' });
      await call(app, 'GET', classify, { status: 404, code: 'not_found' });
      await call(app, 'POST', '/healthz', { status: 404, code: 'not_found' }, { payload: 'x' });
    });

    it('serves /metrics in the text format with exactly the documented service metrics', async () => {
      const { res, body } = await call(app, 'GET', '/metrics', { status: 200 });
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = body as string;
      const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
      const isDefault = (name: string) => /^(process|nodejs)_/.test(name);
      const labels = new Map<string, Set<string>>();
      for (const [, name, labelText] of text.matchAll(/^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? \S+$/gm)) {
        const base = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '');
        const set = labels.get(base) ?? new Set<string>();
        for (const [, key] of (labelText ?? '').matchAll(/(\w+)="/g)) if (key !== 'le') set.add(key!);
        labels.set(base, set);
      }

      const description = operationFor('GET', '/metrics')!.operation.description ?? '';
      const rows = [...description.matchAll(/^\| `([a-z_:]+)` \| (\w+) \|([^|]*)\|/gm)].map(([, name, type, labelCell]) => ({
        name: name!,
        type: type!,
        labels: [...labelCell!.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort(),
      }));
      expect(rows.map((r) => r.name).sort()).toEqual([...types.keys()].filter((n) => !isDefault(n)).sort());
      for (const row of rows) {
        expect(types.get(row.name), row.name).toBe(row.type);
        // Every labelled metric has samples by now (the requests above touched them all).
        expect([...(labels.get(row.name) ?? [])].sort(), `${row.name} labels`).toEqual(row.labels);
      }
    });

    it('exercised a documented response of every operation', () => {
      for (const id of ['classify 200', 'classify 400', 'classify 415', 'classify 422', 'detect 200', 'detect 400', 'detect 406', 'detect 415', 'detect 422', 'segment 200', 'segment 400', 'segment 406', 'segment 415', 'segment 422', 'embed 200', 'embed 400', 'embed 415', 'embed 422', 'v2Live 200', 'v2Ready 200', 'v2ServerMetadata 200', 'v2ModelMetadata 200', 'v2ModelMetadata 400', 'v2ModelVersionMetadata 200', 'v2ModelVersionMetadata 400', 'v2ModelReady 200', 'v2ModelReady 400', 'v2ModelVersionReady 200', 'v2ModelVersionReady 400', 'v2Infer 200', 'v2Infer 400', 'v2Infer 415', 'v2Infer 422', 'v2InferVersion 200', 'listModels 200', 'health 200', 'ready 200', 'metrics 200', 'unknown route 404',
        'repositoryIndex 200', 'repositoryIndex 400', 'repositoryIndex 401', 'repositoryIndex 403', 'repositoryLoad 200', 'repositoryLoad 400', 'repositoryUnload 200', 'detect 503']) {
        expect(exercised, id).toContain(id);
      }
    });
  });
});

describe('openapi.yaml against a service with small limits', () => {
  const BODY_LIMIT = 700_000;
  const MAX_PIXELS = 500_000;
  let app: FastifyInstance;
  let loaded: Promise<unknown>;

  beforeAll(async () => {
    const config = loadConfig({
      ...process.env,
      MODELS: 'mobilenet_v2_1.0_224',
      ENGINE_THREADS: '1',
      MAX_QUEUE: '0',
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      MAX_IMAGE_PIXELS: String(MAX_PIXELS),
    });
    app = await buildApp(config);
    await app.ready();
    loaded = app.modelsLoaded.then(() => undefined, (err: unknown) => err);
  });

  afterAll(async () => {
    await app?.close();
    await loaded;
  });

  it('is not ready until the models have loaded', async () => {
    await call(app, 'GET', '/readyz', { status: 503, code: 'not_ready' });
    expect(await loaded).toBeUndefined();
    await call(app, 'GET', '/readyz', { status: 200 });
  });

  it('refuses bodies and images over the limits with 413', async () => {
    const big = photo('kite_and_cold.jpg');
    expect(big.length).toBeGreaterThan(BODY_LIMIT);
    await call(app, 'POST', '/v1/classify', { status: 413, code: 'body_too_large' }, { payload: big, headers: { 'content-type': 'image/jpeg' } });
    await call(app, 'POST', '/v1/classify', { status: 413, code: 'body_too_large' }, multipartBody([imagePart(big)]));
    const wide = photo('cats_and_dogs.jpg'); // 1200x600: small file, too many pixels
    expect(wide.length).toBeLessThan(BODY_LIMIT);
    await call(app, 'POST', '/v1/classify', { status: 413, code: 'image_too_large' }, { payload: wide, headers: { 'content-type': 'image/jpeg' } });
  });

  it('answers 503 queue_full with a Retry-After header when every worker is busy and the queue is full', async () => {
    const small = photo('burger.jpg');
    let full: LightMyRequestResponse | undefined;
    for (let round = 0; round < 10 && !full; round++) {
      const responses = await Promise.all(
        Array.from({ length: 6 }, () => app.inject({ method: 'POST', url: '/v1/classify?topk=1', payload: small, headers: { 'content-type': 'image/jpeg' } })),
      );
      for (const res of responses) {
        expectDocumented('POST', '/v1/classify', res);
        expect([200, 503]).toContain(res.statusCode);
      }
      full = responses.find((r) => r.statusCode === 503);
    }
    expect(full, 'no request was refused with a full queue').toBeDefined();
    expect((full!.json() as ErrorBodyJson).error.code).toBe('queue_full');
    expect(Number(full!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });
});
