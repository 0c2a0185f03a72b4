/**
 * fastify's schema compilers (ajv for validation, fast-json-stringify for response serialization), required only
 * when a route declares a schema. fastify requires both at construction unless it is given its own factories, and
 * loading ajv is a sizeable part of a start; no route of the gateway declares a schema (requests are checked with
 * zod), so these factories load the same packages fastify would, from fastify's own dependencies, on first use.
 *
 *   new HttpServer ─► Fastify({ schemaController: { compilersFactory: lazySchemaCompilers } })   (nothing loaded)
 *   a route with `schema` ─► buildValidator / buildSerializer ─► require @fastify/ajv-compiler / …-compiler
 */
import { createRequire } from 'node:module';

type Factory = (...args: unknown[]) => unknown;

let fromFastify: NodeJS.Require | null = null;
/** `require` as seen from fastify's own folder (where npm put the compilers it depends on). */
function fastifyRequire(id: string): () => Factory {
  fromFastify ??= createRequire(createRequire(import.meta.url).resolve('fastify'));
  return fromFastify(id) as () => Factory;
}

let validator: Factory | null = null;
let serializer: Factory | null = null;

export const lazySchemaCompilers = {
  buildValidator: (...args: unknown[]): unknown => (validator ??= fastifyRequire('@fastify/ajv-compiler')())(...args),
  buildSerializer: (...args: unknown[]): unknown => (serializer ??= fastifyRequire('@fastify/fast-json-stringify-compiler')())(...args),
};
