// Headers every answer carries, and those of the pages for people (the demo and the API docs):
// no content-type sniffing anywhere; on HTML, scripts and styles from this origin only, no
// framing by other sites. Swagger UI's page sets its own styles inline, hence 'unsafe-inline'
// for styles (not for scripts).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff' } as const;

export const HTML_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

export const securityHeaders = fp(async (app: FastifyInstance) => {
  app.addHook('onSend', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (/^text\/html\b/i.test(String(reply.getHeader('content-type') ?? ''))) reply.headers(HTML_HEADERS);
  });
}, { name: 'security-headers' });
