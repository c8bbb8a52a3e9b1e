// `app.models`: the loaded models as the main thread knows them (cost, labels, settings), read
// from the model repository; `app.repositoryIndex` what the repository holds besides.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { indexRepository } from '../../catalog/catalog.js';
import { ConfigError, type Config } from '../../config.js';
import { describeModel, ModelRegistry } from '../../pipeline/models.js';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRegistry;
  }
}

export default fp(async (app: FastifyInstance, { config }: { config: Config }) => {
  const index = indexRepository(config.repository, config.modelDir);
  const models = config.models.map((name) => {
    try {
      return describeModel(index.find((m) => m.name === name)!.entry!, { engine: config.engine, split: config.split[name], preprocess: config.preprocess?.[name], precision: config.precision[name] });
    } catch (err) {
      // A model of MODELS whose weights or labels do not fit its config: the service cannot start as configured.
      throw new ConfigError(`MODELS: ${name}: ${(err as Error).message}`);
    }
  });
  app.decorate('models', new ModelRegistry(models));
}, { name: 'models' });
