// GET /: a demo page that calls the API from the browser (src/http/demo/). Three small files,
// read once at start-up; the page uses only the public routes, like any other client.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const asset = (name: string) => readFileSync(new URL(`../demo/${name}`, import.meta.url), 'utf8');

const ASSETS = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/demo/demo.js', file: 'demo.js', type: 'text/javascript; charset=utf-8' },
  { url: '/demo/demo.css', file: 'demo.css', type: 'text/css; charset=utf-8' },
] as const;

export async function demoRoutes(app: FastifyInstance): Promise<void> {
  for (const { url, file, type } of ASSETS) {
    const body = asset(file);
    // `hide`: not part of the API contract (test/openapi.test.ts leaves such routes out).
    app.get(url, { schema: { hide: true } }, async (_request, reply) => reply.type(type).header('cache-control', 'no-cache').send(body));
  }
}
