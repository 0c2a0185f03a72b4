/**
 * The built-in `default` agent: greets, answers each caller turn, says which
 * key was pressed, and on a resumed call apologises and continues from the
 * turn it was on. Its phrases are few so TTS caching makes it cheap at scale.
 */
import type { Agent } from './types.ts';

const REPLIES = [
  'Thank you. Please go on.',
  'I see. Is there anything else?',
  'Understood. Tell me more.',
  'Got it. What else can I help with?',
];

export const defaultAgent: Agent = {
  name: 'default',
  version: 'builtin-1',
  async onStart(ctx) {
    await ctx.say('Hello, you have reached Switchboard. How can I help you today?');
  },
  async onUtterance(ctx) {
    const heard = typeof ctx.state.heard === 'number' ? ctx.state.heard : 0;
    ctx.state.heard = heard + 1;
    await ctx.say(REPLIES[heard % REPLIES.length] ?? 'Please go on.');
  },
  async onDtmf(ctx, digit) {
    await ctx.say(`You pressed ${digit === '*' ? 'star' : digit === '#' ? 'pound' : digit}.`);
  },
  async onResume(ctx) {
    await ctx.say('Sorry, we were cut off. Please go on where you left off.');
  },
};
