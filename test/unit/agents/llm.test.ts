/**
 * agents/llm.ts against fake-llm (a real HTTP server, real fetch): token
 * streaming, the request it sends (auth, model, options, env defaults), SSE
 * edge cases (bytes split anywhere, CRLF, comments, bad lines), HTTP and
 * network failures with their `retryable` flag, timeouts and aborts, sentence
 * splitting, and speakStream saying sentences in order while the stream is
 * still coming.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { LlmError, chat, sentences, speakStream, sseData, type ChatOptions } from '../../../agents/llm.ts';
import type { SayResult } from '../../../agents/sdk.ts';
import { startFakeLlm, tokenize, type FakeLlm, type FakeLlmOptions } from '../../helpers/fake-llm.ts';

const open: FakeLlm[] = [];
after(async () => {
  for (const f of open) await f.close();
});

async function fake(opts: FakeLlmOptions = {}): Promise<FakeLlm> {
  const f = await startFakeLlm(opts);
  open.push(f);
  return f;
}

const ask = (f: FakeLlm, extra: Partial<ChatOptions> = {}): ChatOptions => ({
  baseUrl: f.url,
  apiKey: f.apiKey,
  model: 'test-model',
  messages: [{ role: 'user', content: 'Hi' }],
  ...extra,
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function failure(p: Promise<unknown>): Promise<LlmError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LlmError, `expected an LlmError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

async function* from<T>(items: T[]): AsyncGenerator<T> {
  for (const x of items) yield x;
}

describe('chat', () => {
  test('streams the token deltas and sends model, messages, options and the bearer key', async () => {
    const text = 'Hello there, caller. The answer is 3.5 percent!';
    const f = await fake({ reply: () => text });
    const tokens = await collect(chat(ask(f, { temperature: 0.2, maxTokens: 50, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Rate?' }] })));
    assert.deepEqual(tokens, tokenize(text));
    assert.ok(tokens.length > 5);
    assert.equal(tokens.join(''), text);
    const [req] = f.requests;
    assert.equal(req?.path, '/v1/chat/completions');
    assert.equal(req?.authorization, `Bearer ${f.apiKey}`);
    assert.equal(req?.stream, true);
    assert.equal(req?.model, 'test-model');
    assert.deepEqual(req?.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Rate?' }]);
    assert.deepEqual(req?.body, { model: 'test-model', messages: req?.messages, stream: true, temperature: 0.2, max_tokens: 50 });
  });

  test('defaults the base URL and key from OPENAI_BASE_URL / OPENAI_API_KEY', async () => {
    const f = await fake({ reply: () => ['Env ', 'works.'], apiKey: 'env-key' });
    const saved = { url: process.env.OPENAI_BASE_URL, key: process.env.OPENAI_API_KEY };
    process.env.OPENAI_BASE_URL = `${f.url}/`;
    process.env.OPENAI_API_KEY = 'env-key';
    try {
      assert.deepEqual(await collect(chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] })), ['Env ', 'works.']);
      assert.equal(f.requests[0]?.authorization, 'Bearer env-key');
    } finally {
      for (const [k, v] of [['OPENAI_BASE_URL', saved.url], ['OPENAI_API_KEY', saved.key]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test('parses a stream whose bytes are split anywhere, with CRLF and comment lines', async () => {
    const text = 'Café — naïve ✓ 日本語. Done!';
    for (const chunkBytes of [7, 13]) {
      const f = await fake({ reply: () => text, wire: { crlf: true, comments: true, chunkBytes } });
      assert.equal((await collect(chat(ask(f)))).join(''), text, `chunkBytes=${chunkBytes}`);
    }
  });

  test('sseData: every split point of a tricky stream gives the same events', async () => {
    const wire = ': hello\r\nevent: message\r\nid: 1\r\ndata: {"a":"é"}\r\n\r\ndata: line1\ndata: line2\n\n\rdata:no-space\r\rretry: 10\ndata: last';
    const bytes = new TextEncoder().encode(wire);
    const expected = ['{"a":"é"}', 'line1\nline2', 'no-space', 'last'];
    for (let i = 0; i <= bytes.length; i++) {
      for (const j of [i, Math.min(bytes.length, i + 1), Math.min(bytes.length, i + 5)]) {
        const parts = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
        assert.deepEqual(await collect(sseData(from(parts))), expected, `split at ${i}/${j}`);
      }
    }
  });

  test('a data line that is not JSON, or a stray line, is a clear non-retryable error', async () => {
    const f = await fake({ raw: ['data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n', 'data: <html>oops</html>\n\n'] });
    const tokens: string[] = [];
    const err = await failure(
      (async () => {
        for await (const t of chat(ask(f))) tokens.push(t);
      })(),
    );
    assert.deepEqual(tokens, ['Hi']);
    assert.match(err.message, /not JSON: <html>oops/);
    assert.equal(err.retryable, false);
    const typed = await fake({ raw: ['data: {"choices":[{"delta":{"content":42}}]}\n\n'] });
    const bad = await failure(collect(chat(ask(typed))));
    assert.match(bad.message, /unexpected stream chunk \(choices\.0\.delta\.content: .+\): \{"choices"/);
    assert.equal(bad.retryable, false);
    const g = await fake({ raw: ['<html>\n', 'Bad Gateway\n'] });
    const stray = await failure(collect(chat(ask(g))));
    assert.match(stray.message, /unexpected line in the event stream: <html>/);
  });

  test('an error event in the stream and a stream cut before [DONE] are retryable errors', async () => {
    const f = await fake({ raw: ['data: {"error":{"message":"The server is overloaded","type":"server_error"}}\n\n'] });
    const err = await failure(collect(chat(ask(f))));
    assert.match(err.message, /The server is overloaded/);
    assert.equal(err.retryable, true);
    const g = await fake({ raw: ['data: {"choices":[{"index":0,"delta":{"content":"Half"},"finish_reason":null}]}\n\n'] });
    const cut = await failure(collect(chat(ask(g))));
    assert.match(cut.message, /ended before \[DONE\]/);
    assert.equal(cut.retryable, true);
    // finish_reason without [DONE] is a complete reply; unknown fields and usage-only chunks are fine.
    const h = await fake({ raw: ['data: {"x":1,"choices":[{"delta":{"content":"Ok","extra":true},"finish_reason":"stop"}]}\n\ndata: {"choices":[],"usage":{"total_tokens":3}}\n\n'] });
    assert.deepEqual(await collect(chat(ask(h))), ['Ok']);
  });

  test('HTTP 500 and 429 are retryable errors carrying the status and the server message', async () => {
    for (const status of [500, 429]) {
      const f = await fake({ status });
      const err = await failure(collect(chat(ask(f))));
      assert.equal(err.status, status);
      assert.equal(err.retryable, true);
      assert.match(err.message, status === 500 ? /HTTP 500: The server had an error/ : /HTTP 429: Rate limit reached/);
    }
  });

  test('a wrong key gives a non-retryable 401 with the server message', async () => {
    const f = await fake();
    const err = await failure(collect(chat(ask(f, { apiKey: 'wrong' }))));
    assert.equal(err.status, 401);
    assert.equal(err.retryable, false);
    assert.match(err.message, /Incorrect API key provided/);
    assert.equal(f.requests[0]?.authorization, 'Bearer wrong');
  });

  test('failFirst: the first request fails, the retry succeeds', async () => {
    const f = await fake({ failFirst: 1, status: 503, reply: () => 'Second time lucky.' });
    const err = await failure(collect(chat(ask(f))));
    assert.equal(err.status, 503);
    assert.equal(err.retryable, true);
    assert.equal((await collect(chat(ask(f)))).join(''), 'Second time lucky.');
    assert.deepEqual(
      f.requests.map((r) => r.status),
      [503, 200],
    );
  });

  test('a refused connection is a retryable network error', async () => {
    const f = await startFakeLlm();
    const url = f.url;
    await f.close();
    const err = await failure(collect(chat({ baseUrl: url, model: 'm', messages: [{ role: 'user', content: 'x' }] })));
    assert.equal(err.status, null);
    assert.equal(err.retryable, true);
    assert.match(err.message, /request failed/);
  });

  test('timeoutMs bounds the whole reply; an abort from the caller passes through as is', async () => {
    const f = await fake({ reply: () => 'one two three four five six seven eight', delayMs: 40 });
    const err = await failure(collect(chat(ask(f, { timeoutMs: 100 }))));
    assert.equal(err.retryable, true);
    assert.match(err.message, /no complete reply within 100 ms/);
    const ac = new AbortController();
    const it = chat(ask(f, { signal: ac.signal }));
    const first = await it.next();
    assert.equal(first.done, false);
    ac.abort(new Error('caller hung up'));
    await assert.rejects(collect(it), (e: unknown) => e instanceof Error && !(e instanceof LlmError) && e.message === 'caller hung up');
  });

  test('a server that ignores stream:true and answers one JSON completion still works', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'Whole reply.' } }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      assert.deepEqual(await collect(chat({ baseUrl: url, model: 'm', messages: [{ role: 'user', content: 'x' }] })), ['Whole reply.']);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('sentences', () => {
  const split = async (tokens: string[]) => collect(sentences(from(tokens)));

  test('splits at . ! ? followed by a space or the end, across token boundaries', async () => {
    assert.deepEqual(await split(['Hello', ' there', '. How', ' are you', '?', ' Great', '!', '  ']), ['Hello there.', 'How are you?', 'Great!']);
    assert.deepEqual(await split(['Wait', '.', '.', '.', ' what?!', ' "Quoted."', ' (Aside.)', ' End']), ['Wait...', 'what?!', '"Quoted."', '(Aside.)', 'End']);
  });

  test('keeps abbreviations, initials, dotted acronyms, decimals and list numbers together', async () => {
    assert.deepEqual(await split(['Dr', '. Smith', ' and Mrs. Jones', ' met J. Doe. ']), ['Dr. Smith and Mrs. Jones met J. Doe.']);
    assert.deepEqual(await split(['Bring ID, e.', 'g. a passport', ', i.e. photo ID. Then go.']), ['Bring ID, e.g. a passport, i.e. photo ID.', 'Then go.']);
    assert.deepEqual(await split(['It costs 3', '.', '5 dollars', '. Version 2.0.1 is out. ']), ['It costs 3.5 dollars.', 'Version 2.0.1 is out.']);
    assert.deepEqual(await split(['1. Open the app. 2. Tap call.']), ['1. Open the app.', '2. Tap call.']);
  });

  test('flushes the rest at the end and skips empty pieces', async () => {
    assert.deepEqual(await split(['No terminator here']), ['No terminator here']);
    assert.deepEqual(await split(['', '  ', '. ', '\n']), ['.']);
    assert.deepEqual(await split([]), []);
  });
});

describe('speakStream', () => {
  test('says each sentence in order, the first before the stream has ended, one say at a time', async () => {
    const text = 'First sentence here. Second one follows! And is there a third? Yes.';
    const f = await fake({ reply: () => text, delayMs: 25 });
    const says: Array<{ text: string; start: number; end: number }> = [];
    let streamEnd = 0;
    async function* timed(): AsyncGenerator<string> {
      yield* chat(ask(f));
      streamEnd = performance.now();
    }
    const ctx = {
      say: async (t: string): Promise<SayResult> => {
        const start = performance.now();
        await new Promise((r) => setTimeout(r, 30));
        says.push({ text: t, start, end: performance.now() });
        return { durationMs: 30, heardMs: 30, interrupted: false };
      },
    };
    const full = await speakStream(ctx, timed());
    assert.equal(full, text);
    assert.deepEqual(
      says.map((s) => s.text),
      ['First sentence here.', 'Second one follows!', 'And is there a third?', 'Yes.'],
    );
    assert.ok(streamEnd > 0);
    assert.ok((says[0]?.start ?? Infinity) < streamEnd, 'the first sentence was said while the stream was still coming');
    for (let i = 1; i < says.length; i++) assert.ok((says[i]?.start ?? 0) >= (says[i - 1]?.end ?? Infinity), 'says do not overlap');
  });

  test('keeps reading the stream while a sentence is being said', async () => {
    let read = 0;
    async function* tokens(): AsyncGenerator<string> {
      for (const t of ['One. ', 'Two. ', 'Three. ', 'Four.']) {
        read += 1;
        yield t;
      }
    }
    const readWhenSaid: number[] = [];
    const ctx = {
      say: async (): Promise<SayResult> => {
        await new Promise((r) => setTimeout(r, 20));
        readWhenSaid.push(read);
        return { durationMs: 20, heardMs: 20, interrupted: false };
      },
    };
    assert.equal(await speakStream(ctx, tokens()), 'One. Two. Three. Four.');
    assert.deepEqual(readWhenSaid, [4, 4, 4, 4], 'the whole stream was read while the first sentence was playing');
  });

  test('a barge-in stops saying and returns what was said', async () => {
    const said: string[] = [];
    const ctx = {
      say: async (t: string): Promise<SayResult> => {
        said.push(t);
        return { durationMs: 10, heardMs: 5, interrupted: said.length === 2 };
      },
    };
    const result = await speakStream(ctx, from(['One. ', 'Two. ', 'Three. ', 'Four.']));
    assert.deepEqual(said, ['One.', 'Two.']);
    assert.equal(result, 'One. Two.');
  });

  test('a stream error is thrown after the sentences already complete were said', async () => {
    const f = await fake({ raw: ['data: {"choices":[{"delta":{"content":"Said anyway. Not "}}]}\n\n', 'data: {"choices":[{"delta":{"content":"this"}}]}\n\n'] });
    const said: string[] = [];
    const ctx = {
      say: async (t: string): Promise<SayResult> => {
        said.push(t);
        return { durationMs: 1, heardMs: 1, interrupted: false };
      },
    };
    const err = await failure(speakStream(ctx, chat(ask(f))));
    assert.match(err.message, /before \[DONE\]/);
    assert.deepEqual(said, ['Said anyway.']);
  });
});
