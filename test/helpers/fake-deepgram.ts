/**
 * fake-deepgram: a TEST DOUBLE for Deepgram's cloud API, which tests cannot reach
 * (offline). It is a loopback HTTP + WebSocket server that speaks the documented wire
 * protocol so the REAL @deepgram/sdk can be pointed at it and exercised end to end
 * (query string, `Authorization: Token <key>`, binary audio frames, JSON control and
 * result messages, close codes, REST errors). It does NOT recognise speech and does
 * NOT synthesise speech:
 * - live `/v1/listen`: the test scripts what the fake "hears" (`fake.script([...])`,
 *   consumed by the next connection); each scripted utterance is emitted as `Results`
 *   (an interim, then `is_final` + `speech_final`; or an interim only, `emit: 'interim'`) once the connection has
 *   received `afterMs` of audio. `CloseStream` → `Metadata` → close 1000. No audio or KeepAlive
 *   for `idleTimeoutMs` → close 1011 (like NET-0001).
 * - `/v1/speak`: a deterministic tone burst per word (≈320 ms a word) as linear16 at the
 *   requested sample_rate, raw (`container=none`) or WAV.
 * Every request is recorded in `requests` for assertions.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

export interface FakeDeepgramWord {
  word: string;
  /** Seconds since the stream start, as on the wire. */
  start: number;
  end: number;
  confidence?: number;
}

export interface FakeDeepgramUtterance {
  /** Emit once the connection has received this much audio (ms at its sample_rate). */
  afterMs: number;
  /** As Deepgram would punctuate it ("Yes, I agree."); lower-cased and stripped when punctuate=false. */
  transcript: string;
  /** Default: one word per transcript token, 300 ms each, ending 200 ms before afterMs. */
  words?: FakeDeepgramWord[];
  confidence?: number;
  /** false: the utterance continues in the next scripted item (is_final without speech_final). */
  speechFinal?: boolean;
  /**
   * 'interim': only an interim result with the whole transcript (is_final false; a final, if any, is another item).
   * Default 'both': an interim of the first half of the words (when interim_results=true), then the final.
   */
  emit?: 'both' | 'interim';
}

export interface FakeDeepgramRequest {
  kind: 'listen' | 'speak' | 'other';
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | null;
  status: number;
  /** listen: audio bytes received and JSON control messages (KeepAlive, CloseStream, …). */
  audioBytes: number;
  controlMessages: string[];
  /** speak: the text asked for. */
  text?: string;
}

export interface FakeDeepgram {
  url: string;
  apiKey: string;
  requests: FakeDeepgramRequest[];
  /** What the next /v1/listen connection will "hear". */
  script(utterances: FakeDeepgramUtterance[]): void;
  /** The next request of this kind fails with `status`. */
  failNext(kind: 'listen' | 'speak', status: number): void;
  close(): Promise<void>;
}

export interface FakeDeepgramOptions {
  apiKey?: string;
  idleTimeoutMs?: number;
}

const SPEAK_RATES = new Set([8000, 16000, 24000, 32000, 48000]);

function errorBody(code: string, msg: string): string {
  return JSON.stringify({ err_code: code, err_msg: msg, request_id: randomUUID() });
}

