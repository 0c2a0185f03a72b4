/**
 * The actions of one agent turn, as the bridge carries them out: each is an
 * `agent_actions` row whose request id is stable across retries, so a turn
 * re-run after a worker crash or restart finds what it already did — a `say`
 * already heard is not played again, a tool already executed returns its
 * stored result (request id from call, turn, tool and args).
 *
 *   say/play   row 'say' ─► TTS/WAV ─► pipeline.play ─► completed {heard_ms…}
 *   tool       row 'tool' ─► stored? return it : the tool gate (consent, approval: tool-gate.ts) ─► agent.runTool
 *              ─► completed (a refusal: failed {refused}, and a ToolRefusedError to the agent)
 *   note       row 'note', completed at once
 *   trace      (no row) an LLM request the agent's runtime timed: an `llm` span under the turn's `agent` span
 *   hangup     row 'hangup' ─► call_ended
 *   transfer   row 'transfer' ─► the leg's transfer, or a failed row and an error
 *              warm ({ mode: 'warm' }): row 'transfer' {target, mode, timeout_ms} ─► bridge/transfer-warm.ts ─►
 *              completed {outcome: bridged} | failed {outcome: failed, reason} (then onTransferFailed runs)
 *   gather     row 'note' {gather} ─► prompt ─► next DTMF digits / utterance / timeout ─► completed
 *              with the kind and the number of digits, never the digits (they may be card numbers)
 *   pause/resume recording (ctx.secure, ctx.pauseRecording('pci')) ─► the call's PCI pause (bridge/pci-pause.ts),
 *              whose rows are `recording_pauses`; while it is on, a say row's text is masked (speech/redact.ts)
 *   sensitive tool ({ sensitive: true }) ─► the row holds `args_hmac` (keyed by the call's key), never the args;
 *              an approval request shows that digest too. The tool gets the args in memory; its result is stored
 *              (a tokenising tool returns a token, not the card)
 */
import { digestKeyOn, openOn } from '../recording/content-seal.ts';
import type { Logger } from 'pino';
import { runHttpTool, toolRequestId } from '../agents/tools.ts';
import { isToolRefusal, ToolRefusedError, type HttpToolDefinition, type ToolRefusal } from '../agents/sdk.ts';
import { authorizeTool, DEFAULT_TOOL_APPROVAL, type ToolApprovalSettings, type ToolGateHost } from './tool-gate.ts';
import type { Agent, GatherOptions, GatherResult, Json, SayResult, TurnActions } from '../agents/types.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { decodeWav } from '../speech/wav.ts';
import { allKinds, redact } from '../speech/redact.ts';
import { sensitiveArgs } from '../agents/tools.ts';
import { agent_action_completed, agent_action_requested } from '../schema/reducers.ts';
import type { TraceSpan } from '../telemetry/tracing.ts';

/** The turn's spans (telemetry/tracing.ts): tts and tool spans hang under them; first_audio ends at the first audio. */
export interface TurnSpans {
  turn: TraceSpan;
  agent: TraceSpan;
  firstAudio: TraceSpan;
}

