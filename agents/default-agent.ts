/**
 * The built-in `default` agent: greets, answers each caller turn, says which
 * key was pressed, and on a resumed call apologises and continues from the
 * turn it was on. Its phrases are few so TTS caching makes it cheap at scale.
 */
import { LocalAgent } from './local.ts';
import { defineAgent } from './sdk.ts';

const REPLIES = [
  'Thank you. Please go on.',
  'I see. Is there anything else?',
  'Understood. Tell me more.',
  'Got it. What else can I help with?',
];

export const GREETING = 'Hello, you have reached Switchboard. How can I help you today?';

export const digitWord = (digit: string): string => (digit === '*' ? 'star' : digit === '#' ? 'pound' : digit);

export const defaultDefinition = defineAgent({
  name: 'default',
  async onStart(ctx) {
    await ctx.say(GREETING);
  },
  async onUtterance(ctx) {
    const heard = ctx.state.get<number>('heard') ?? 0;
    ctx.state.set('heard', heard + 1);
    await ctx.say(REPLIES[heard % REPLIES.length] ?? 'Please go on.');
  },
  async onDtmf(ctx, digit) {
    await ctx.say(`You pressed ${digitWord(digit)}.`);
  },
  async onResume(ctx) {
    await ctx.say('Sorry, we were cut off. Please go on where you left off.');
  },
});

export const defaultAgent = new LocalAgent(defaultDefinition, 'builtin-1');
