/**
 * The compliance console (CONTRACT: `GET /console`): a dependency-free single
 * page in `console/` (index.html, app.js and its nodes panel nodes.js, agents panel agents.js, approvals panel approvals.js PCI pause button pci.js, campaigns panel campaigns.js, supervisor controls supervise.js, style.css), read once at mount and
 * served with a strict Content-Security-Policy. The page itself carries no
 * data: it signs in through `POST /v1/auth/login` (HttpOnly session cookie)
 * and then talks to the same JSON API and `WS /v1/subscribe` as any client,
 * so every content access it makes is authorized and audited there.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const CONSOLE_DIR = path.join(import.meta.dirname, '..', 'console');

export const CONSOLE_CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

const FILES = [
  { route: ['/console', '/console/'], file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: ['/console/app.js'], file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { route: ['/console/nodes.js'], file: 'nodes.js', type: 'text/javascript; charset=utf-8' },
  { route: ['/console/agents.js'], file: 'agents.js', type: 'text/javascript; charset=utf-8' },
  { route: ['/console/approvals.js'], file: 'approvals.js', type: 'text/javascript; charset=utf-8' },
  { route: ['/console/pci.js'], file: 'pci.js', type: 'text/javascript; charset=utf-8' },
  { route: ['/console/campaigns.js'], file: 'campaigns.js', type: 'text/javascript; charset=utf-8' },
  { route: ['/console/supervise.js'], file: 'supervise.js', type: 'text/javascript; charset=utf-8' },
  { route: ['/console/style.css'], file: 'style.css', type: 'text/css; charset=utf-8' },
] as const;

export function mountConsole(app: FastifyInstance, dir: string = CONSOLE_DIR): void {
  for (const { route, file, type } of FILES) {
    // Read once: a missing file fails the gateway's start, not a user's first visit.
    const body = fs.readFileSync(path.join(dir, file));
    const send = async (_req: unknown, reply: FastifyReply) =>
      reply
        .header('Content-Type', type)
        .header('Content-Security-Policy', CONSOLE_CSP)
        .header('X-Content-Type-Options', 'nosniff')
        .header('Referrer-Policy', 'no-referrer')
        .header('X-Frame-Options', 'DENY')
        .header('Cache-Control', 'no-cache')
        .send(body);
    for (const url of route) app.get(url, send);
  }
}