export interface TurnHost {
  /** Tracing; absent in tests that do not trace. */
  spans?: TurnSpans;
  readonly store: Store<SwitchboardTables>;
  readonly callId: string;
  readonly log: Logger;
  who(): { tenant: string; caller: string };
  /** Plays samples (output rate) and reports what was heard. */
  playSamples(samples: Int16Array): Promise<SayResult>;
  synthesize(text: string): Promise<Int16Array>;
  outputRate: number;
  /** Recording-clock ms now (transcript timing). */
  clockMs(): number;
  agentTranscript(startMs: number, heardMs: number, text: string): void;
  hangup(reason: string): Promise<void>;
  transfer?(target: string): Promise<void>;
  /** A warm transfer (bridge/transfer-warm.ts); absent: this call cannot make one. */
  warmTransfer?(target: string, opts: { summary?: string; timeoutMs?: number }): Promise<{ ok: true } | { ok: false; reason: string }>;
  gather(opts: GatherOptions): Promise<GatherResult>;
  /** HTTP tools declared in the gateway's configuration for this agent (they take precedence). */
  configTools?: Readonly<Record<string, HttpToolDefinition>>;
  /** Approval tools' timeout and filler (default DEFAULT_TOOL_APPROVAL). */
  toolApproval?: ToolApprovalSettings;
  /** Aborted when the call's media closes (a pending approval is cancelled). */
  closed?: AbortSignal;
  /** The call's PCI pause (bridge/pci-pause.ts); absent: the leg cannot pause (the actions fail). */
  pci?: { pause(reason: string): Promise<void>; resume(): Promise<void>; readonly active: boolean };
}

/** A tool call retried after it failed: a refusal stays a refusal the agent can speak about. */
function earlierFailure(name: string, result: Json): Error {
  const r = (result ?? {}) as { error?: string; refused?: ToolRefusal; reason?: string | null };
  if (r.refused) return new ToolRefusedError(r.refused, r.reason ?? null, r.error ?? `tool ${name} was refused`);
  return new ActionError(`tool ${name} failed: ${JSON.stringify(result)}`);
}

type Row = { action_id: string; status: string; result: Json; existing?: boolean };

export class ActionError extends Error {}

