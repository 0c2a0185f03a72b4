/**
 * The softphone (CONTRACT: `GET /phone`) and the browser SDK it is built on.
 *
 *   phone/index.html, phone/style.css      served as they are
 *   phone/app.ts  ─► esbuild ─► /phone/app.js   the page
 *   phone/sdk.ts  ─► esbuild ─► /phone/sdk.js   the SDK as an ES module, for other pages/apps
 *
 * The two bundles are built once and cached by the content hash of phone/ (api/phone-assets.ts): `npm run build`
 * prebuilds them into dist/phone/, and a start that finds no match builds them (~50 ms of esbuild) into
 * `DATA_DIR/cache/phone/` for the next start. A changed source has a new hash, so no stale asset is served.
 * Served like the console: a strict Content-Security-Policy (no inline script or style), nosniff, no referrer.
 * Microphone access needs a secure context: localhost, or HTTPS in front.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DIST_PHONE_CACHE, PHONE_DIR, loadPhoneAssets } from './phone-assets.ts';

export { PHONE_DIR };

export const PHONE_CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/** `cacheDir`: where a start that finds no prebuilt bundle keeps the one it builds (the gateway: DATA_DIR/cache/phone). */
export async function mountPhone(app: FastifyInstance, cacheDir?: string): Promise<void> {
  const js = 'text/javascript; charset=utf-8';
  const assets = await loadPhoneAssets({ cacheDirs: cacheDir ? [DIST_PHONE_CACHE, cacheDir] : [DIST_PHONE_CACHE] });
  const files: Array<{ routes: string[]; type: string; body: Buffer }> = [
    { routes: ['/phone', '/phone/'], type: 'text/html; charset=utf-8', body: fs.readFileSync(path.join(PHONE_DIR, 'index.html')) },
    { routes: ['/phone/style.css'], type: 'text/css; charset=utf-8', body: fs.readFileSync(path.join(PHONE_DIR, 'style.css')) },
    { routes: ['/phone/app.js'], type: js, body: assets.app },
    { routes: ['/phone/sdk.js'], type: js, body: assets.sdk },
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
