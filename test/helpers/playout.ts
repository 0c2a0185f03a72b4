/**
 * Twilio's playout of the gateway's audio on one stream, as a model: µ-law
 * plays at 8000 bytes/s after what is already queued; a `clear` or the end of
 * the stream cuts it, keeping what played as heard.
 */
const BYTES_PER_MS = 8;

export class Playout {
  private segs: Array<{ data: Buffer; start: number }> = [];
  /** When the queued audio will have played (performance.now() ms). */
  end: number;

  constructor(now: number) {
    this.end = now;
  }

  enqueue(audio: Buffer, now: number): void {
    const start = Math.max(now, this.end);
    this.segs.push({ data: audio, start });
    this.end = start + audio.length / BYTES_PER_MS;
  }

  /** The audio played so far of what is queued. */
  played(now: number): Buffer[] {
    return this.segs.map((s) => s.data.subarray(0, playedOf(s, now)));
  }

  playedBytes(now: number): number {
    return this.segs.reduce((n, s) => n + playedOf(s, now), 0);
  }

  /** Stops at `now`: returns what played (heard) and how many bytes were dropped unplayed. */
  cut(now: number): { heard: Buffer[]; dropped: number } {
    const heard: Buffer[] = [];
    let dropped = 0;
    for (const seg of this.segs) {
      const n = playedOf(seg, now);
      if (n > 0) heard.push(seg.data.subarray(0, n));
      dropped += seg.data.length - n;
    }
    this.segs = [];
    this.end = now;
    return { heard, dropped };
  }
}

function playedOf(seg: { data: Buffer; start: number }, now: number): number {
  return Math.min(seg.data.length, Math.max(0, Math.floor((now - seg.start) * BYTES_PER_MS)));
}
