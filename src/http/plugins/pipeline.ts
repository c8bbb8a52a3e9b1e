// `app.pipeline`: the shared path of every image request (admission, decode, pool, metrics).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.js';
import { ImagePipeline } from '../../pipeline/image-pipeline.js';

declare module 'fastify' {
  interface FastifyInstance {
    pipeline: ImagePipeline;
  }
}

export default fp(async (app: FastifyInstance, { config }: { config: Config }) => {
  app.decorate('pipeline', new ImagePipeline({
    pool: app.pool,
    metrics: app.metrics,
    limits: { maxPixels: config.maxImagePixels, minSide: config.minImageSide, maxJpegScanPixels: config.maxJpegScanPixels, timeoutMs: config.decodeTimeoutMs },
    engine: config.engine,
    bodyMemoryBytes: config.bodyMemoryBytes,
    pixelMemoryBytes: config.pixelMemoryBytes,
  }));
}, { name: 'pipeline', dependencies: ['pool', 'metrics'] });
