/**
 * The gateway's HTTP + WebSocket front door. Routes are registered by the
 * modules that own them (health here; ingress, control plane, compliance API in
 * their issues). Every request is logged once; errors use the contract's shape.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { errorResponse, HttpError, readBody, Router, type Request, type Response } from './http.ts';

export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface HttpServerOptions {
  logger: Logger;
}

export class HttpServer {
  readonly router = new Router();
  readonly server: http.Server;
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private closed = false;

  constructor(private readonly opts: HttpServerOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const handler = this.upgrades.get(path);
      if (!handler) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      try {
        handler(req, socket, head);
      } catch (err) {
        this.opts.logger.error({ err, path }, 'upgrade handler failed');
        socket.destroy();
      }
    });
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }

  onUpgrade(path: string, handler: UpgradeHandler): void {
    this.upgrades.set(path, handler);
  }

  listen(port: number, host: string): Promise<{ port: number; host: string }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve({ port: typeof addr === 'object' && addr ? addr.port : port, host });
      });
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(raw: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(raw.url ?? '/', 'http://x');
    const method = (raw.method ?? 'GET').toUpperCase();
    let response: Response;
    try {
      const found = this.router.match(method, url.pathname);
      if (!found) response = errorResponse(404, 'not_found', `no route ${method} ${url.pathname}`);
      else if ('allowed' in found) {
        response = errorResponse(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`);
        response.headers = { ...response.headers, allow: found.allowed.join(', ') };
      } else {
        const req: Request = {
          method,
          path: url.pathname,
          query: url.searchParams,
          params: found.params,
          headers: raw.headers,
          raw,
          body: (limit = 1024 * 1024) => readBody(raw, limit),
        };
        response = await found.handler(req);
      }
    } catch (err) {
      if (err instanceof HttpError) response = errorResponse(err.status, err.code, err.message);
      else {
        this.opts.logger.error({ err, method, path: url.pathname }, 'request failed');
        response = errorResponse(500, 'internal', 'internal error');
      }
    }
    res.writeHead(response.status, response.headers ?? {});
    res.end(method === 'HEAD' ? undefined : response.body);
    this.opts.logger.debug({ method, path: url.pathname, status: response.status, ms: +(performance.now() - started).toFixed(2) }, 'http');
  }
}
