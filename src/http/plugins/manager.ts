// `app.manager`: the model repository at run time (index, load, unload, polling).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.js';
import { ModelManager } from '../../pipeline/manager.js';

declare module 'fastify' {
  interface FastifyInstance {
    manager: ModelManager;
  }
}

export default fp(async (app: FastifyInstance, { config }: { config: Config }) => {
  const manager = new ModelManager({
    repository: config.repository,
    modelDir: config.modelDir,
    engine: config.engine,
    split: config.split,
    precision: config.precision,
    pool: app.pool,
    registry: app.models,
    workerMemoryBytes: config.workerMemoryBytes,
    onChange: ({ name, version, action, error }) => {
      if (error) app.log.warn({ model: name, version, action, error }, `model ${action} failed`);
      else app.log.info({ model: name, version, action }, `model ${action}ed`);
    },
  });
  app.decorate('manager', manager);
  // Polling starts once the models of the start have loaded, and stops before the pool closes.
  void app.modelsLoaded.then(() => manager.startPolling(config.pollSeconds), () => {});
  app.addHook('onClose', async () => manager.stopPolling());
}, { name: 'manager', dependencies: ['pool', 'models'] });
