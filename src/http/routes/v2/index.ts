// The Open Inference Protocol (KServe v2) over REST, beside the task API: health, server and
// model metadata, model readiness and inference, for every loaded model. Its routes share every
// hook of the task API (request lifetimes, the body budget, admission for inference); their
// errors have the protocol's form, {"error": message}, with our stable code beside it and the
// same status as the task API's. Health answers are bodiless: 200 is true, 400 false.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { infer } from '../../../oip/infer.js';
import { modelMetadata, resolveModel, serverMetadata } from '../../../oip/metadata.js';
import { UnknownModelError } from '../../../pipeline/models.js';
import { errorHandler } from '../../error-handler.js';
import { admitImageRequest, withAdmission } from '../../image-route.js';
import { HEADER_LENGTH, encodeInferResponse, parseInferBody } from './body.js';

interface ModelParams {
  name: string;
  version?: string;
}

/** Both forms of a model's URL: without a version (the server picks its one) and with one. */
const modelUrls = (suffix: string) => [`/v2/models/:name${suffix}`, `/v2/models/:name/versions/:version${suffix}`];

export async function inferenceProtocolRoutes(app: FastifyInstance): Promise<void> {
  app.setErrorHandler(errorHandler(app, (code, message) => ({ error: message, code })));

  const ready = () => !app.draining && app.pool.ready;
  const truth = (reply: FastifyReply, value: boolean) => reply.code(value ? 200 : 400).send();
  const modelOf = (request: FastifyRequest) => {
    const { name, version } = request.params as ModelParams;
    return resolveModel(app.models, name, version);
  };

  app.get('/v2/health/live', async (_request, reply) => truth(reply, true));
  app.get('/v2/health/ready', async (_request, reply) => truth(reply, ready()));
  app.get('/v2', async () => serverMetadata('rest'));

  for (const url of modelUrls('')) app.get(url, async (request) => modelMetadata(modelOf(request)));
  // An unknown model (or version) is not ready: the answer is a bare false too.
  const served = (request: FastifyRequest) => {
    try {
      return Boolean(modelOf(request));
    } catch (err) {
      if (err instanceof UnknownModelError) return false;
      throw err;
    }
  };
  for (const url of modelUrls('/ready')) app.get(url, async (request, reply) => truth(reply, ready() && served(request)));
  for (const url of modelUrls('/infer')) {
    app.post(url, { onRequest: admitImageRequest(app) }, async (request, reply) => {
      const model = modelOf(request);
      const header = request.headers[HEADER_LENGTH];
      const inference = parseInferBody(request.body as Buffer | undefined, typeof header === 'string' ? header : undefined);
      const response = await withAdmission(app, request, (context) => infer(app.pipeline, model, inference, context));
      const { body, headerLength } = encodeInferResponse(response, inference);
      if (headerLength === undefined) return reply.type('application/json').send(body);
      return reply.type('application/octet-stream').header(HEADER_LENGTH, String(headerLength)).send(body);
    });
  }
}
