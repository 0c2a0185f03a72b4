/**
 * Headless Chromium (Debian's, via playwright-core) as a softphone user: a
 * fake microphone playing a WAV made with espeak-ng, the /phone page, and the
 * store-side waits the WebRTC e2e tests share. Run inside `unshare -n`
 * (netns.ts). Flags as in RECIPES.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tmpDir } from './tmp.ts';

import { CHROMIUM, CHROMIUM_ARGS } from './chromium.ts';

export { CHROMIUM };

/** A 48 kHz 16-bit mono WAV: each part is [text | null (silence), seconds of silence after]. */
export function micWav(parts: Array<[string | null, number]>): string {
  const dir = tmpDir('sb-mic-');
  const files: string[] = [];
  for (const [i, [text, after]] of parts.entries()) {
    const out = path.join(dir, `p${i}.wav`);
    if (text === null) {
      execFileSync('sox', ['-n', '-r', '48000', '-b', '16', '-c', '1', out, 'trim', '0', String(after)]);
    } else {
      const raw = path.join(dir, `s${i}.wav`);
      const txt = path.join(dir, `s${i}.txt`);
      fs.writeFileSync(txt, text);
      execFileSync('espeak-ng', ['-w', raw, '-f', txt]);
      execFileSync('sox', ['-D', raw, '-r', '48000', '-b', '16', '-c', '1', out, 'pad', '0', String(after)]);
    }
    files.push(out);
  }
  const wav = path.join(dir, 'mic.wav');
  if (files.length === 1) fs.copyFileSync(files[0] as string, wav);
  else execFileSync('sox', [...files, wav]);
  return wav;
}

/**
 * `privateNamespaceFlags: false` launches Chromium's WebRTC as a user's browser runs it: no loopback candidates
 * of its own, host addresses hidden behind mDNS names (the flags are for a namespace with loopback only).
 */
export async function launchChromium(micFile: string, opts: { privateNamespaceFlags?: boolean } = {}): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run "bash scripts/ensure-deps.sh" or set SWITCHBOARD_CHROMIUM`);
  const nsFlags = opts.privateNamespaceFlags ?? true;
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      ...CHROMIUM_ARGS,
      ...(nsFlags ? ['--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'] : []),
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${micFile}%noloop`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** Opens /phone, collecting page errors and CSP refusals. */
export async function openPhone(browser: Browser, base: string): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ permissions: ['microphone'] });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  const res = await page.goto(`${base}/phone`);
  if (res?.status() !== 200) throw new Error(`/phone answered ${res?.status()}`);
  return { page, problems };
}

/** Peak RMS (0..1) of what the page's <audio id="remote"> receives over `ms`. */
export function remoteLevel(page: Page, ms: number): Promise<number> {
  return page.evaluate(async (ms) => {
    const el = document.getElementById('remote') as HTMLAudioElement;
    const stream = el.srcObject as MediaStream | null;
    if (!stream) return -1;
    const ctx = new AudioContext();
    await ctx.resume();
    const an = ctx.createAnalyser();
    an.fftSize = 2048;
    ctx.createMediaStreamSource(stream).connect(an);
    const buf = new Float32Array(an.fftSize);
    let peak = 0;
    const until = performance.now() + ms;
    while (performance.now() < until) {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      peak = Math.max(peak, Math.sqrt(sum / buf.length));
      await new Promise((r) => setTimeout(r, 50));
    }
    await ctx.close();
    return peak;
  }, ms);
}

export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