function rejectUpgrade(socket: Socket, status: number, body: string): void {
  const reason = http.STATUS_CODES[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

/** Deterministic fake speech: one tone burst per word. */
export function fakeSpeechPcm(text: string, rate: number): Int16Array {
  const words = text.split(/\s+/).filter(Boolean);
  const wordLen = Math.round(rate * 0.25);
  const gapLen = Math.round(rate * 0.07);
  const out = new Int16Array(words.length * (wordLen + gapLen));
  const fade = Math.round(rate * 0.01);
  words.forEach((w, k) => {
    const f = 160 + 25 * (w.length % 7);
    const base = k * (wordLen + gapLen);
    for (let i = 0; i < wordLen; i++) {
      const env = Math.min(1, i / fade, (wordLen - 1 - i) / fade);
      out[base + i] = Math.round(8000 * env * Math.sin((2 * Math.PI * f * i) / rate));
    }
  });
  return out;
}

function wavBytes(pcm: Int16Array, rate: number): Buffer {
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

function defaultWords(u: FakeDeepgramUtterance): FakeDeepgramWord[] {
  const tokens = u.transcript.split(/\s+/).filter(Boolean);
  const end = Math.max(0, u.afterMs / 1000 - 0.2);
  const start = Math.max(0, end - 0.3 * tokens.length);
  const step = tokens.length > 0 ? (end - start) / tokens.length : 0;
  return tokens.map((t, i) => ({ word: t, start: start + i * step, end: start + (i + 1) * step }));
}

export async function startFakeDeepgram(opts: FakeDeepgramOptions = {}): Promise<FakeDeepgram> {
  const apiKey = opts.apiKey ?? 'fake-deepgram-key';
  const requests: FakeDeepgramRequest[] = [];
  const scripts: FakeDeepgramUtterance[][] = [];
  const failures: { kind: 'listen' | 'speak'; status: number }[] = [];
  const wss = new WebSocketServer({ noServer: true });

  const takeFailure = (kind: 'listen' | 'speak'): number | undefined => {
    const i = failures.findIndex((f) => f.kind === kind);
    return i < 0 ? undefined : failures.splice(i, 1)[0]?.status;
  };
  const record = (req: http.IncomingMessage, kind: FakeDeepgramRequest['kind']): FakeDeepgramRequest => {
    const u = new URL(req.url ?? '/', 'http://fake');
    const r: FakeDeepgramRequest = {
      kind,
      method: req.method ?? 'GET',
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      authorization: req.headers.authorization ?? null,
      status: 0,
      audioBytes: 0,
      controlMessages: [],
    };
    requests.push(r);
    return r;
  };
  const authorized = (r: FakeDeepgramRequest): boolean => r.authorization === `Token ${apiKey}`;

  const server = http.createServer((req, res) => {
    const r = record(req, req.url?.startsWith('/v1/speak') ? 'speak' : 'other');
    const reply = (status: number, body: string | Buffer, type = 'application/json'): void => {
      r.status = status;
      res.writeHead(status, { 'content-type': type, 'dg-request-id': randomUUID() });
      res.end(body);
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (r.kind !== 'speak' || r.method !== 'POST') return reply(404, errorBody('NOT_FOUND', 'fake-deepgram: no such route'));
      if (!authorized(r)) return reply(401, errorBody('INVALID_AUTH', 'Invalid credentials.'));
      const forced = takeFailure('speak');
      if (forced) return reply(forced, errorBody('FAKE_FAILURE', `fake-deepgram: forced ${forced}`));
      let text: unknown;
      try {
        text = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { text?: unknown }).text;
      } catch {
        return reply(400, errorBody('INVALID_JSON', 'Body is not JSON.'));
      }
      if (typeof text !== 'string' || text.trim() === '') return reply(400, errorBody('INVALID_TEXT', 'text is required.'));
      r.text = text;
      const { encoding = 'linear16', container = 'wav' } = r.query;
      const rate = Number(r.query.sample_rate ?? 24000);
      if (encoding !== 'linear16') return reply(400, errorBody('UNSUPPORTED', 'fake-deepgram serves linear16 only.'));
      if (!SPEAK_RATES.has(rate)) return reply(400, errorBody('INVALID_QUERY_PARAMETER', `sample_rate ${rate} not supported.`));
      const pcm = fakeSpeechPcm(text, rate);
      if (container === 'none') return reply(200, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), 'application/octet-stream');
      if (container === 'wav') return reply(200, wavBytes(pcm, rate), 'audio/wav');
      return reply(400, errorBody('INVALID_QUERY_PARAMETER', `container ${container} not supported.`));
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const r = record(req, 'listen');
    const fail = (status: number, code: string, msg: string): void => {
      r.status = status;
      rejectUpgrade(socket, status, errorBody(code, msg));
    };
    if (r.path !== '/v1/listen') return fail(404, 'NOT_FOUND', 'fake-deepgram: no such route');
    if (!authorized(r)) return fail(401, 'INVALID_AUTH', 'Invalid credentials.');
    const forced = takeFailure('listen');
    if (forced) return fail(forced, 'FAKE_FAILURE', `fake-deepgram: forced ${forced}`);
    const rate = Number(r.query.sample_rate);
    const channels = Number(r.query.channels ?? 1);
    if (r.query.encoding !== 'linear16') return fail(400, 'INVALID_QUERY_PARAMETER', 'fake-deepgram accepts encoding=linear16 only.');
    if (!Number.isInteger(rate) || rate <= 0) return fail(400, 'INVALID_QUERY_PARAMETER', 'sample_rate is required for raw audio.');
    r.status = 101;
    const script = (scripts.shift() ?? []).slice().sort((a, b) => a.afterMs - b.afterMs);
    wss.handleUpgrade(req, socket, head, (ws) => serveListen(ws, r, script, rate, channels, opts.idleTimeoutMs ?? 10_000));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    script: (u) => void scripts.push(u),
    failNext: (kind, status) => void failures.push({ kind, status }),
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serveListen(
  ws: WebSocket,
  r: FakeDeepgramRequest,
  script: FakeDeepgramUtterance[],
  rate: number,
  channels: number,
  idleTimeoutMs: number,
): void {
  const requestId = randomUUID();
  const sha = createHash('sha256');
  const interim = r.query.interim_results === 'true';
  const punctuate = r.query.punctuate === 'true';
  const metadata = { request_id: requestId, model_uuid: randomUUID(), model_info: { name: `fake-${r.query.model ?? 'general'}`, version: '0', arch: 'fake' } };
  let cursor = 0; // seconds: end of the last final window
  let idle: NodeJS.Timeout | undefined;
  const send = (msg: object): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => ws.close(1011, 'NET-0001: no audio or KeepAlive within the timeout window'), idleTimeoutMs);
  };
  const results = (u: FakeDeepgramUtterance, words: FakeDeepgramWord[], isFinal: boolean): void => {
    const conf = u.confidence ?? 0.98;
    const shown = punctuate ? u.transcript : u.transcript.toLowerCase().replace(/[^\p{L}\p{N}' ]+/gu, '');
    const tokens = shown.split(/\s+/).filter(Boolean);
    const end = u.afterMs / 1000;
    send({
      type: 'Results',
      channel_index: [0, channels],
      start: cursor,
      duration: Math.max(0, end - cursor),
      is_final: isFinal,
      speech_final: isFinal && u.speechFinal !== false,
      from_finalize: false,
      channel: {
        alternatives: [
          {
            transcript: (isFinal ? tokens : tokens.slice(0, words.length)).join(' '),
            confidence: conf,
            words: words.map((w, i) => ({
              word: w.word.toLowerCase().replace(/[^\p{L}\p{N}']+/gu, ''),
              start: w.start,
              end: w.end,
              confidence: w.confidence ?? conf,
              punctuated_word: tokens[i] ?? w.word,
            })),
          },
        ],
      },
      metadata,
    });
  };
  const emitDue = (receivedMs: number): void => {
    while (script.length > 0 && (script[0] as FakeDeepgramUtterance).afterMs <= receivedMs) {
      const u = script.shift() as FakeDeepgramUtterance;
      const words = u.words ?? defaultWords(u);
      if (r.query.vad_events === 'true') send({ type: 'SpeechStarted', channel: [0, channels], timestamp: words[0]?.start ?? cursor });
      if (u.emit === 'interim') {
        if (interim) results(u, words, false);
        continue;
      }
      if (interim && words.length > 1) results(u, words.slice(0, Math.ceil(words.length / 2)), false);
      results(u, words, true);
      cursor = u.afterMs / 1000;
      if (r.query.utterance_end_ms) send({ type: 'UtteranceEnd', channel: [0, channels], last_word_end: words.at(-1)?.end ?? cursor });
    }
  };
  armIdle();
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    armIdle();
    if (isBinary) {
      r.audioBytes += buf.length;
      sha.update(buf);
      return emitDue((r.audioBytes / (2 * channels * rate)) * 1000);
    }
    const text = buf.toString('utf8');
    r.controlMessages.push(text);
    let type: unknown;
    try {
      type = (JSON.parse(text) as { type?: unknown }).type;
    } catch {
      return ws.close(1008, 'DATA-0000: invalid JSON control message');
    }
    if (type === 'CloseStream') {
      clearTimeout(idle);
      const duration = r.audioBytes / (2 * channels * rate);
      send({ type: 'Metadata', transaction_key: 'deprecated', request_id: requestId, sha256: sha.digest('hex'), created: new Date().toISOString(), duration, channels });
      ws.close(1000);
    }
  });
  ws.on('close', () => clearTimeout(idle));
}
