/**
 * Example agent: an LLM phone assistant. Each caller utterance goes to an
 * OpenAI-compatible chat API (`agents/llm.ts`: OPENAI_BASE_URL, OPENAI_API_KEY,
 * OPENAI_MODEL — default `gpt-4o-mini`; a llama.cpp, Ollama or vLLM server
 * works the same) and the reply is spoken sentence by sentence while it is
 * still being generated, so the caller hears the first sentence early.
 *
 * It books appointments with two tools the model calls (`chatWithTools`):
 * `find_slot` (the free times on a day) and `book_slot` (books one). Each
 * call is a `ctx.tool` row, so a turn retried after a crash gets the stored
 * results and nothing is booked twice; the demo calendar below lives in the
 * worker's memory — a real one would be an HTTP tool taking the request id as
 * its idempotency key.
 *
 * The conversation is kept in `ctx.state.history` (the last 12 messages), so
 * it survives a restart or a migration to a new version. When the LLM fails
 * the caller hears a short apology and the error goes to the call's record
 * (`ctx.note`).
 *
 * Deploy it with `switchboard deploy agents/examples/assistant.ts`.
 */
import { defineAgent, type AgentContext, type Json } from 'switchboard/agent';
import { chatWithTools, speakStream, type ChatMessage } from 'switchboard/llm';

export const SYSTEM_PROMPT = [
  'You are a friendly assistant answering a phone call.',
  'Your words are spoken aloud: reply in one to three short sentences of plain speech,',
  'with no lists, markdown, emoji, links or spelled-out symbols.',
  'If you are not sure, say so briefly. Ask one question at a time.',
  'You can book appointments: find a free slot with find_slot, and book it with book_slot only once the caller agreed to that time.',
].join(' ');

export const GREETING = 'Hello, this is the Switchboard assistant. How can I help you?';
export const APOLOGY = 'Sorry, I am having trouble answering right now. Could you try again in a moment?';
/** How many user/assistant messages the state keeps. */
export const HISTORY_LIMIT = 12;

/** The demo calendar's opening times, the same every day. */
export const SLOT_TIMES = ['09:00', '10:30', '14:00', '16:30'];
const booked = new Map<string, string>(); // slot → booking reference
const bookings = new Map<string, string>(); // request id → booking reference (a retried booking is the same booking)

export const tools = {
  find_slot: {
    description: 'Lists the free appointment times on a day. Returns { day, free: ["HH:MM", ...] }.',
    parameters: { type: 'object', properties: { day: { type: 'string', description: 'The day, e.g. "tuesday" or "2026-03-02"' } }, required: ['day'] },
    run: (args: Json): Json => {
      const day = String((args as { day?: Json } | null)?.day ?? '').toLowerCase();
      return { day, free: SLOT_TIMES.filter((t) => !booked.has(`${day} ${t}`)) };
    },
  },
  book_slot: {
    description: 'Books a free time on a day for the caller. Returns { booked: true, reference } or { booked: false, reason }.',
    parameters: {
      type: 'object',
      properties: { day: { type: 'string' }, time: { type: 'string', description: 'HH:MM, one of find_slot\'s free times' } },
      required: ['day', 'time'],
    },
    run: (args: Json, tool: { requestId: string }): Json => {
      const a = (args ?? {}) as { day?: Json; time?: Json };
      const slot = `${String(a.day ?? '').toLowerCase()} ${String(a.time ?? '')}`;
      const again = bookings.get(tool.requestId);
      if (again) return { booked: true, reference: again };
      if (!SLOT_TIMES.includes(String(a.time))) return { booked: false, reason: 'no such time' };
      if (booked.has(slot)) return { booked: false, reason: 'taken' };
      const reference = `B-${booked.size + 1}`;
      booked.set(slot, reference);
      bookings.set(tool.requestId, reference);
      return { booked: true, reference };
    },
  },
};

type Turn = { role: 'user' | 'assistant'; content: string };

/** The history from state, dropping anything malformed (state is the author's, but survives versions). */
function history(ctx: AgentContext): Turn[] {
  const raw = ctx.state.get('history');
  if (!Array.isArray(raw)) return [];
  const turns: Turn[] = [];
  for (const item of raw) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) continue;
    const { role, content } = item;
    if ((role === 'user' || role === 'assistant') && typeof content === 'string') turns.push({ role, content });
  }
  return turns;
}

function remember(ctx: AgentContext, turns: Turn[]): void {
  const kept: Json[] = turns.slice(-HISTORY_LIMIT).map((t) => ({ role: t.role, content: t.content }));
  ctx.state.set('history', kept);
}

export default defineAgent({
  name: 'assistant',
  tools,

  async onStart(ctx) {
    remember(ctx, [{ role: 'assistant', content: GREETING }]);
    await ctx.say(GREETING);
  },

  async onUtterance(ctx, utterance) {
    const text = utterance.text?.trim();
    if (!text) {
      await ctx.say('Sorry, I did not catch that. Could you say it again?');
      return;
    }
    ctx.state.set('silences', 0);
    const turns = [...history(ctx), { role: 'user' as const, content: text }];
    remember(ctx, turns); // the question is kept even if the answer fails
    const messages: ChatMessage[] = [{ role: 'system', content: SYSTEM_PROMPT }, ...turns.slice(-HISTORY_LIMIT)];
    try {
      const model = process.env.OPENAI_MODEL || 'gpt-4o-mini';
      const reply = await speakStream(ctx, chatWithTools(ctx, { model, messages, tools, maxToolCalls: 4, temperature: 0.4, maxTokens: 200, timeoutMs: 20_000 }));
      if (reply.trim()) remember(ctx, [...turns, { role: 'assistant', content: reply.trim() }]);
    } catch (err) {
      await ctx.note(`LLM error: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500));
      await ctx.say(APOLOGY);
    }
  },

  async onSilence(ctx) {
    const silences = (ctx.state.get<number>('silences') ?? 0) + 1;
    ctx.state.set('silences', silences);
    if (silences === 1) {
      await ctx.say('Are you still there?');
      return;
    }
    await ctx.say('I will hang up now. Goodbye.');
    await ctx.hangup('caller silent');
  },

  async onResume(ctx) {
    await ctx.say('Sorry, we were cut off. What were you saying?');
  },
});
