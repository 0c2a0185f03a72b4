/**
 * Example agent: a scripted receptionist (no LLM). It greets the caller, asks
 * for their name and the reason for the call, files both through its
 * `file_request` tool, reads back the ticket number and hangs up.
 *
 * - Without speech-to-text an utterance's text is null: it says it did not
 *   catch that and asks again; after two misses it offers the keypad
 *   (1 = appointment, 2 = billing) through `ctx.gather`.
 * - `file_request` is an HTTP tool when `RECEPTIONIST_TOOL_URL` is set (the
 *   gateway POSTs the args with an `Idempotency-Key`), else a local tool that
 *   derives a ticket number from the args (so a retried turn gets the same).
 * - Its progress lives in `ctx.state` (step, name, reason, misses, silences,
 *   ticket): after a restart `onResume` apologises and asks the current
 *   question again. Silence: one re-prompt, then a polite goodbye.
 *
 * Deploy it with `switchboard deploy agents/examples/receptionist.ts`.
 */
import { createHash } from 'node:crypto';
import { defineAgent, type AgentContext, type Json, type ToolDefinition, type HttpToolDefinition } from 'switchboard/agent';

type Step = 'name' | 'reason' | 'done';

const GREETING = 'Hello, thank you for calling.';
const MENU = 'Please press 1 for an appointment, or 2 for billing.';
const REASONS: Record<string, string> = { '1': 'appointment', '2': 'billing' };
/** Own keys only: keys pressed are looked up, and an object's inherited members are no menu entries. */
const reasonFor = (digits: string): string | undefined => (Object.hasOwn(REASONS, digits) ? REASONS[digits] : undefined);

function question(ctx: AgentContext): string {
  const step = ctx.state.get<string>('step');
  const name = ctx.state.get<string>('name');
  if (step === 'reason') return name ? `What are you calling about, ${name}?` : 'What are you calling about?';
  return 'May I have your name, please?';
}

