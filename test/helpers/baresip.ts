/**
 * baresip (Debian package baresip-core) as a real SIP softphone in tests: a
 * config directory (config, accounts, contacts) in a temp dir, a WAV as the
 * microphone (`audio_source aufile,FILE`), no sound card (`audio_player
 * aubridge,nil`), optionally the `sndfile` module dumping what it sent and heard.
 * It dials with `-e "/dial URI"` (SIP trace on, `-s`, for failure messages),
 * hangs up by itself at the end of the WAV and quits after `-t` seconds (or
 * when stopped). Run it inside `unshare -n`
 * (netns.ts) so its fixed ports are private. Recipe: /work/shared/RECIPES.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './tmp.ts';

const MODULES = '/usr/lib/baresip/modules';

/** An 8 kHz 16-bit mono WAV (what aufile feeds a G.711 call): each part is [text | null (silence), seconds of silence after]. */
export function speechWav8k(parts: Array<[string | null, number]>): string {
  const dir = tmpDir('sb-baresip-wav-');
  const files: string[] = [];
  for (const [i, [text, after]] of parts.entries()) {
    const out = path.join(dir, `p${i}.wav`);
    if (text === null) {
      execFileSync('sox', ['-n', '-r', '8000', '-b', '16', '-c', '1', out, 'trim', '0', String(after)]);
    } else {
      const raw = path.join(dir, `s${i}.wav`);
      const txt = path.join(dir, `s${i}.txt`);
      fs.writeFileSync(txt, text);
      execFileSync('espeak-ng', ['-w', raw, '-f', txt]);
      execFileSync('sox', ['-D', raw, '-r', '8000', '-b', '16', '-c', '1', out, 'pad', '0', String(after)]);
    }
    files.push(out);
  }
  const wav = path.join(dir, 'mic.wav');
  if (files.length === 1) fs.copyFileSync(files[0] as string, wav);
  else execFileSync('sox', [...files, wav]);
  return wav;
}

export interface BaresipOptions {
  /** The SIP URI to dial, e.g. `sip:15553330000@127.0.0.1:5060`; absent = wait for a call (with `autoAnswer`). */
  dial?: string;
  /** Answer incoming calls at once (account `answermode=auto`): baresip as the called party. */
  autoAnswer?: boolean;
  /** The microphone: an 8 kHz 16-bit mono WAV; baresip hangs up when it ends. */
  micWav: string;
  /** baresip's own SIP port on 127.0.0.1. */
  sipPort: number;
  /** baresip's RTP port range. */
  rtpPorts: { low: number; high: number };
  /** `-t`: baresip quits after this many seconds whatever happens. */
  quitAfterS: number;
  /** Load `sndfile`: what baresip sent and heard are dumped as WAVs in `dumpDir`. */
  dumpAudio?: boolean;
  /** Media encryption (baresip's `srtp` module, SDES): `srtp` = best effort, `srtp-mand` = RTP/SAVP only. */
  mediaenc?: 'srtp' | 'srtp-mand';
  /** SIP over TLS: the account says `;transport=tls` and trusts this CA file (`sip_cafile`; the gateway's certificate). */
  tlsCaFile?: string;
}

export interface Baresip {
  dir: string;
  /** Where `sndfile` writes `dump-<call>-enc.wav` (sent) and `dump-<call>-dec.wav` (heard). */
  dumpDir: string;
  /** Everything baresip printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Resolves with the exit code when baresip exits. */
  exited: Promise<number | null>;
  /** The dumped WAVs whose name contains `kind` ('enc' or 'dec'). */
  dumps(kind: 'enc' | 'dec'): string[];
  /** SIGTERM (then SIGKILL after 5 s) and wait for the exit; idempotent. */
  stop(): Promise<void>;
}

export function writeBaresipConfig(opts: BaresipOptions): { dir: string; dumpDir: string } {
  const dir = tmpDir('sb-baresip-');
  const dumpDir = path.join(dir, 'dumps');
  fs.mkdirSync(dumpDir);
  const config = [
    'poll_method epoll',
    `sip_listen 127.0.0.1:${opts.sipPort}`,
    'sip_transports udp',
    // An address, not `lo`: baresip 1.0 finds no address on a loopback interface by name.
    'net_interface 127.0.0.1',
    'call_local_timeout 120',
    'call_max_calls 1',
    'audio_path /usr/share/baresip',
    'audio_player aubridge,nil',
    'audio_alert aubridge,nil',
    `audio_source aufile,${opts.micWav}`,
    `rtp_ports ${opts.rtpPorts.low}-${opts.rtpPorts.high}`,
    'rtcp_mux no',
    'jitter_buffer_delay 5-10',
    'dns_server 127.0.0.1:53',
    `module_path ${MODULES}`,
    'module g711.so',
    'module aufile.so',
    'module aubridge.so',
    ...(opts.dumpAudio ? ['module sndfile.so', `snd_path ${dumpDir}`] : []),
    ...(opts.mediaenc ? ['module srtp.so'] : []),
    'module_app account.so',
    'module_app menu.so',
    ...(opts.tlsCaFile ? [`sip_cafile ${opts.tlsCaFile}`] : []),
    '',
  ];
  fs.writeFileSync(path.join(dir, 'config'), config.join('\n'));
  fs.writeFileSync(path.join(dir, 'accounts'), `<sip:bot@127.0.0.1:${opts.sipPort}${opts.tlsCaFile ? ';transport=tls' : ''}>;regint=0;audio_codecs=PCMA,PCMU${opts.mediaenc ? `;mediaenc=${opts.mediaenc}` : ''}${opts.autoAnswer ? ';answermode=auto' : ''}\n`);
  fs.writeFileSync(path.join(dir, 'contacts'), '');
  return { dir, dumpDir };
}

/** Writes the config and starts `baresip -f DIR -s -e "/dial URI" -t N`. */
export function startBaresip(opts: BaresipOptions): Baresip {
  for (const m of ['g711', 'aufile', 'aubridge', 'account', 'menu', ...(opts.dumpAudio ? ['sndfile'] : []), ...(opts.mediaenc ? ['srtp'] : [])]) {
    if (!fs.existsSync(path.join(MODULES, `${m}.so`))) throw new Error(`baresip module ${m}.so missing in ${MODULES}: run "bash scripts/ensure-deps.sh"`);
  }
  const { dir, dumpDir } = writeBaresipConfig(opts);
  const child = spawn('baresip', ['-f', dir, '-s', ...(opts.dial ? ['-e', `/dial ${opts.dial}`] : []), '-t', String(opts.quitAfterS)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    // Without colours and the running bitrate line; the SIP trace (-s) stays.
    out += d
      .toString()
      .replace(/\x1b\[[0-9;]*m/g, '')
      .replace(/\[\d+:\d\d:\d\d\] audio=\d+\/\d+ \(bit\/s\)\s*/g, '');
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      out += `\ncannot start baresip: ${err.message}`;
      resolve(-1);
    });
    child.once('close', (code) => resolve(code));
  });
  let stopping: Promise<void> | null = null;
  return {
    dir,
    dumpDir,
    exited,
    output: () => out,
    dumps: (kind) => fs.readdirSync(dumpDir).filter((f) => f.endsWith(`-${kind}.wav`)).map((f) => path.join(dumpDir, f)),
    stop: () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}
