/**
 * `/metrics` shows the event loop's health while a call is live (issue 22): an operator sizes SWITCHBOARD_MAX_CALLS
 * from `switchboard_event_loop_delay_seconds`, the media clock's per-tick time (`switchboard_media_tick_seconds`) and
 * its late ticks (`switchboard_media_clock_late_ticks_total`). Two scrapes during one live Twilio call: every series
 * is there, the tick histogram is a consistent histogram, and it counts the ticks that paced the call's frames.
 * (prom-client itself is loaded after the gateway listens: the first scrape may be the one that loads it.)
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15551234987';
const open: Array<{ close(): Promise<void> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

/** One scrape, read as `name{labels}` → value. */
async function scrape(url: string): Promise<(series: string) => number> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return (series) => {
    const v = values.get(series);
    assert.ok(v !== undefined && Number.isFinite(v), `${series} in /metrics`);
    return v;
  };
}

const TICK = 'switchboard_media_tick_seconds';
const BOUNDS = ['0.00025', '0.0005', '0.001', '0.002', '0.005', '0.01', '0.02', '0.04', '0.1', '0.25', '1', '+Inf'];

test('/metrics during a live call: loop delay, per-tick time and late ticks, counting the ticks that pace the call', { timeout: 60_000 }, async () => {
  const gw = await startTestGateway();
  open.push({ close: () => gw.stop() });
  const who = { tenant: 'default', caller: 'test' };
  const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'twilio', consent_policy_id: policy.policy_id }, who));
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550002222', redirectRetryMs: 5000 });
  open.push({ close: () => peer.close() });
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => peer.receivedAudio().length > 0, 10_000, 'first audio');

  const first = await scrape(gw.publicUrl);
  const heardBefore = peer.receivedAudio().length;
  // 25 more 20 ms frames of µ-law (160 bytes each) reach the peer: the clock paced them while the call was live.
  await peer.waitFor(() => peer.receivedAudio().length >= heardBefore + 25 * 160, 15_000, '25 more frames');
  const second = await scrape(gw.publicUrl);

  for (const m of [first, second]) {
    assert.equal(m('switchboard_calls_active'), 1, 'the call is live at both scrapes');
    const p50 = m('switchboard_event_loop_delay_seconds{stat="p50"}');
    const p99 = m('switchboard_event_loop_delay_seconds{stat="p99"}');
    const max = m('switchboard_event_loop_delay_seconds{stat="max"}');
    assert.ok(p50 >= 0 && p50 <= p99 && p99 <= max, `loop delay p50 ${p50} p99 ${p99} max ${max}`);
    // A consistent histogram: cumulative buckets that never fall and end at the count.
    const buckets = BOUNDS.map((le) => m(`${TICK}_bucket{le="${le}"}`));
    for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i] as number) >= (buckets[i - 1] as number), `${TICK} buckets cumulative: ${buckets.join(' ')}`);
    assert.equal(buckets.at(-1), m(`${TICK}_count`));
    const late = m('switchboard_media_clock_late_ticks_total');
    assert.ok(late >= 0 && late <= m(`${TICK}_count`), `late ticks ${late} are some of the ticks`);
    assert.ok(m('switchboard_store_commit_seconds_count') > 0 && m('switchboard_store_commands_total') >= m('switchboard_store_commit_seconds_count'));
  }
  const frames = second('switchboard_media_frames_sent_total') - first('switchboard_media_frames_sent_total');
  const ticks = second(`${TICK}_count`) - first(`${TICK}_count`);
  const slots = second('switchboard_media_clock_slots_total') - first('switchboard_media_clock_slots_total');
  assert.ok(frames >= 25, `frames sent between the scrapes: ${frames}`);
  // One stream sends at most one frame per 20 ms slot (on its own phase: one more than the slots counted at phase 0),
  // and each tick runs at most maxCatchUpFrames (10) slots: the histogram counted the ticks that sent them.
  assert.ok(slots + 1 >= frames, `slots ${slots} vs frames ${frames}`);
  assert.ok(ticks * 10 >= slots && ticks > 0, `ticks ${ticks} ran the ${slots} slots`);
  assert.ok(second(`${TICK}_sum`) > first(`${TICK}_sum`), 'tick time adds up');
  await peer.hangup();
});
