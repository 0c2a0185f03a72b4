/**
 * tel:/E.164 targets on a SIP trunk (ingress/sip/trunk-routes.ts): the number's form, the trunk chosen per
 * from-number (else the tenant's catch-all), the Request-URI built from it, and a bad trunk entry stopping the start
 * with the field named.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IngressConfigError } from '../../../ingress/port.ts';
import { sipTrunks, telTarget, trunkFor, trunkUri } from '../../../ingress/sip/trunk-routes.ts';

test('telTarget: E.164 and tel: forms (visual separators dropped); anything else null', () => {
  assert.equal(telTarget('+15551234567'), '+15551234567');
  assert.equal(telTarget('tel:+1-555-123-4567'), '+15551234567');
  assert.equal(telTarget('+1 (555) 123-4567'), '+15551234567');
  assert.equal(telTarget('sip:+15551234567@pbx.example.com'), null);
  assert.equal(telTarget('5551234567'), null);
  assert.equal(telTarget('+0551234567'), null);
});

test('trunkFor: the entry naming the from-number, else the tenant\'s catch-all; another tenant\'s never', () => {
  const trunks = sipTrunks(
    {
      apiBase: null,
      accounts: [
        { tenant: 'acme', numbers: null, credentials: { trunk: '10.0.0.9' } },
        { tenant: 'acme', numbers: ['+15550001111'], credentials: { trunk: 'carrier.example:5080', transport: 'tcp' } },
        { tenant: 'other', numbers: null, credentials: { trunk: 'other.example' } },
      ],
    },
    'sip',
  );
  assert.equal(trunkFor(trunks, 'acme', '+15550001111')?.host, 'carrier.example');
  assert.equal(trunkFor(trunks, 'acme', '+15550002222')?.host, '10.0.0.9');
  assert.equal(trunkFor(trunks, 'nobody', '+15550002222'), undefined);
  assert.equal(trunkUri('+15551234567', trunkFor(trunks, 'acme', '+15550001111')!), 'sip:+15551234567@carrier.example:5080;transport=tcp');
  assert.equal(trunkUri('+15551234567', trunkFor(trunks, 'acme', '+15550002222')!), 'sip:+15551234567@10.0.0.9');
});

test('a bad trunk entry stops the start naming the variable, the entry and the field', () => {
  assert.throws(
    () => sipTrunks({ apiBase: null, accounts: [{ tenant: 'acme', numbers: null, credentials: { trunk: 'not a host!' } }] }, 'sip'),
    (err: unknown) => err instanceof IngressConfigError && /SWITCHBOARD_PROVIDER_ACCOUNTS: sip\.accounts\.0 \(tenant acme\): credentials\.trunk: /.test(err.message),
  );
  assert.throws(() => sipTrunks({ apiBase: null, accounts: [{ tenant: 'acme', numbers: null, credentials: { trunk: 'a.example', transport: 'sctp' } }] }, 'sip'), /credentials\.transport/);
  assert.throws(() => sipTrunks({ apiBase: null, accounts: [{ tenant: 'acme', numbers: null, credentials: { trunk: 'a.example', password: 'x' } }] }, 'sip'), IngressConfigError);
});
