// Every request body is held in memory until its request ends, so bodies in flight together are
// bounded (BODY_MEMORY_MB): a request reserves its Content-Length (or the largest body allowed,
// when it sends none) before its first byte is read, and is refused with 503 overloaded when the
// budget is full. A Content-Length over the body limit is refused before anything is read.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from './errors.js';
import { hasBody } from './lifetime.js';

export const bodyBudget = fp(async (app: FastifyInstance, { bodyLimitBytes }: { bodyLimitBytes: number }) => {
  app.addHook('onRequest', async (request, reply) => {
    if (!hasBody(request)) return;
    const declared = request.headers['content-length'];
    const bytes = declared === undefined ? bodyLimitBytes : Number(declared);
    if (bytes > bodyLimitBytes) {
      throw new ApiError('body_too_large', `the body is ${bytes} bytes; at most ${bodyLimitBytes} are accepted`);
    }
    const lease = app.pipeline.reserveBody(bytes);
    reply.raw.once('close', lease.release);
  });
}, { name: 'body-budget', dependencies: ['pipeline', 'lifetime'] });
