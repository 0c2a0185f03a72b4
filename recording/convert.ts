/**
 * Serves a recording in another format than it is stored in: `wav` (PCM
 * 16-bit, what every player opens) or `ogg` (Opus, small). The stored bytes —
 * whose sha256 the recording row holds — are only served as they are when
 * the format asked for is the stored one; a conversion is a derived copy.
 * ffmpeg runs on temp files in a private directory that is always removed; fluent-ffmpeg is imported by the
 * first conversion (recording/transcode.ts `loadFluentFfmpeg`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadFluentFfmpeg, resolveFfmpeg } from './transcode.ts';
import type { RecordingFormat } from './types.ts';

export type ServedFormat = 'wav' | 'ogg';

export const CONTENT_TYPES: Record<RecordingFormat, string> = { wav: 'audio/wav', ogg: 'audio/ogg', mp3: 'audio/mpeg' };

export async function convertRecording(
  plain: Buffer,
  from: RecordingFormat,
  to: ServedFormat,
  opts: { ffmpegPath?: string; timeoutMs?: number } = {},
): Promise<Buffer> {
  if (from === to) return plain;
  const binary = resolveFfmpeg(opts.ffmpegPath);
  const work = await fs.promises.mkdtemp(path.join(os.tmpdir(), '.convert-'));
  const input = path.join(work, `in.${from}`);
  const output = path.join(work, `out.${to}`);
  try {
    const ffmpeg = await loadFluentFfmpeg();
    await fs.promises.writeFile(input, plain, { mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      const cmd = ffmpeg().setFfmpegPath(binary).input(input).outputOptions(['-map_metadata', '-1']);
      if (to === 'ogg') cmd.audioCodec('libopus').audioBitrate(32).outputOptions(['-application', 'audio']).format('ogg');
      else cmd.audioCodec('pcm_s16le').format('wav');
      const timer = setTimeout(() => {
        cmd.kill('SIGKILL');
        reject(new Error(`ffmpeg timed out converting ${from} to ${to}`));
      }, opts.timeoutMs ?? 120_000);
      timer.unref();
      cmd.on('error', (err: Error, _o: string | null, stderr: string | null) => {
        clearTimeout(timer);
        reject(new Error(`ffmpeg could not convert ${from} to ${to}: ${err.message} ${(stderr ?? '').split('\n').slice(-3).join(' ')}`));
      });
      cmd.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
      cmd.save(output);
    });
    return await fs.promises.readFile(output);
  } finally {
    await fs.promises.rm(work, { recursive: true, force: true });
  }
}
