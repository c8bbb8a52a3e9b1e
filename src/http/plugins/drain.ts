// `app.draining`: set when close() begins (SIGTERM). Readiness turns false while in-flight
// requests finish, and their answers close their connections.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    draining: boolean;
  }
}

export default fp(async (app: FastifyInstance) => {
  app.decorate('draining', false);
  app.addHook('preClose', async () => {
    app.draining = true;
  });
  // A keep-alive connection whose request was in flight when the drain began would otherwise
  // stay open until its keep-alive timeout and hold the drain up.
  app.addHook('onSend', async (_request, reply) => {
    if (app.draining) reply.header('connection', 'close');
  });
}, { name: 'drain' });
