/**
 * Transcript download formats, as pure functions of the segments:
 *   toVtt   WebVTT (W3C): `WEBVTT` header; one cue per segment in start order,
 *           `HH:MM:SS.mmm --> HH:MM:SS.mmm`, payload `<v Caller>` / `<v Agent>`
 *           with `&`, `<`, `>` escaped and line breaks folded (a blank line
 *           would end the cue); a zero-length segment gets 1 ms, since a cue
 *           must end after it starts.
 *   toText  one line per segment: `[MM:SS.mmm] Caller: …` (HH:MM:SS.mmm past an hour).
 *   toJson  a JSON-ready document: the call's identifying metadata and its segments.
 * Times are offsets from the start of the recording (the segments' start_ms/end_ms).
 */

export interface FormatSegment {
  channel: 'caller' | 'agent';
  start_ms: number;
  end_ms: number;
  text: string;
}

export interface FormatCall {
  id: string;
  from_uri: string;
  to_uri: string;
  direction: string;
  agent: string | null;
  received_at: number;
  answered_at: number | null;
  ended_at: number | null;
}

export interface TranscriptDocument {
  call_id: string;
  from: string;
  to: string;
  direction: string;
  agent: string | null;
  received_at: string;
  answered_at: string | null;
  ended_at: string | null;
  segments: Array<{
    speaker: 'Caller' | 'Agent';
    channel: 'caller' | 'agent';
    start_ms: number;
    end_ms: number;
    start: string;
    end: string;
    text: string;
    confidence: number | null;
  }>;
}

const SPEAKER = { caller: 'Caller', agent: 'Agent' } as const;

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `HH:MM:SS.mmm` (always with hours, as WebVTT cue timings may be), or `MM:SS.mmm` when `short` and under an hour. */
export function formatTimestamp(ms: number, short = false): string {
  const t = Math.max(0, Math.round(ms));
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor(t / 60_000) % 60;
  const s = Math.floor(t / 1000) % 60;
  const rest = `${pad(m)}:${pad(s)}.${pad(t % 1000, 3)}`;
  return short && h === 0 ? rest : `${pad(h)}:${rest}`;
}

/** One line of text: runs of line breaks (and the spaces around them) become a single space. */
const oneLine = (text: string): string => text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ').trim();

const escapeVtt = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Segments in start order (stable, so equal starts keep their order). */
const ordered = <S extends FormatSegment>(segments: readonly S[]): S[] =>
  segments
    .map((s, i) => ({ s, i }))
    .sort((a, b) => a.s.start_ms - b.s.start_ms || a.i - b.i)
    .map(({ s }) => s);

export function toVtt(segments: readonly FormatSegment[]): string {
  const cues = ordered(segments).map((seg) => {
    const end = Math.max(seg.end_ms, seg.start_ms + 1);
    return `${formatTimestamp(seg.start_ms)} --> ${formatTimestamp(end)}\n<v ${SPEAKER[seg.channel]}>${escapeVtt(oneLine(seg.text))}\n`;
  });
  return ['WEBVTT\n', ...cues].join('\n');
}

export function toText(segments: readonly FormatSegment[]): string {
  return ordered(segments)
    .map((seg) => `[${formatTimestamp(seg.start_ms, true)}] ${SPEAKER[seg.channel]}: ${oneLine(seg.text)}\n`)
    .join('');
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toJson(call: FormatCall, segments: ReadonlyArray<FormatSegment & { confidence?: number | null }>): TranscriptDocument {
  return {
    call_id: call.id,
    from: call.from_uri,
    to: call.to_uri,
    direction: call.direction,
    agent: call.agent,
    received_at: new Date(call.received_at).toISOString(),
    answered_at: iso(call.answered_at),
    ended_at: iso(call.ended_at),
    segments: ordered(segments).map((seg) => ({
      speaker: SPEAKER[seg.channel],
      channel: seg.channel,
      start_ms: seg.start_ms,
      end_ms: seg.end_ms,
      start: formatTimestamp(seg.start_ms),
      end: formatTimestamp(seg.end_ms),
      text: seg.text,
      confidence: seg.confidence ?? null,
    })),
  };
}
