// `app.draining`: set when close() begins (SIGTERM). Readiness turns false while in-flight
// requests finish, their answers close their connections, and connections that are not carrying
// a request (idle keep-alive, or a client still dribbling its headers) are closed at once.
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    draining: boolean;
  }
}

/** Node's http server sets this on a socket once a request's headers are in, until its answer ends. */
const carriesRequest = (socket: Socket) => (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;

export default fp(async (app: FastifyInstance) => {
  app.decorate('draining', false);
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  app.addHook('preClose', async () => {
    app.draining = true;
    for (const socket of sockets) if (!carriesRequest(socket)) socket.destroy();
  });
  // A keep-alive connection whose request was in flight when the drain began would otherwise
  // stay open until its keep-alive timeout and hold the drain up.
  app.addHook('onSend', async (_request, reply) => {
    if (app.draining) reply.header('connection', 'close');
  });
}, { name: 'drain' });
