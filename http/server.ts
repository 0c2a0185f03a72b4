/**
 * The gateway's HTTP + WebSocket front door, on fastify. Routes are mounted by
 * the modules that own them (health here; provider ingress, control plane and
 * compliance API in theirs). WebSocket upgrades are dispatched by path to the
 * module that owns them, which verifies the request before accepting. Errors
 * use the contract's shape `{ error: { code, message } }`.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { lazySchemaCompilers } from './schema-compilers.ts';

export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface ApiError {
  error: { code: string; message: string };
}

export function apiError(code: string, message: string): ApiError {
  return { error: { code, message } };
}

/** A refusal with its HTTP status, code and headers; thrown by routes, rendered by the error handler. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class HttpServer {
  readonly app: FastifyInstance;
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private closed = false;

  constructor(private readonly logger: Logger) {
    this.app = Fastify({
      loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 1024 * 1024,
      // ajv and fast-json-stringify only if a route declares a schema (none does): http/schema-compilers.ts.
      schemaController: { compilersFactory: lazySchemaCompilers as never },
    }) as unknown as FastifyInstance;
    // Form bodies are for the provider webhooks (Twilio); the /v1 API refuses them (request-guard.ts).
    void this.app.register(formbody, { bodyLimit: 64 * 1024 });
    void this.app.register(cookie);
    this.app.setNotFoundHandler((req, reply) => {
      void reply.code(404).send(apiError('not_found', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`));
    });
    this.app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      if (err instanceof HttpError) {
        for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
        void reply.code(err.status).send(apiError(err.code, err.message));
        return;
      }
      const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
      if (status >= 500) this.logger.error({ err, method: req.method, url: req.url }, 'request failed');
      const code = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status >= 500 ? 'internal' : (err.code ?? 'bad_request').toLowerCase();
      void reply.code(status).send(apiError(code, status >= 500 ? 'internal error' : err.message));
    });
    this.app.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      // Nothing here may throw: this listener runs outside fastify, so an exception would end the process.
      // (`GET //` or `GET //[` is a request target `new URL` refuses.)
      let path: string;
      try {
        path = new URL(req.url ?? '/', 'http://x').pathname;
      } catch {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const handler = this.upgrades.get(path);
      if (!handler) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      try {
        handler(req, socket, head);
      } catch (err) {
        this.logger.error({ err, path }, 'upgrade handler failed');
        socket.destroy();
      }
    });
  }

  onUpgrade(path: string, handler: UpgradeHandler): void {
    this.upgrades.set(path, handler);
  }

  async listen(port: number, host: string): Promise<{ port: number; host: string }> {
    await this.app.listen({ port, host });
    const addr = this.app.server.address();
    return { port: typeof addr === 'object' && addr ? addr.port : port, host };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.app.server.closeAllConnections();
    await this.app.close();
  }
}

/** Writes a plain HTTP error on a socket whose upgrade is refused, then closes it. */
export function refuseUpgrade(socket: Duplex, status: 401 | 403 | 404 | 400 | 503, message: string): void {
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status];
  const body = JSON.stringify(apiError(reason.toLowerCase().replace(/ /g, '_'), message));
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
