/**
 * A finished call written through the reducers (no media): tenant, consent
 * granted, a finalized encrypted recording in an FsBlobStore, transcript
 * segments both ways, agent actions, call ended. Retrieval tests (API,
 * evidence pack) build on it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { encryptRecording, masterKeyFromBytes, type MasterKey } from '../../recording/crypto.ts';
import { muLawWavHeader } from '../../recording/wav.ts';
import type { Store } from '../../store/index.ts';
import type { SwitchboardTables } from '../../schema/index.ts';
import { resultOf } from './store.ts';
import { agent_action_completed, agent_action_requested, agent_turn_started, call_answered, call_ended, call_received, consent_decided, consent_started, recording_finalized, recording_started, tenant_created, transcript_appended } from '../../schema/reducers.ts';

export interface FinishedCall {
  tenant: string;
  callId: string;
  consentId: string;
  recordingId: string;
  /** The recording's plaintext (a µ-law stereo WAV) whose sha256 the row holds. */
  wav: Buffer;
  transcript: Array<{ channel: 'caller' | 'agent'; start_ms: number; end_ms: number; text: string }>;
}

export const TEST_MASTER: MasterKey = masterKeyFromBytes(Buffer.alloc(32, 7));

/** Creates `tenant` when missing (submitted as that tenant, as the reducer requires). */
export async function ensureTenant(store: Store<SwitchboardTables>, tenant: string): Promise<void> {
  if (store.read(null).tenants.get(tenant)) return;
  resultOf(await store.submit(tenant_created, { id: tenant, name: `Tenant ${tenant}` }, { tenant, caller: 'system:test' }));
}

export async function finishedCall(
  store: Store<SwitchboardTables>,
  blobs: FsBlobStore,
  opts: {
    tenant?: string;
    from?: string;
    to?: string;
    agent?: string;
    master?: MasterKey;
    seconds?: number;
    transcript?: FinishedCall['transcript'];
  } = {},
): Promise<FinishedCall> {
  const tenant = opts.tenant ?? 'acme';
  const as = { tenant, caller: 'system:test' };
  await ensureTenant(store, tenant);
  const policy = store.read(tenant).consent_policies.findOne({ name: 'default' });
  if (!policy) throw new Error('tenant has no default policy');
  const sid = `CA${randomBytes(8).toString('hex')}`;
  const { call_id: callId } = resultOf<{ call_id: string }>(
    await store.submit(call_received, { provider: 'twilio', provider_call_id: sid, from: opts.from ?? '+15550001111', to: opts.to ?? '+15550002222', agent: opts.agent ?? 'receptionist' }, as),
  );
  resultOf(await store.submit(call_answered, { call_id: callId }, as));
  const { consent_id: consentId } = resultOf<{ consent_id: string }>(await store.submit(consent_started, { call_id: callId, policy_id: policy.id, disclosure_sha256: 'ab'.repeat(32) }, as));
  resultOf(await store.submit(consent_decided, { consent_id: consentId, outcome: 'granted', method: 'dtmf', evidence: { digit: '1', at_ms: 2100 } }, as));
  const { recording_id: recordingId } = resultOf<{ recording_id: string }>(await store.submit(recording_started, { call_id: callId }, as));
  const transcript = opts.transcript ?? [
    { channel: 'agent' as const, start_ms: 0, end_ms: 1800, text: 'Thank you for calling, how can I help?' },
    { channel: 'caller' as const, start_ms: 2000, end_ms: 4200, text: 'I would like to change my appointment' },
    { channel: 'agent' as const, start_ms: 4500, end_ms: 6000, text: 'Certainly, which day suits you?' },
  ];
  for (const seg of transcript) resultOf(await store.submit(transcript_appended, { call_id: callId, ...seg, confidence: 0.9, provider: 'test' }, as));
  resultOf(await store.submit(agent_turn_started, { call_id: callId, agent: opts.agent ?? 'receptionist', version: 'v1', turn: 1, kind: 'utterance' }, as));
  const { action_id } = resultOf<{ action_id: string }>(
    await store.submit(agent_action_requested, { call_id: callId, kind: 'tool', request_id: `${callId}:1:file`, args: { name: 'file_reason', reason: 'appointment' } }, as),
  );
  resultOf(await store.submit(agent_action_completed, { action_id, ok: true, result: { ticket: 'T-1' } }, as));
  // A stereo µ-law WAV of `seconds` of a quiet pattern: real bytes, real sha256.
  const frames = 8000 * (opts.seconds ?? 2);
  const body = Buffer.alloc(frames * 2);
  for (let i = 0; i < body.length; i++) body[i] = 0xff - (i % 7);
  const wav = Buffer.concat([muLawWavHeader(frames, 2, 8000), body]);
  const master = opts.master ?? TEST_MASTER;
  const uri = await blobs.put(`${tenant}/${recordingId}.wav.sbrec`, encryptRecording(wav, master));
  resultOf(
    await store.submit(
      recording_finalized,
      {
        recording_id: recordingId,
        uri,
        bytes: wav.length,
        sha256: createHash('sha256').update(wav).digest('hex'),
        key_id: master.keyId,
        format: 'wav',
        duration_ms: (opts.seconds ?? 2) * 1000,
        segments: [{ index: 0, start_ms: 0, end_ms: (opts.seconds ?? 2) * 1000 }],
        gaps: [],
        pauses: [],
      },
      as,
    ),
  );
  resultOf(await store.submit(call_ended, { call_id: callId, reason: 'caller_hangup' }, as));
  return { tenant, callId, consentId, recordingId, wav, transcript };
}
