/**
 * `switchboard cluster up --nodes 2`, the real command with real processes: 3 nats-server, 2 `switchboard start`
 * nodes, HAProxy and Kamailio. Through HAProxy a Twilio call (the Twilio peer) hears the agent; through Kamailio a
 * sipp call is answered by a node, and the caller's ACK and BYE, sent by the route set of the 200's Record-Route,
 * reach that node (its 200 to the BYE: another node would answer 481). The node that took the Twilio call is
 * killed (-9): the next Twilio call through HAProxy and the next SIP call through Kamailio land on the other node.
 * A second `cluster up` over the same dir is refused while the first runs. Ctrl-C (SIGINT) stops the command with
 * exit 0 and leaves none of its processes (nor their forks) behind.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { ulawEnergy } from '../helpers/audio.ts';
import { ADMIN_TOKEN, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { runSipp } from '../helpers/sipp.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const TWILIO_NUMBER = '+15550107001';
const SIP_NUMBER = '+15550107002';

interface UpInfo {
  http: string;
  sip: string;
  admin_token: string;
  dir: string;
  nodes: Array<{ id: string; pid: number; http: string; sip_port: number; log: string }>;
  pids: number[];
}

let up: ChildProcess | null = null;
const peers: TwilioPeer[] = [];
after(async () => {
  for (const p of peers) await p.close();
  if (up && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGINT');
    await new Promise((r) => up?.once('exit', r));
  }
});

/** A process group (or process) still has a member: signal 0 probes it. */
function alive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

