/**
 * Which VAD a call's pipeline uses, chosen once per process by `SWITCHBOARD_VAD` (cli/config/):
 *
 *   energy (default) ─► media/vad.ts EnergyVad, nothing loaded
 *   silero           ─► media/vad-silero.ts: onnxruntime-node and the model are imported here, at start, only then
 *
 * `create` gives one call its own detector with the release (end-of-turn silence) its agent needs.
 */
import { EnergyVad, type Vad } from './vad.ts';

export type VadKind = 'energy' | 'silero';

export interface VadFactory {
  readonly kind: VadKind;
  create(opts: { releaseMs: number }): Vad;
}

export async function loadVad(kind: VadKind): Promise<VadFactory> {
  if (kind === 'energy') return { kind, create: ({ releaseMs }) => new EnergyVad({ releaseFrames: Math.max(1, Math.round(releaseMs / 20)) }) };
  const { loadSileroModel, SileroVad } = await import('./vad-silero.ts');
  const model = await loadSileroModel();
  return { kind, create: ({ releaseMs }) => new SileroVad(model, { releaseFrames: Math.max(1, Math.round(releaseMs / 20)) }) };
}
