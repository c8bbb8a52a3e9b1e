// A module resolution hook for the generators: `typescript` resolves to this package's
// TypeScript 5, whose compiler API they call. The project's TypeScript 7 has none, and npm puts
// @hey-api/openapi-ts beside it at the root because the generator's peer range admits 7.
export async function resolve(specifier, context, nextResolve) {
  return nextResolve(specifier, specifier === 'typescript' ? { ...context, parentURL: import.meta.url } : context);
}
