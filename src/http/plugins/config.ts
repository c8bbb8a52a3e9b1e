// `app.config`: the service configuration (src/config.ts), read once at start-up.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
  }
}

export default fp(async (app: FastifyInstance, { config }: { config: Config }) => {
  app.decorate('config', config);
}, { name: 'config' });
