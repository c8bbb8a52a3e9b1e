// TypeScript types for an OpenAPI document, for openapi-fetch, with openapi-typescript's Node API:
//
//   node tools/openapi-codegen/generate.mjs openapi.yaml out.ts
//
// The one change from the CLI's output: binary content (`format: binary`, `contentMediaType`
// image/*) is typed as Blob instead of string, so uploads and picture answers are bytes to the
// compiler too.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node tools/openapi-codegen/generate.mjs <openapi.yaml> <out.ts>');
  process.exit(2);
}
const blob = ts.factory.createTypeReferenceNode('Blob');
const ast = await openapiTS(pathToFileURL(input), {
  transform(schema) {
    if (schema.format === 'binary' || /^image\//.test(schema.contentMediaType ?? '')) return blob;
    return undefined;
  },
});
writeFileSync(output, `// Generated from ${input} by tools/openapi-codegen/generate.mjs (openapi-typescript); do not edit.\n\n${astToString(ast)}`);
