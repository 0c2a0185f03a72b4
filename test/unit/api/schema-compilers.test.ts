/**
 * The gateway's fastify is given its own schema compiler factories (http/schema-compilers.ts) so a start does not
 * load ajv and fast-json-stringify; a route that declares a schema must still validate and serialize exactly as
 * fastify's defaults do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { lazySchemaCompilers } from '../../../http/schema-compilers.ts';

const schema = {
  body: { type: 'object', required: ['a'], properties: { a: { type: 'number' } } },
  response: { 200: { type: 'object', properties: { b: { type: 'number' } } } },
};

async function answers(app: FastifyInstance): Promise<Array<{ status: number; body: string }>> {
  app.post('/x', { schema }, async (req: FastifyRequest) => ({ b: (req.body as { a: number }).a + 1, extra: 'dropped by the serializer' }));
  const out = [];
  for (const payload of [{ a: 1 }, { a: '2' }, { z: 1 }]) {
    const res = await app.inject({ method: 'POST', url: '/x', payload });
    out.push({ status: res.statusCode, body: res.body });
  }
  await app.close();
  return out;
}

test('a route with a schema validates (with coercion) and serializes as with fastify\'s own compilers', async () => {
  const lazy = await answers(Fastify({ schemaController: { compilersFactory: lazySchemaCompilers as never } }));
  const stock = await answers(Fastify());
  assert.deepEqual(lazy, stock);
  assert.deepEqual(lazy.map((r) => r.status), [200, 200, 400]);
  assert.equal(lazy[0]?.body, '{"b":2}');
});
