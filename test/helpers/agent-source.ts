/**
 * A test agent, `concierge`, written as an author would (importing
 * `switchboard/agent`), bundled with esbuild and deployed through the API.
 * It says its version on start and resume and on each key; counts keys in
 * its state; key 9 crashes its worker once, key 8 runs the `charge` HTTP tool
 * and then crashes once (markers on disk, so the retry goes through); key 0
 * transfers the caller to +15559990000; silence gets one re-prompt, then a hang-up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleAgent } from '../../agents/bundle.ts';
import { ADMIN_TOKEN } from './gateway.ts';

export function conciergeSource(version: string, opts: { work: string; toolUrl?: string; initThrows?: boolean }): string {
  return `
import fs from 'node:fs';
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'concierge',
  ${opts.initThrows ? `init() { throw new Error('missing API key for ${version}'); },` : ''}
  tools: { charge: { http: { url: ${JSON.stringify(opts.toolUrl ?? 'http://127.0.0.1:9/none')} } } },
  async onStart(ctx) { await ctx.say('Hello from ${version}.'); },
  async onResume(ctx) { await ctx.say('Back on ${version}.'); },
  async onSilence(ctx, info) {
    const n = (ctx.state.get('silences') ?? 0) + 1;
    ctx.state.set('silences', n);
    if (n >= 2) return ctx.hangup('caller silent');
    await ctx.say('Are you still there?');
  },
  async onDtmf(ctx, digit) {
    if (digit === '0') {
      await ctx.say('Connecting you to a person.');
      return ctx.transfer('+15559990000');
    }
    const keys = (ctx.state.get('keys') ?? 0) + 1;
    ctx.state.set('keys', keys);
    ctx.state.set('last', '${version}');
    if (digit === '8') {
      const r = await ctx.tool('charge', { amount: 5 });
      ctx.state.set('receipt', r.receipt);
    }
    const marker = ${JSON.stringify(opts.work)} + '/crashed-${version}-' + digit;
    if ((digit === '9' || digit === '8') && !fs.existsSync(marker)) {
      fs.writeFileSync(marker, 'x');
      process.exit(1);
    }
    await ctx.say('${version} key ' + keys + '.');
  },
});`;
}

export async function deployConcierge(
  baseUrl: string,
  version: string,
  query: string,
  opts: { work: string; toolUrl?: string; initThrows?: boolean },
): Promise<{ status: number; body: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const file = path.join(opts.work, `${version}.ts`);
  fs.writeFileSync(file, conciergeSource(version, opts));
  const bundle = await bundleAgent(file);
  const res = await fetch(`${baseUrl}/v1/agents/concierge/deploy?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' },
    body: bundle.code,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
}
