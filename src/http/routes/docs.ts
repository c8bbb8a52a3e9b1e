// GET /docs: Swagger UI over openapi.yaml itself (static mode), so the page shows the contract
// the tests check, not a description generated from the routes. The UI's assets come from the
// @fastify/swagger-ui package: nothing is fetched from the network at run time.
import { fileURLToPath } from 'node:url';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export const OPENAPI_PATH = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));
export const DOCS_PREFIX = '/docs';

export async function docsRoutes(app: FastifyInstance): Promise<void> {
  await app.register(swagger, { mode: 'static', specification: { path: OPENAPI_PATH, baseDir: fileURLToPath(new URL('../../..', import.meta.url)) } });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { deepLinking: true, tryItOutEnabled: false },
    // "Try it out" should call the instance serving the page, wherever it runs, before the
    // document's example server: a relative URL, not the request's Host header, which the
    // client controls and this document would repeat to whoever reads it.
    transformSpecification: (document: Record<string, unknown>) => ({
      ...document,
      servers: [{ url: '/', description: 'this instance' }, ...((document.servers as unknown[]) ?? [])],
    }),
  });
}
