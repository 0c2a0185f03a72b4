/**
 * The softphone (CONTRACT: `GET /phone`) and the browser SDK it is built on.
 *
 *   phone/index.html, phone/style.css      served as they are
 *   phone/app.ts  ─► esbuild (at mount) ─► /phone/app.js   the page
 *   phone/sdk.ts  ─► esbuild (at mount) ─► /phone/sdk.js   the SDK as an ES module, for other pages/apps
 *
 * Bundled once when the gateway starts (~50 ms; esbuild is a dependency), so
 * there is no build step and no stale asset. Served like the console: a strict
 * Content-Security-Policy (no inline script or style), nosniff, no referrer.
 * Microphone access needs a secure context: localhost, or HTTPS in front.
 */
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const PHONE_DIR = path.join(import.meta.dirname, '..', 'phone');

export const PHONE_CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

async function bundle(entry: string, format: 'iife' | 'esm'): Promise<Buffer> {
  const out = await build({
    entryPoints: [path.join(PHONE_DIR, entry)],
    bundle: true,
    write: false,
    format,
    target: ['es2020'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return Buffer.from(file.contents);
}

export async function mountPhone(app: FastifyInstance): Promise<void> {
  const js = 'text/javascript; charset=utf-8';
  const files: Array<{ routes: string[]; type: string; body: Buffer }> = [
    { routes: ['/phone', '/phone/'], type: 'text/html; charset=utf-8', body: fs.readFileSync(path.join(PHONE_DIR, 'index.html')) },
    { routes: ['/phone/style.css'], type: 'text/css; charset=utf-8', body: fs.readFileSync(path.join(PHONE_DIR, 'style.css')) },
    { routes: ['/phone/app.js'], type: js, body: await bundle('app.ts', 'iife') },
    { routes: ['/phone/sdk.js'], type: js, body: await bundle('sdk.ts', 'esm') },
  ];
  for (const { routes, type, body } of files) {
    const send = async (_req: unknown, reply: FastifyReply) =>
      reply
        .header('Content-Type', type)
        .header('Content-Security-Policy', PHONE_CSP)
        .header('X-Content-Type-Options', 'nosniff')
        .header('Referrer-Policy', 'no-referrer')
        .header('X-Frame-Options', 'DENY')
        .header('Permissions-Policy', 'microphone=(self)')
        .header('Cache-Control', 'no-cache')
        .send(body);
    for (const url of routes) app.get(url, send);
  }
}