/** "my name is Ada Lovelace." → "Ada Lovelace" */
export function cleanName(text: string): string {
  const name = text
    .trim()
    .replace(/^(hi|hello|hey)[,!.]?\s+/i, '')
    .replace(/^(my name is|my name's|this is|it's|it is|i am|i'm)\s+/i, '')
    .replace(/[.!?,]+$/, '')
    .trim();
  return name.slice(0, 60);
}

/** Spoken digit by digit, so TTS does not read "T-482913" as a large number. */
const spell = (ticket: string): string => ticket.replace(/^T-/, '').split('').join(' ');

async function fileRequest(ctx: AgentContext): Promise<void> {
  const name = ctx.state.get<string>('name') ?? 'unknown caller';
  const reason = ctx.state.get<string>('reason') ?? 'callback';
  ctx.state.set('step', 'done');
  let ticket: string | null = null;
  try {
    const result = await ctx.tool('file_request', { name, reason, from: ctx.call.from });
    const t = result !== null && typeof result === 'object' && !Array.isArray(result) ? result.ticket : undefined;
    if (typeof t === 'string' && t) ticket = t;
    else await ctx.note(`file_request returned no ticket: ${JSON.stringify(result).slice(0, 200)}`);
  } catch (err) {
    await ctx.note(`file_request failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (ticket) {
    ctx.state.set('ticket', ticket);
    await ctx.say(`Thank you, ${name === 'unknown caller' ? 'caller' : name}. Your request is filed under ticket number ${spell(ticket)}. Someone will be in touch soon.`);
  } else {
    await ctx.say('Sorry, I could not file your request just now. Someone from our team will call you back.');
  }
  await ctx.say('Goodbye, and have a nice day.');
  await ctx.hangup(ticket ? 'request filed' : 'request not filed');
}

/** Offers the keypad menu (after two misses) and files with the chosen reason. */
async function keypad(ctx: AgentContext): Promise<void> {
  const got = await ctx.gather({ prompt: `Let's use the keypad instead. ${MENU}`, dtmf: { maxDigits: 1 }, timeoutMs: 8000 });
  const reason = got.kind === 'dtmf' ? reasonFor(got.digits) : undefined;
  if (!reason) await ctx.note(`keypad menu: ${got.kind === 'dtmf' ? `unexpected digits ${got.digits}` : got.kind}; filing a callback`);
  ctx.state.set('reason', reason ?? 'callback');
  await fileRequest(ctx);
}

/** A local stand-in for a ticketing system: the ticket number is derived from the args. */
const localTool: ToolDefinition = {
  description: 'Files a caller request; returns { ticket }',
  run: (args: Json) => {
    const digest = createHash('sha256').update(JSON.stringify(args)).digest();
    return { ticket: `T-${String(digest.readUInt32BE(0) % 1_000_000).padStart(6, '0')}` };
  },
};

/** The receptionist with `file_request` posting to `toolUrl` when given, else the local tool. */
export function makeReceptionist(toolUrl?: string) {
  const fileTool: ToolDefinition | HttpToolDefinition = toolUrl
    ? { description: 'Files a caller request; returns { ticket }', http: { url: toolUrl, timeoutMs: 5000 } }
    : localTool;
  return defineAgent({
    name: 'receptionist',
    tools: { file_request: fileTool },

    async onStart(ctx) {
      ctx.state.set('step', 'name');
      await ctx.say(`${GREETING} ${question(ctx)}`);
    },

    async onUtterance(ctx, utterance) {
      const step = (ctx.state.get<string>('step') ?? 'name') as Step;
      if (step === 'done') {
        await ctx.say('Your request is already filed. Goodbye.');
        await ctx.hangup('request filed');
        return;
      }
      ctx.state.set('silences', 0);
      const text = utterance.text?.trim() ?? '';
      if (!text) {
        const misses = (ctx.state.get<number>('misses') ?? 0) + 1;
        ctx.state.set('misses', misses);
        if (misses < 2) {
          await ctx.say(`Sorry, I did not catch that. ${question(ctx)}`);
          return;
        }
        // Speech is not getting through: go without the name and ask for the reason by keypad.
        if (step === 'name') ctx.state.set('name', 'unknown caller');
        await keypad(ctx);
        return;
      }
      ctx.state.set('misses', 0);
      if (step === 'name') {
        const name = cleanName(text) || text.slice(0, 60);
        ctx.state.set('name', name);
        ctx.state.set('step', 'reason');
        await ctx.say(`Thank you, ${name}. What are you calling about?`);
        return;
      }
      ctx.state.set('reason', text.slice(0, 500));
      await fileRequest(ctx);
    },

    async onDtmf(ctx, digit) {
      // Keys pressed outside a gather: accept the menu's digits while asking for the reason.
      const reason = reasonFor(digit);
      const step = ctx.state.get<string>('step');
      if (step === 'done') return;
      if (step !== 'reason' || !reason) {
        await ctx.say(step === 'reason' ? `${MENU} Or just tell me.` : question(ctx));
        return;
      }
      ctx.state.set('reason', reason);
      await fileRequest(ctx);
    },

    async onSilence(ctx) {
      const silences = (ctx.state.get<number>('silences') ?? 0) + 1;
      ctx.state.set('silences', silences);
      if (silences === 1 && ctx.state.get<string>('step') !== 'done') {
        await ctx.say(`Are you still there? ${question(ctx)}`);
        return;
      }
      await ctx.say('I will let you go now. Please call again any time. Goodbye.');
      await ctx.hangup('caller silent');
    },

    async onResume(ctx) {
      const step = ctx.state.get<string>('step');
      if (step === 'done') {
        const ticket = ctx.state.get<string>('ticket');
        await ctx.say(ticket ? `Sorry, we were cut off. Your ticket number is ${spell(ticket)}. Goodbye.` : 'Sorry, we were cut off. Goodbye.');
        await ctx.hangup('request filed');
        return;
      }
      if (!step) ctx.state.set('step', 'name');
      await ctx.say(`Sorry, we were cut off. ${question(ctx)}`);
    },
  });
}

export default makeReceptionist(process.env.RECEPTIONIST_TOOL_URL || undefined);
