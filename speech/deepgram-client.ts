/** Shared Deepgram SDK setup for the STT and TTS providers. */
import { DeepgramClient, type DeepgramEnvironmentUrls } from '@deepgram/sdk';

export interface DeepgramOptions {
  apiKey: string;
  /** Base URL override (http(s)://host[:port]); default https://api.deepgram.com. */
  url?: string;
}

function environmentFor(url: string): DeepgramEnvironmentUrls {
  const base = url.replace(/\/+$/, '');
  const ws = base.replace(/^http/i, 'ws');
  return { base, production: ws, agent: ws, agentRest: base };
}

export function makeDeepgramClient(o: DeepgramOptions): DeepgramClient {
  return new DeepgramClient({ apiKey: o.apiKey, ...(o.url ? { environment: environmentFor(o.url) } : {}) });
}

/** HTTP statuses a retry cannot fix. */
export function permanentStatus(status: number): boolean {
  return status === 400 || status === 401 || status === 402 || status === 403 || status === 404 || status === 422;
}

