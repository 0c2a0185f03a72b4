/**
 * Per trunk/route rules (route-rules.ts) and early media chosen by them (early-media.ts EarlyMediaRoutes): a single
 * value is `*`, KEY=VALUE rules by number, CIDR or `*`, the most specific match wins, `none` switches a route off,
 * and malformed rules stop the start naming the variable.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EarlyMediaRoutes } from '../../../ingress/sip/early-media.ts';
import { RouteRuleError, RouteRules } from '../../../ingress/sip/route-rules.ts';

const id = (v: string): string => v.trim();

test('route rules: one value = *; KEY=VALUE by number, CIDR or *; matching keeps the written order; most specific wins', () => {
  assert.deepEqual(RouteRules.parse('  ', 'X', id).matching({ source: '10.0.0.1', number: '+1' }), []);
  assert.equal(RouteRules.parse('a', 'X', id).mostSpecific({ source: '10.0.0.1', number: '+1' }), 'a');
  const r = RouteRules.parse('*=any, 10.20.0.0/16=trunk, +15550100=route, 2001:db8::/32=v6', 'X', id);
  assert.deepEqual(r.matching({ source: '10.20.1.1', number: '+15550100' }).map((x) => x.value), ['any', 'trunk', 'route']);
  assert.equal(r.mostSpecific({ source: '10.20.1.1', number: '+15550100' }), 'route');
  assert.equal(r.mostSpecific({ source: '10.20.1.1', number: '+15550199' }), 'trunk');
  assert.equal(r.mostSpecific({ source: '192.0.2.1', number: '+15550199' }), 'any');
  assert.equal(r.mostSpecific({ source: '2001:db8::5', number: '+1' }), 'v6');
  assert.equal(RouteRules.parse('+1=a', 'X', id).mostSpecific({ source: '192.0.2.1', number: '+2' }), undefined);
  for (const bad of ['=a', 'x=a, =b', '10.0.0.0/99=a']) assert.throws(() => RouteRules.parse(bad, 'X', id), (e: Error) => e instanceof RouteRuleError && e.message.startsWith('X'), bad);
});

test('early media routes: a file for every call, or per number/trunk; none switches a route off; each file read once', () => {
  const reads: string[] = [];
  const load = (file: string): Int16Array => {
    reads.push(file);
    return new Int16Array([file.length]);
  };
  assert.equal(EarlyMediaRoutes.parse(undefined, load).forInbound({ source: '10.0.0.1', number: '+1' }), undefined);
  assert.deepEqual([...(EarlyMediaRoutes.parse('/p/all.wav', load).forInbound({ source: '10.0.0.1', number: '+1' }) ?? [])], [10]);
  reads.length = 0;
  const r = EarlyMediaRoutes.parse('*=/p/a.wav, +15550100=none, 10.9.0.0/16=/p/a.wav, +15550101=/p/bb.wav', load);
  assert.deepEqual(reads, ['/p/a.wav', '/p/bb.wav']);
  assert.equal(r.forInbound({ source: '10.0.0.1', number: '+15550100' }), undefined);
  assert.deepEqual([...(r.forInbound({ source: '10.0.0.1', number: '+15550101' }) ?? [])], [9]);
  assert.deepEqual([...(r.forInbound({ source: '10.0.0.1', number: '+15550102' }) ?? [])], [8]);
  assert.throws(() => EarlyMediaRoutes.parse('+1=', load), /SWITCHBOARD_SIP_EARLY_MEDIA/);
  assert.throws(() => EarlyMediaRoutes.parse('=/p/a.wav', load), /SWITCHBOARD_SIP_EARLY_MEDIA: "=\/p\/a.wav" must be KEY=FILE/);
});
