/**
 * The evidence pack: one zip an auditor can check offline with sh, sha256sum,
 * openssl 3, awk, grep and sed (no jq, node or python). Layout:
 *
 *   VERIFY.md, verify.sh           instructions (and how the call travelled: TLS or not, SRTP or not); the check script
 *   manifest.json                  tenant, call, node, generated_at / generated_by
 *   call.json                      {call, recording}: the call row (with transport, media_encryption) and the recording row
 *   consent.json                   {consents}: the call's consent rows
 *   recording.wav, recording.sha256  decrypted recording; "<sha256>  recording.wav" from its row
 *   transcript.json, transcript.vtt
 *   events/<seq>.json              each call event's body, byte for byte as hashed
 *   events/index.tsv               seq, prev_hash, hash of each call event
 *   chain/links.tsv                seq, digest, hash from each call event to a checkpoint
 *   checkpoints/<seq>.payload|.sig the signed canonical JSON and its raw Ed25519 signature
 *   node-public-key.pem            the node's key (SPKI PEM)
 *   SHA256SUMS                     `sha256sum -c` over every other file
 *
 * The chain format is the call proof's (proof.ts); the rows and transcripts
 * are views derived from the chained events, included for reading. yazl is
 * imported by the first pack, not at start.
 */
import type { ErasureView } from '../queries/content-open.ts';
import { createHash } from 'node:crypto';
import type yazlType from 'yazl';
import type { SwitchboardTables } from '../../schema/index.ts';
import type { Store } from '../../store/index.ts';
import { buildCallProof, type CallProof } from './proof.ts';

