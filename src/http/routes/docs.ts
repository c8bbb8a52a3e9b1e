// GET /docs: Swagger UI over openapi.yaml itself (static mode), so the page shows the contract
// the tests check, not a description generated from the routes. The UI's assets come from the
// @fastify/swagger-ui package: nothing is fetched from the network at run time.
import { fileURLToPath } from 'node:url';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export const OPENAPI_PATH = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));
export const DOCS_PREFIX = '/docs';

export async function docsRoutes(app: FastifyInstance): Promise<void> {
  await app.register(swagger, { mode: 'static', specification: { path: OPENAPI_PATH, baseDir: fileURLToPath(new URL('../../..', import.meta.url)) } });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { deepLinking: true, tryItOutEnabled: false },
    // "Try it out" should call the instance serving the page, wherever it runs, before the
    // document's example server.
    transformSpecification: (document: Record<string, unknown>, request: FastifyRequest) => ({
      ...document,
      servers: [{ url: `${request.protocol}://${request.host}`, description: 'this instance' }, ...((document.servers as unknown[]) ?? [])],
    }),
  });
}
