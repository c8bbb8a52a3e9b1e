// A TypeScript client for an OpenAPI document with @hey-api/openapi-ts (its fetch client, SDK
// functions and types):
//
//   node tools/openapi-codegen/hey-api.mjs openapi.yaml out-dir
import { register } from 'node:module';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node tools/openapi-codegen/hey-api.mjs <openapi.yaml> <out-dir>');
  process.exit(2);
}
register('./typescript-5.mjs', import.meta.url);
const { createClient } = await import('@hey-api/openapi-ts');
await createClient({ input, output, plugins: ['@hey-api/client-fetch', '@hey-api/sdk', '@hey-api/typescript'], logs: { level: 'warn' } });