export function turnActions(host: TurnHost, agent: Agent, turn: number, hook: string): TurnActions {
  const counters = new Map<string, number>();
  const nextId = (kind: string): string => {
    const n = (counters.get(kind) ?? 0) + 1;
    counters.set(kind, n);
    return `t${turn}:${hook}:${kind}:${n}`;
  };
  const request = async (kind: 'say' | 'tool' | 'transfer' | 'hangup' | 'note', requestId: string, args: Json): Promise<Row> => {
    const r = await host.store.submit(agent_action_requested, { call_id: host.callId, kind, request_id: requestId, args }, host.who());
    if (!r.outcome.ok) throw new ActionError(`${kind} refused: ${r.outcome.error.code}: ${r.outcome.error.message}`);
    const row = r.outcome.result as Row;
    // an earlier attempt's stored result is sealed with the call's key (recording/content-seal.ts)
    return row.existing ? { ...row, result: (await openOn(host.store, host.who().tenant, host.callId, 'result', row.result)) as Json } : row;
  };
  const complete = async (actionId: string, ok: boolean, result: Json): Promise<void> => {
    const r = await host.store.submit(agent_action_completed, { action_id: actionId, ok, result }, host.who());
    if (!r.outcome.ok && r.outcome.error.code !== 'action_completed') host.log.warn({ outcome: r.outcome }, 'agent action not completed');
  };
  const heard = (result: Json): SayResult => {
    const r = (result ?? {}) as { duration_ms?: number; heard_ms?: number; interrupted?: boolean };
    return { durationMs: r.duration_ms ?? 0, heardMs: r.heard_ms ?? 0, interrupted: r.interrupted ?? false };
  };
  let audioStarted = false;
  /** The turn's first audio goes to the pacer: its first_audio span ends. */
  const firstAudio = (): void => {
    if (audioStarted) return;
    audioStarted = true;
    host.spans?.firstAudio.end();
  };
  const speak = async (requestId: string, args: Json, samples: () => Promise<Int16Array>, text: string | null): Promise<SayResult> => {
    const row = await request('say', requestId, args);
    // Already heard in an earlier attempt of this turn: do not say it twice.
    if (row.existing && row.status === 'succeeded') return heard(row.result);
    const startMs = host.clockMs();
    let result: SayResult;
    try {
      const tts = text !== null ? host.spans?.turn.child('tts', { 'switchboard.chars': text.length }) : undefined;
      const audio = await samples().catch((err: unknown) => {
        tts?.end(undefined, 'synthesis failed');
        throw err;
      });
      tts?.end();
      firstAudio();
      result = await host.playSamples(audio);
    } catch (err) {
      await complete(row.action_id, false, { error: String(err) });
      throw err;
    }
    await complete(row.action_id, true, { duration_ms: result.durationMs, heard_ms: result.heardMs, interrupted: result.interrupted });
    if (text !== null && result.heardMs > 0) host.agentTranscript(startMs, result.heardMs, text);
    return result;
  };

  const gateHost: ToolGateHost = {
    store: host.store,
    callId: host.callId,
    log: host.log,
    who: () => host.who(),
    approval: host.toolApproval ?? DEFAULT_TOOL_APPROVAL,
    closed: host.closed,
    filler: (text) => void speak(nextId('approval-filler'), { text }, () => host.synthesize(text), text).catch((err: unknown) => host.log.warn({ err }, 'filler not played')),
  };

  // While paused, what the agent says (a read-back) is stored masked of every kind the redactors know.
  const sayArgs = (text: string): Json => (host.pci?.active ? { text: redact(text, allKinds()).text, secure: true } : { text });
  const pci = (): NonNullable<TurnHost['pci']> => {
    if (!host.pci) throw new ActionError('this call cannot pause its recording');
    return host.pci;
  };

  const warm = async (target: string, opts: { summary?: string; timeoutMs?: number }): Promise<void> => {
    const row = await request('transfer', nextId('transfer'), { target, mode: 'warm', timeout_ms: opts.timeoutMs ?? null, summary: opts.summary ?? null });
    if (row.existing && row.status !== 'requested') return; // done in an earlier attempt of this turn
    if (!host.warmTransfer) {
      await complete(row.action_id, false, { error: 'this call cannot make a warm transfer' });
      throw new ActionError(`warm transfer to ${target} is not available on this call`);
    }
    const out = await host.warmTransfer(target, { ...(opts.summary !== undefined ? { summary: opts.summary } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) }).catch(async (err: unknown) => {
      await complete(row.action_id, false, { outcome: 'failed', reason: 'failed', error: String(err) });
      throw err;
    });
    await complete(row.action_id, out.ok, out.ok ? { outcome: 'bridged', target } : { outcome: 'failed', reason: out.reason, target });
  };

  return {
    say: (text) => speak(nextId('say'), sayArgs(text), () => host.synthesize(text), text),
    pauseRecording: (reason) => pci().pause(reason),
    resumeRecording: () => pci().resume(),
    play: (wav) => {
      const bytes = Buffer.from(wav.buffer, wav.byteOffset, wav.byteLength);
      return speak(nextId('play'), { play_bytes: bytes.length }, async () => decodeWav(bytes, host.outputRate), null);
    },
    gather: async (opts) => {
      // The row says that the agent listened and what came of it — never the digits (they may be card numbers).
      const row = await request('note', nextId('gather'), { gather: { dtmf: opts.dtmf !== undefined, speech: opts.speech === true, timeout_ms: opts.timeoutMs ?? null } });
      if (row.existing && row.status === 'succeeded') {
        // A retried turn does not ask again what the caller already answered: it cannot, the digits were not kept.
        host.log.info('gather re-run after a retry: listening again');
      }
      const result = await host.gather(opts);
      if (!row.existing) await complete(row.action_id, true, { kind: result.kind, digits: result.kind === 'dtmf' ? result.digits.length : null });
      return result;
    },
    note: async (text) => {
      const row = await request('note', nextId('note'), { text: text.slice(0, 2000) });
      if (!row.existing) await complete(row.action_id, true, null);
    },
    hangup: async (reason) => {
      const row = await request('hangup', nextId('hangup'), { reason });
      if (!row.existing) await complete(row.action_id, true, null);
      await host.hangup(reason.slice(0, 200));
    },
    transfer: async (target, opts) => {
      if (opts?.mode === 'warm') return warm(target, opts);
      const row = await request('transfer', nextId('transfer'), { target });
      if (row.existing && row.status !== 'requested') {
        if (row.status === 'succeeded') return;
        throw new ActionError(`transfer to ${target} failed earlier`);
      }
      if (!host.transfer) {
        await complete(row.action_id, false, { error: 'this call leg cannot transfer' });
        throw new ActionError(`transfer to ${target} is not available on this call`);
      }
      try {
        await host.transfer(target);
      } catch (err) {
        await complete(row.action_id, false, { error: String(err) });
        throw err;
      }
      await complete(row.action_id, true, { target });
    },
    tool: async (name, args) => {
      const tools0 = host.configTools;
      const sensitive = tools0 && Object.hasOwn(tools0, name) ? tools0[name]!.sensitive === true : agent.toolSensitive?.(name) === true;
      // A sensitive tool's row (and approval request) holds a keyed digest of the args, never the args; its request
      // id (a clear column) is keyed too.
      const digestKey = sensitive ? await digestKeyOn(host.store, host.who().tenant, host.callId) : null;
      const requestId = toolRequestId(host.callId, turn, name, args, digestKey);
      const stored: Json = sensitive ? sensitiveArgs(digestKey, host.callId, turn, name, args) : args;
      const row = await request('tool', requestId, { name, args: stored });
      if (row.existing && row.status !== 'requested') host.spans?.agent.child('tool', { 'switchboard.tool': name, 'switchboard.replayed': true }).end();
      if (row.existing && row.status === 'succeeded') return row.result;
      if (row.existing && row.status === 'failed') throw earlierFailure(name, row.result);
      const span = host.spans?.agent.child('tool', { 'switchboard.tool': name, 'switchboard.replayed': false });
      // New, or requested but cut off by a crash: authorise it (tool-gate.ts), then run it (an HTTP tool passes the
      // request id as Idempotency-Key).
      const tools = host.configTools;
      const configured = tools && Object.hasOwn(tools, name) ? tools[name] : undefined; // own keys only: `constructor` is no tool
      const declared = configured ? (configured.requires ?? 'none') : (agent.toolRequires?.(name) ?? 'none');
      let value: Json;
      try {
        await authorizeTool(gateHost, { agent: agent.name, name, args: stored, requestId, declared });
        const toolCtx = { callId: host.callId, turn, requestId };
        value = configured ? await runHttpTool(configured, args, toolCtx) : await agent.runTool(name, args, toolCtx);
      } catch (err) {
        const error = (err as Error).message ?? String(err);
        span?.end(undefined, isToolRefusal(err) ? `refused: ${err.refusal}` : 'tool failed');
        await complete(row.action_id, false, isToolRefusal(err) ? { error, refused: err.refusal, reason: err.reason } : { error });
        throw err;
      }
      span?.end();
      await complete(row.action_id, true, value ?? null);
      return value ?? null;
    },
    trace: (reported) => {
      const span = host.spans?.agent.child(reported.name, reported.attributes, reported.startMs);
      if (!span) return;
      if (reported.firstTokenMs !== null) span.event('first_token', reported.firstTokenMs);
      span.end(reported.endMs, reported.attributes['switchboard.ok'] === false ? 'LLM request failed' : undefined);
    },
    filler: async (reason) => {
      host.log.warn({ reason }, 'agent runtime recovering: playing a filler');
      // Queued, not awaited: the retried turn's speech follows it in the same outbound queue.
      try {
        void host.playSamples(await host.synthesize('One moment, please.')).catch(() => undefined);
      } catch (err) {
        host.log.warn({ err }, 'filler not played');
      }
      const row = await request('note', nextId('filler'), { text: `agent recovered: ${reason}`.slice(0, 2000) }).catch(() => null);
      if (row && !row.existing) await complete(row.action_id, true, null);
    },
  };
}
