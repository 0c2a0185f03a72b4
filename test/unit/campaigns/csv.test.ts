/** A campaign's CSV upload (campaigns/csv.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CsvError, parseCampaignCsv } from '../../../campaigns/csv.ts';

test('number, timezone and name columns in any order and case; quotes; CRLF; BOM; blank lines', () => {
  const csv = '\uFEFFName,TIMEZONE,number,notes\r\n"Doe, Jane",America/New_York,+15550100001,"said ""call later"""\r\n\r\n,,+15550100002,\n';
  assert.deepEqual(parseCampaignCsv(csv), [
    { number: '+15550100001', name: 'Doe, Jane', timezone: 'America/New_York' },
    { number: '+15550100002', name: null, timezone: null },
  ]);
  assert.deepEqual(parseCampaignCsv('number\nsip:a@127.0.0.1:5070'), [{ number: 'sip:a@127.0.0.1:5070', name: null, timezone: null }]);
});

test('problems name the line', () => {
  assert.throws(() => parseCampaignCsv('phone\n+1555'), (e: unknown) => e instanceof CsvError && /line 1: no `number` column/.test(e.message));
  assert.throws(() => parseCampaignCsv('number,name\n+15550100001,a\n,b\n'), /line 3: the number is empty/);
  assert.throws(() => parseCampaignCsv('number\n"+1555'), /not closed/);
  assert.throws(() => parseCampaignCsv(''), /empty/);
  assert.throws(() => parseCampaignCsv('number\n'), /no numbers/);
});
