/**
 * Compressed encodings through the system ffmpeg (fluent-ffmpeg): interleaved
 * stereo s16le (8 kHz, or the recording's rate) in, Ogg/Opus or MP3 out, all in memory through pipes.
 * Costs (RECIPES.md): ~0.22 CPU-s per minute of audio for Opus, ~0.16 for
 * MP3, ~50 ms process start — which is why µ-law WAV is the default.
 *
 * The binary is resolved and checked (exists, is an executable file) before
 * fluent-ffmpeg is called: fluent-ffmpeg 2.1.3 crashes the process with an
 * uncaught `TypeError: Cannot read properties of undefined (reading 'get')`
 * when spawning ffmpeg fails (fluent-ffmpeg/node-fluent-ffmpeg#1316, fix in
 * unmerged PR #1321), so a missing ffmpeg must never reach its spawn.
 *
 * fluent-ffmpeg is imported by the first encoding or conversion (`loadFluentFfmpeg`), not at start: a node that
 * records WAV (the default) never loads it.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { Readable } from 'node:stream';
import type ffmpegType from 'fluent-ffmpeg';

let fluent: Promise<typeof ffmpegType> | null = null;

/** The fluent-ffmpeg package, imported once on first use (a failed import is retried by the next call). */
export function loadFluentFfmpeg(): Promise<typeof ffmpegType> {
  fluent ??= import('fluent-ffmpeg').then(
    (m) => (m as unknown as { default: typeof ffmpegType }).default, // a CommonJS package: its exports are `default`
    (err: unknown) => {
      fluent = null;
      throw err;
    },
  );
  return fluent;
}

export type CompressedFormat = 'ogg' | 'mp3';

export interface TranscodeOptions {
  /** ffmpeg binary (default: $FFMPEG_PATH, else `ffmpeg` on $PATH). */
  ffmpegPath?: string;
  /** Target bitrate, kbit/s (default 32). */
  bitrateKbps?: number;
  /** Kill ffmpeg and fail after this long (default 300 000 ms). */
  timeoutMs?: number;
  /** Where the temp output file goes (default os.tmpdir()). */
  workDir?: string;
  /** Sample rate of the input PCM (default 8000). */
  sampleRate?: number;
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The ffmpeg binary to run: `explicit`, else $FFMPEG_PATH, else `ffmpeg` on
 * $PATH. Throws a clear error when it is missing or not executable.
 */
export function resolveFfmpeg(explicit?: string): string {
  const wanted = explicit ?? process.env.FFMPEG_PATH ?? 'ffmpeg';
  if (wanted.includes('/')) {
    if (isExecutableFile(wanted)) return wanted;
    throw new Error(`ffmpeg not found or not executable at ${wanted}`);
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, wanted);
    if (isExecutableFile(file)) return file;
  }
  throw new Error(`ffmpeg (${wanted}) not found on PATH`);
}

function lastLines(text: string | null | undefined, n = 3): string {
  if (!text) return '';
  return text.trim().split('\n').slice(-n).join(' | ');
}

/**
 * Encodes PCM (interleaved stereo s16le, at `opts.sampleRate`, default 8 kHz) to `format`. Rejects with the
 * tail of ffmpeg's stderr when ffmpeg is missing, fails or times out, or
 * produces no output.
 *
 * Output goes to a temp file (in `workDir`), not a pipe: on a seekable output
 * ffmpeg goes back and fills in the MP3 Xing/LAME header (frame count, encoder
 * delay and padding), so decoders trim the ~160 ms of codec delay/padding and
 * the decoded length equals the input; piped MP3 decodes 160 ms too long.
 */
export async function transcodePcm(
  pcm: Iterable<Buffer> | AsyncIterable<Buffer>,
  format: CompressedFormat,
  opts: TranscodeOptions = {},
): Promise<Buffer> {
  const binary = resolveFfmpeg(opts.ffmpegPath);
  const work = await fs.promises.mkdtemp(path.join(opts.workDir ?? os.tmpdir(), '.encode-'));
  const outFile = path.join(work, `out.${format}`);
  try {
    await runFfmpeg(await loadFluentFfmpeg(), binary, pcm, format, outFile, opts);
    const out = await fs.promises.readFile(outFile);
    if (out.length === 0) throw new Error(`ffmpeg produced no ${format} output`);
    return out;
  } finally {
    await fs.promises.rm(work, { recursive: true, force: true });
  }
}

function runFfmpeg(
  ffmpeg: typeof ffmpegType,
  binary: string,
  pcm: Iterable<Buffer> | AsyncIterable<Buffer>,
  format: CompressedFormat,
  outFile: string,
  opts: TranscodeOptions,
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  return new Promise<void>((resolve, reject) => {
    const input = Readable.from(pcm, { objectMode: false });
    const cmd = ffmpeg()
      .setFfmpegPath(binary)
      .input(input)
      .inputFormat('s16le')
      .inputOptions(['-ar', String(opts.sampleRate ?? 8000), '-ac', '2'])
      .audioBitrate(opts.bitrateKbps ?? 32)
      .outputOptions(['-map_metadata', '-1']);
    // `-application audio` (CELT): in `voip` mode (SILK) stereo prediction leaks one channel into
    // the other at speech onsets (measured: a caller onset at -20 dB in the silent agent channel).
    if (format === 'ogg') cmd.audioCodec('libopus').outputOptions(['-application', 'audio']).format('ogg');
    else cmd.audioCodec('libmp3lame').format('mp3');
    let settled = false;
    const timer = setTimeout(() => {
      cmd.kill('SIGKILL');
      done(new Error(`ffmpeg timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    const done = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        input.destroy();
        reject(err);
      } else {
        resolve();
      }
    };
    cmd.on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
      const tail = lastLines(stderr);
      done(new Error(`ffmpeg ${format} encoding failed: ${err.message}${tail ? ` (${tail})` : ''}`));
    });
    cmd.on('end', () => done());
    cmd.save(outFile);
  });
}