async function eventually(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not within ${timeoutMs} ms`);
}

/** The node whose log says it answered the call with this provider id (Twilio CallSid, SIP Call-ID). */
function answeredBy(info: UpInfo, providerId: string): string[] {
  return info.nodes.filter((n) => fs.readFileSync(n.log, 'utf8').split('\n').some((l) => l.includes(providerId) && /call answered/.test(l))).map((n) => n.id);
}

async function startCluster(): Promise<UpInfo> {
  const dataDir = tmpDir('sb-clup-');
  up = spawn(process.execPath, [BIN, 'cluster', 'up', '--nodes', '2', '--json'], {
    env: {
      ...process.env,
      SWITCHBOARD_DATA_DIR: dataDir,
      SWITCHBOARD_PROFILE: 'production',
      SWITCHBOARD_FSYNC_POLICY: 'periodic',
      SWITCHBOARD_LOG_LEVEL: 'info',
      SWITCHBOARD_ADMIN_TOKEN: ADMIN_TOKEN,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      SWITCHBOARD_STT: 'none',
      SWITCHBOARD_TTS: 'espeak',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  up.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise<UpInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cluster up did not come up:\n${err}`)), 240_000);
    up?.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line && out.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as UpInfo);
      }
    });
    up?.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cluster up exited ${code}:\n${err}`));
    });
  });
}

async function twilioCall(info: UpInfo): Promise<TwilioPeer> {
  const peer = new TwilioPeer({ publicUrl: info.http, authToken: TWILIO_TOKEN, to: TWILIO_NUMBER, from: '+15550001111', redirectRetryMs: 15_000 });
  peers.push(peer);
  const dial = await peer.dial();
  assert.equal(dial.kind, 'streaming', JSON.stringify(dial));
  await peer.waitFor(() => ulawEnergy(peer.receivedAudio()) > 200, 30_000, 'the disclosure and the agent are audible, not silence');
  return peer;
}

async function sipCall(info: UpInfo): Promise<{ callId: string; node: string }> {
  const port = Number(/:(\d+)$/.exec(info.sip)?.[1]);
  const run = await runSipp({ scenario: 'uac_proxied.xml', port, service: SIP_NUMBER.slice(1), timeoutS: 40 });
  assert.equal(run.code, 0, run.output);
  const ok = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*1 INVITE/i.test(m.text));
  assert.ok(ok, 'the INVITE was answered');
  assert.match(ok.text, /Record-Route:[^\n]*127\.0\.0\.1:\d+[^\n]*;lr/i, 'the 200 carries the proxy in Record-Route');
  const bye = run.messages.find((m) => m.dir === 'sent' && m.first.startsWith('BYE'));
  assert.ok(bye, 'sipp sent its BYE');
  assert.match(bye.text, /Route:[^\n]*;lr/i, 'the BYE follows the route set through Kamailio');
  const byeOk = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*2 BYE/i.test(m.text));
  assert.ok(byeOk, 'the node holding the dialog answered the BYE 200 (another node would say 481)');
  const callId = /^Call-ID:\s*(\S+)/im.exec(bye.text)?.[1] ?? '';
  const nodes = answeredBy(info, callId);
  assert.equal(nodes.length, 1, `one node answered ${callId}: ${nodes.join(', ')}`);
  return { callId, node: nodes[0]! };
}

test('cluster up --nodes 2: Twilio through HAProxy, SIP through Kamailio, a dead node is routed around, Ctrl-C leaves nothing', { timeout: 600_000 }, async () => {
  const info = await startCluster();
  assert.equal(info.nodes.length, 2);
  assert.match(info.http, /^http:\/\/127\.0\.0\.1:\d+$/);
  for (const pid of info.pids) assert.ok(alive(pid), `process ${pid} runs`);

  // Routes, written through HAProxy into the shared log.
  const policy = await api(info.http, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'This line is recorded.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  for (const [number, provider] of [[TWILIO_NUMBER, 'twilio'], [SIP_NUMBER, 'sip']] as const) {
    const r = await api(info.http, 'POST', '/v1/numbers', { body: { number, agent: 'default', consent_policy: 'short', provider } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  // Every node applies them from the log before it is asked to route a call.
  for (const n of info.nodes) {
    await eventually(`${n.id} has both numbers`, 30_000, async () => {
      const r = await api(n.http, 'GET', '/v1/numbers');
      return JSON.stringify(r.body).includes(TWILIO_NUMBER) && JSON.stringify(r.body).includes(SIP_NUMBER);
    });
  }

  // SIP through Kamailio, both nodes alive: answered by one node, the BYE reaches it.
  const first = await sipCall(info);
  await eventually('the SIP call ended by the BYE', 20_000, async () => {
    const r = await api(info.http, 'GET', '/v1/calls?limit=50');
    return /"end_reason":"sip:bye"/.test(JSON.stringify(r.body));
  });
  assert.ok(info.nodes.some((n) => n.id === first.node));

  // Twilio through HAProxy: the disclosure and the agent's greeting are heard.
  const a = await twilioCall(info);
  const owners = answeredBy(info, a.callSid);
  assert.equal(owners.length, 1, `one node answered ${a.callSid}`);
  const victim = info.nodes.find((n) => n.id === owners[0])!;
  const survivor = info.nodes.find((n) => n.id !== victim.id)!;
  await a.hangup();

  // Kill that node: the next calls go to the other one.
  process.kill(-victim.pid, 'SIGKILL');
  await eventually(`${victim.id} is gone`, 10_000, () => !alive(victim.pid));
  const b = await twilioCall(info);
  assert.deepEqual(answeredBy(info, b.callSid), [survivor.id], 'HAProxy sent the new Twilio call to the live node');
  await b.hangup();
  const second = await sipCall(info);
  assert.equal(second.node, survivor.id, 'Kamailio sent the new INVITE to the live node');

  // A second `cluster up` over the same dir while this one runs is refused (two NATS servers on one store dir).
  const again = spawnSync(process.execPath, [BIN, 'cluster', 'up', '--nodes', '1', '--dir', info.dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(again.status, 1, `${again.stdout}${again.stderr}`);
  assert.match(again.stderr, /processes of an earlier cluster over .* still run \(process groups \d+/);
  assert.ok(info.pids.filter((p) => p !== victim.pid).every(alive), 'the running cluster is untouched');

  // Ctrl-C: exit 0, and no process (nor a forked Kamailio worker) is left.
  const proc = up!;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGINT');
  assert.equal(await exited, 0);
  const left = info.pids.filter(alive);
  assert.deepEqual(left, [], 'every process group of the cluster is gone');
  assert.ok(!fs.existsSync(path.join(info.dir, 'pids.json')), 'the pid list is removed with the processes');
});
