// `app.models`: the loaded models as the main thread knows them (cost, labels, settings).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { findEntry } from '../../catalog/catalog.js';
import type { Config } from '../../config.js';
import { describeModel, ModelRegistry } from '../../pipeline/models.js';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRegistry;
  }
}

export default fp(async (app: FastifyInstance, { config }: { config: Config }) => {
  const models = config.models.map((name) => describeModel(findEntry(name), config.modelDir, { engine: config.engine, split: config.split[name], preprocess: config.preprocess?.[name] }));
  app.decorate('models', new ModelRegistry(models));
}, { name: 'models' });
