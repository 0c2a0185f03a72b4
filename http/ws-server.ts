/**
 * A `noServer` WebSocket server whose package (ws) is imported by the first upgrade, not at start: a restart
 * answers `/healthz` and the provider webhooks without it, and the adapters' `warm()` (ingress/port.ts) brings it in
 * the background once the gateway listens, so a resumed call's media socket rarely waits for it.
 *
 *   upgrade ─► ws loaded? ─yes─► WebSocketServer.handleUpgrade ─► onSocket(ws)
 *                          └no──► await loadWs() ─► (socket still open?) handleUpgrade …   (failed: onError)
 *
 * One import for the process (`loadWs`); one WebSocketServer per instance, made when the package is in.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerOptions, WebSocket, WebSocketServer } from 'ws';

type WsModule = typeof import('ws');

let loading: Promise<WsModule> | null = null;
let loaded: WsModule | null = null;

/** Imports ws once (later calls share the promise); a failed import is retried by the next call. */
export function loadWs(): Promise<WsModule> {
  loading ??= import('ws').then(
    (m) => (loaded = m),
    (err: unknown) => {
      loading = null;
      throw err;
    },
  );
  return loading;
}

export class LazyWebSocketServer {
  private server: WebSocketServer | null = null;
  private closed = false;

  constructor(private readonly options: Omit<ServerOptions, 'noServer' | 'server' | 'port'>) {}

  /** The open sockets (none before the package is in). */
  get clients(): ReadonlySet<WebSocket> {
    return this.server?.clients ?? new Set();
  }

  /**
   * Completes the upgrade of `socket` into a WebSocket handed to `onSocket`, at once when ws is in, else once it
   * is (a socket closed meanwhile, or a server closed meanwhile, is left alone). `onError`: the import failed.
   */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, onSocket: (ws: WebSocket) => void, onError: (err: unknown) => void): void {
    const now = this.serverNow();
    if (now) return now.handleUpgrade(req, socket, head, onSocket);
    loadWs().then(
      () => {
        const server = this.serverNow();
        if (!server || socket.destroyed) return void (this.closed && !socket.destroyed && socket.destroy());
        server.handleUpgrade(req, socket, head, onSocket);
      },
      (err: unknown) => onError(err),
    );
  }

  close(): void {
    this.closed = true;
    this.server?.close();
  }

  private serverNow(): WebSocketServer | null {
    if (this.closed || !loaded) return null;
    this.server ??= new loaded.WebSocketServer({ ...this.options, noServer: true });
    return this.server;
  }
}
