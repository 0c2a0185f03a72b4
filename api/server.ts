/**
 * The HTTP + WebSocket front door lives in http/server.ts, below both api/ and ingress/ (the provider adapters
 * mount on it without importing the API). Re-exported here for the API's modules.
 */
export * from '../http/server.ts';