export interface EvidencePackInput {
  store: Store<SwitchboardTables>;
  tenant: string;
  callId: string;
  /** The decrypted recording (its sha256 must be a recording row's of this call), or null. */
  recording: { wav: Buffer } | null;
  transcriptVtt: string;
  transcriptJson: unknown;
  /** The call's erasure (api/queries/content-open.ts): said in ERASED.md, the manifest and the views. */
  erasure?: ErasureView | null;
  /** The consent rows with their evidence opened (default: as stored). */
  consents?: unknown[];
  generatedAt: number;
  generatedBy: string;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
const json = (value: unknown): string => `${JSON.stringify(value, null, 2) ?? 'null'}\n`;
const tsv = (header: string[], rows: Array<Array<string | number>>): string =>
  [header, ...rows].map((r) => `${r.join('\t')}\n`).join('');

/** POSIX sh; no `${` and no backquote, so it sits verbatim in this String.raw. */
export const VERIFY_SH = String.raw`#!/bin/sh
# Checks a Switchboard evidence pack offline: sh verify.sh (in the unzipped pack).
# Needs sh, sha256sum, openssl (3.x), awk, grep, sed. Exit 0 = every check passed.
set -u
cd "$(dirname "$0")" || exit 2
fails=0
bad() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
sha() { sha256sum | cut -c1-64; }
tab=$(printf '\t')
for f in SHA256SUMS node-public-key.pem events/index.tsv chain/links.tsv; do [ -f "$f" ] || bad "$f is missing"; done

echo '== (a) SHA256SUMS'
sha256sum -c --quiet SHA256SUMS || bad 'SHA256SUMS: the files named above do not match their checksums'

echo '== (b) recording'
if [ -f recording.sha256 ]; then
  want=$(awk 'NR == 1 { print $1 }' recording.sha256)
  got=$(sha < recording.wav)
  if ! printf '%s\n' "$want" | grep -Eq '^[0-9a-f]{64}$'; then bad 'recording.sha256: no sha256 on its first line'
  elif [ "$got" != "$want" ]; then bad "recording.wav: its sha256 is $got, the recording row says $want"
  else echo "recording.wav: sha256 $got"; fi
  grep -q "\"sha256\": \"$want\"" call.json || bad "recording: call.json's recording row does not hold sha256 $want"
  found=
  for f in events/*.json; do
    grep -q '"reducer":"recording_finalized"' "$f" && grep -q "\"sha256\":\"$want\"" "$f" && found=$f
  done
  if [ -n "$found" ]; then echo "recording: sha256 recorded by $found"; else bad "recording: no recording_finalized event in events/ records sha256 $want"; fi
else echo 'no recording in this pack'; fi

echo '== (c) call events'
evs=' '
while IFS=$tab read -r seq prev hash; do
  [ "$seq" = seq ] && continue
  case $seq in '' | *[!0-9]*) bad "events/index.tsv: bad seq '$seq'"; continue ;; esac
  f=events/$seq.json
  if [ ! -f "$f" ]; then bad "event $seq: $f is missing"; continue; fi
  d=$(sha < "$f")
  h=$(printf '%s%s' "$prev" "$d" | sha)
  if [ "$h" = "$hash" ]; then evs="$evs$seq "; eval "evhash_$seq=\$hash"
  else bad "event $seq: $f (sha256 $d) with prev_hash $prev hashes to $h, not $hash"; fi
done < events/index.tsv
for f in events/*.json; do
  n=$(basename "$f" .json)
  case $evs in *" $n "*) ;; *) bad "event $n: $f is not a verified call event" ;; esac
done
[ "$evs" != ' ' ] || bad 'no call event verified'
echo "verified call events:$evs"

echo '== (d) checkpoint signatures'
cps=' '
for p in checkpoints/*.payload; do
  [ -f "$p" ] || { bad 'no checkpoints in the pack'; break; }
  n=$(basename "$p" .payload)
  case $n in '' | *[!0-9]*) bad "$p: not a checkpoint file name"; continue ;; esac
  if ! openssl pkeyutl -verify -pubin -inkey node-public-key.pem -rawin -in "$p" -sigfile "checkpoints/$n.sig" > /dev/null 2>&1; then
    bad "checkpoint $n: signature checkpoints/$n.sig does not verify with node-public-key.pem"; continue
  fi
  c=$(sed -n 's/^{"hash":"\([0-9a-f]\{64\}\)","node":".*","seq":'"$n"'}$/\1/p' "$p")
  if [ -z "$c" ]; then bad "checkpoint $n: $p is not {\"hash\":…,\"node\":…,\"seq\":$n}"; continue; fi
  cps="$cps$n "; eval "cphash_$n=\$c"
  echo "checkpoint $n: signature verified, hash $c"
done

echo '== (e) chain from each call event to a signed checkpoint'
prev=-1; h=; atcp=0; links=' '
while IFS=$tab read -r k d lh; do
  [ "$k" = seq ] && continue
  case $k in '' | *[!0-9]*) bad "chain/links.tsv: bad seq '$k'"; continue ;; esac
  if [ "$k" -le "$prev" ]; then bad "chain/links.tsv: seq $k out of order"; continue; fi
  if [ "$k" -ne $((prev + 1)) ]; then
    [ "$prev" -lt 0 ] || [ "$atcp" = 1 ] || bad "chain: the links ending at seq $prev reach no signed checkpoint"
    s=$((k - 1))
    case $evs in *" $s "*) eval "h=\$evhash_$s" ;; *) h=; bad "chain: link $k follows neither a link nor a verified call event" ;; esac
  fi
  h=$(printf '%s%s' "$h" "$d" | sha)
  [ "$h" = "$lh" ] || bad "link $k: sha256(previous hash, $d) is $h, not $lh"
  case $evs in *" $k "*) eval "e=\$evhash_$k"; [ "$e" = "$h" ] || bad "event $k: its hash $e differs from the chain's $h" ;; esac
  atcp=0
  case $cps in *" $k "*)
    eval "c=\$cphash_$k"
    if [ "$c" = "$h" ]; then atcp=1; else bad "checkpoint $k: signed hash $c differs from the chain's $h"; fi ;;
  esac
  links="$links$k "; prev=$k
done < chain/links.tsv
[ "$prev" -lt 0 ] || [ "$atcp" = 1 ] || bad "chain: the links ending at seq $prev reach no signed checkpoint"
for s in $evs; do
  case $cps in *" $s "*)
    eval "c=\$cphash_$s; e=\$evhash_$s"
    if [ "$c" = "$e" ]; then echo "event $s: is signed checkpoint $s"; else bad "event $s: its hash differs from checkpoint $s's signed hash"; fi
    continue ;;
  esac
  case $links in *" $((s + 1)) "*) echo "event $s: chained to a signed checkpoint" ;; *) bad "event $s: no chain link from it to a signed checkpoint" ;; esac
done

if [ "$fails" -gt 0 ]; then echo "VERIFICATION FAILED: $fails problem(s)"; exit 1; fi
echo 'ALL CHECKS PASSED'
`;

/** How the call travelled (the call row's `transport` and `media_encryption`, from `call_security_recorded`). */
function inTransit(call: { transport: string | null; media_encryption: string | null } | undefined): string {
  if (!call || (call.transport === null && call.media_encryption === null)) return 'Encryption in transit: not recorded for this call (not a SIP call, or recorded before it was).';
  const signalling = call.transport === 'tls' ? 'TLS' : call.transport === null ? 'not recorded' : `${call.transport.toUpperCase()} (clear text)`;
  const media = call.media_encryption === 'srtp' ? 'SRTP' : call.media_encryption === null ? 'not recorded' : 'none (RTP in clear text)';
  return `Encryption in transit: signalling ${signalling}, media ${media} (\`call.json\` \`transport\`, \`media_encryption\`; the chained \`call_security_recorded\` event).`;
}

function verifyMd(proof: CallProof, generatedAt: number, generatedBy: string, transit: string): string {
  return `# Evidence pack: call ${proof.callId}

Tenant \`${proof.tenant}\`, node \`${proof.node}\`; generated ${new Date(generatedAt).toISOString()} by ${generatedBy}.

${transit}

## What proves what

The node keeps a hash-chained log of every command it applied. For event *n*:
\`digest = sha256(events/n.json)\` and \`hash = sha256(prev_hash ‖ digest)\`, where ‖ joins
the two lowercase hex strings as ASCII (no newline). Every so often the node signs
\`{"hash":…,"node":…,"seq":…}\` of its log head with its Ed25519 key (\`checkpoints/N.payload\`, \`.sig\`).

- \`events/\` holds this call's events exactly as hashed; \`events/index.tsv\` their prev_hash and hash.
- \`chain/links.tsv\` gives, for every event from each call event up to the next checkpoint, only its
  digest and hash: the walk recomputes the signed hash while other calls' events stay hidden.
- \`recording.wav\` must hash to the sha256 in its recording row and in the chained \`recording_finalized\` event.
- \`call.json\`, \`consent.json\` and \`transcript.*\` are readable views derived from these events
  (e.g. \`consent_decided\`, \`transcript_appended\`); compare them with \`events/\` as needed.

\`SHA256SUMS\` only detects accidental damage: whoever alters the pack can rewrite it. The proof is the
signatures, so obtain the node's public key independently (from the operator) and check that it equals
\`node-public-key.pem\`, and read the script before trusting it (or use your own copy of it).

## How to verify

\`\`\`sh
unzip evidence.zip -d evidence && cd evidence && sh verify.sh
\`\`\`

It checks (a) \`SHA256SUMS\`, (b) the recording's sha256, (c) each call event's body against its hash,
(d) each checkpoint's signature, (e) the chain from each call event to a signed checkpoint. It prints
\`FAIL: …\` for every problem and exits non-zero if there is any. Single checks by hand:

\`\`\`sh
sha256sum recording.wav
printf '%s%s' PREV_HASH "$(sha256sum < events/SEQ.json | cut -c1-64)" | sha256sum
openssl pkeyutl -verify -pubin -inkey node-public-key.pem -rawin -in checkpoints/SEQ.payload -sigfile checkpoints/SEQ.sig
\`\`\`

## verify.sh

\`\`\`sh
${VERIFY_SH}\`\`\`
`;
}

function erasedMd(e: ErasureView): string {
  return `# Content erased

The content of this call was ${e.note}.
Kind: ${e.kind}. Destroyed keys: ${e.keys.length > 0 ? e.keys.join(', ') : '(none)'}.

Transcript text, agent and tool payloads, agent state and consent evidence were sealed with the call's own key
before they were logged; that key is destroyed, so the events in \`events/\` hold ciphertext nobody can open. The
events, their hashes and the signed checkpoints are unchanged: \`sh verify.sh\` still verifies the chain, and the
\`call_content_erased\` event records who erased what, when and why.
`;
}

/** Builds the zip for one call of `tenant`; throws if the call is not the tenant's or the recording bytes are not this call's. */
export async function buildEvidencePack(input: EvidencePackInput): Promise<Buffer> {
  const { store, tenant, callId } = input;
  const proof = buildCallProof(store, tenant, callId);
  if (!proof) throw new Error(`evidence: tenant ${tenant} has no call ${callId}`);
  const read = store.read(tenant);
  const recordings = read.recordings.find({ call_id: callId });
  const wavSha = input.recording ? sha256(input.recording.wav) : null;
  const recordingRow = wavSha ? recordings.find((r) => r.sha256 === wavSha) : recordings.at(-1);
  if (wavSha && !recordingRow) throw new Error(`evidence: the recording given (sha256 ${wavSha}) is not a recording of call ${callId}`);

  const files = new Map<string, Buffer | string>();
  files.set('VERIFY.md', verifyMd(proof, input.generatedAt, input.generatedBy, inTransit(read.calls.get(callId))));
  files.set('verify.sh', VERIFY_SH);
  const erasure = input.erasure ?? null;
  files.set('manifest.json', json({ format: 'switchboard-evidence/1', tenant, call_id: callId, node: proof.node, generated_at: input.generatedAt, generated_by: input.generatedBy, erased: erasure }));
  if (erasure) files.set('ERASED.md', erasedMd(erasure));
  files.set('call.json', json({ call: read.calls.get(callId), recording: recordingRow ?? null, erased: erasure }));
  files.set('consent.json', json({ consents: input.consents ?? read.consents.find({ call_id: callId }) }));
  if (input.recording && wavSha) {
    files.set('recording.wav', input.recording.wav);
    files.set('recording.sha256', `${wavSha}  recording.wav\n`);
  }
  files.set('transcript.json', json(input.transcriptJson));
  files.set('transcript.vtt', input.transcriptVtt);
  files.set('node-public-key.pem', store.publicKeyPem);
  for (const ev of proof.events) files.set(`events/${ev.seq}.json`, ev.body);
  files.set('events/index.tsv', tsv(['seq', 'prev_hash', 'hash'], proof.events.map((e) => [e.seq, e.prevHash, e.hash])));
  files.set('chain/links.tsv', tsv(['seq', 'digest', 'hash'], proof.links.map((l) => [l.seq, l.digest, l.hash])));
  for (const cp of proof.checkpoints) {
    files.set(`checkpoints/${cp.seq}.payload`, cp.payload);
    files.set(`checkpoints/${cp.seq}.sig`, Buffer.from(cp.signature, 'base64'));
  }
  files.set('SHA256SUMS', [...files].map(([name, data]) => `${sha256(data)}  ${name}\n`).join(''));
  return zip(files, new Date(input.generatedAt));
}

async function zip(files: Map<string, Buffer | string>, mtime: Date): Promise<Buffer> {
  const yazl = ((await import('yazl')) as unknown as { default: typeof yazlType }).default; // CommonJS: exports are `default`
  const z = new yazl.ZipFile();
  for (const [name, data] of files) {
    z.addBuffer(Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'), name, { mtime, mode: name.endsWith('.sh') ? 0o100755 : 0o100644 });
  }
  z.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('error', reject);
    z.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}
