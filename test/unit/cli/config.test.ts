/**
 * The configuration schema (cli/config/): defaults, the profile's defaults, a bad value naming its variable, CONTRACT
 * values accepted (SWITCHBOARD_TTS=none), and `switchboard config`'s rows: every variable, where its value came from,
 * secrets masked.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, loadStoreConfig } from '../../../cli/config/index.ts';
import { VARIABLE_NAMES, VARIABLES } from '../../../cli/config/schema.ts';
import { effectiveConfig, formatConfig, mask } from '../../../cli/config/show.ts';

test('defaults: an empty environment is the documented configuration', () => {
  const c = loadConfig({});
  assert.equal(c.http.port, 8080);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.http.publicUrl, 'http://localhost:8080');
  assert.equal(c.dataDir, path.resolve('./data'));
  assert.equal(c.profile, 'development');
  assert.equal(c.store.durability.fsync, 'periodic');
  assert.deepEqual(c.sip.rtpPorts, { low: 20000, high: 20999 });
  assert.equal(c.sip.port, 5060);
  assert.equal(c.sip.dialTimeoutMs, 60_000);
  assert.deepEqual(c.sip.trunk.rate, { rate: 50, burst: 100 });
  assert.equal(c.sip.outbound.size, 0);
  assert.deepEqual(c.admission, { maxCalls: 0, maxLoopLagMs: 0 });
  assert.equal(c.webrtc.demo, true);
  assert.equal(c.webrtc.resumeGraceMs, 60_000);
  assert.deepEqual({ stt: c.speech.stt, tts: c.speech.tts }, { stt: 'local', tts: 'espeak' });
  assert.equal(c.recording.retentionSweepMs, 60_000);
  assert.equal(c.providers.twilio.authToken, undefined);
  assert.equal(c.admin.token, undefined);
});

test('profile defaults: production syncs every batch and publishes no demo number; an explicit value wins', () => {
  const prod = loadConfig({ SWITCHBOARD_PROFILE: 'production' });
  assert.equal(prod.store.durability.fsync, 'always');
  assert.equal(prod.webrtc.demo, false);
  assert.equal(loadConfig({ SWITCHBOARD_PROFILE: 'balanced' }).store.durability.fsync, 'periodic');
  const explicit = loadConfig({ SWITCHBOARD_PROFILE: 'production', SWITCHBOARD_FSYNC_POLICY: 'periodic', SWITCHBOARD_WEBRTC_DEMO: 'on' });
  assert.equal(explicit.store.durability.fsync, 'periodic');
  assert.equal(explicit.webrtc.demo, true);
});

test('an empty value counts as unset', () => {
  const c = loadConfig({ SWITCHBOARD_HTTP_PORT: '', TWILIO_AUTH_TOKEN: '', SWITCHBOARD_SIP_RING_MS: '' });
  assert.equal(c.http.port, 8080);
  assert.equal(c.providers.twilio.authToken, undefined);
  assert.equal(c.sip.ringMs, 0);
});

test('a bad value is a ConfigError naming its variable and what is expected', () => {
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ SWITCHBOARD_HTTP_PORT: '99999' }, /SWITCHBOARD_HTTP_PORT: .*65535/],
    [{ SWITCHBOARD_PROFILE: 'fast' }, /SWITCHBOARD_PROFILE: .*development/],
    [{ SWITCHBOARD_FSYNC_POLICY: 'sometimes' }, /SWITCHBOARD_FSYNC_POLICY: .*always/],
    [{ SWITCHBOARD_RTP_PORTS: '20001-20999' }, /SWITCHBOARD_RTP_PORTS: .*even LOW/],
    [{ SWITCHBOARD_MAX_CALLS: 'lots' }, /SWITCHBOARD_MAX_CALLS must be a whole number ≥ 0/],
    [{ SWITCHBOARD_AGENT_SILENCE_MS: 'soon' }, /SWITCHBOARD_AGENT_SILENCE_MS: expected a whole number of milliseconds/],
    [{ SWITCHBOARD_SIP_RING_MS: '-5' }, /SWITCHBOARD_SIP_RING_MS: expected a whole number of milliseconds ≥ 0/],
    [{ SWITCHBOARD_WEBRTC_RESUME_GRACE_MS: '0' }, /SWITCHBOARD_WEBRTC_RESUME_GRACE_MS: .*> 0/],
    [{ SWITCHBOARD_STT: 'whisper' }, /SWITCHBOARD_STT must be auto, deepgram, pocketsphinx or none/],
    [{ SWITCHBOARD_TTS: 'polly' }, /SWITCHBOARD_TTS must be auto, deepgram, espeak or none/],
    [{ SWITCHBOARD_SIP_RATE: 'fast' }, /SWITCHBOARD_SIP_RATE: /],
    [{ SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY: '11' }, /SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY: .*0 to 10/],
    [{ SWITCHBOARD_NODE: 'a', SWITCHBOARD_NODE_ID: 'b' }, /SWITCHBOARD_NODE_ID: b differs from SWITCHBOARD_NODE a/],
    [{ SWITCHBOARD_CLUSTER_NATS: 'http://10.0.0.1:4222' }, /SWITCHBOARD_CLUSTER_NATS: expected comma-separated NATS URLs/],
    [{ SWITCHBOARD_CLUSTER_NATS: 'nats://a:4222,nats://:bad' }, /SWITCHBOARD_CLUSTER_NATS: expected comma-separated NATS URLs like .*"nats:\/\/:bad"/],
    [{ SWITCHBOARD_CLUSTER_NATS: ' , ' }, /SWITCHBOARD_CLUSTER_NATS: expected comma-separated NATS URLs/],
    [{ SWITCHBOARD_CLUSTER_REPLICAS: '7' }, /SWITCHBOARD_CLUSTER_REPLICAS: expected 1–5/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env));
  }
});

test('two bad values are both named', () => {
  assert.throws(() => loadConfig({ SWITCHBOARD_HTTP_PORT: 'x', SWITCHBOARD_LOG_LEVEL: 'loud' }), /SWITCHBOARD_HTTP_PORT[\s\S]*SWITCHBOARD_LOG_LEVEL/);
});

test('SWITCHBOARD_TTS=none (CONTRACT) is accepted: no speech synthesis', () => {
  assert.equal(loadConfig({ SWITCHBOARD_TTS: 'none' }).speech.tts, 'none');
  assert.equal(loadConfig({ SWITCHBOARD_TTS: 'NONE', SWITCHBOARD_STT: 'none' }).speech.stt, 'none');
});

test('SWITCHBOARD_NODE_ID (CONTRACT) names the node as SWITCHBOARD_NODE does', () => {
  assert.equal(loadConfig({ SWITCHBOARD_NODE_ID: 'edge-1' }).store.node, 'edge-1');
  assert.equal(loadConfig({ SWITCHBOARD_NODE: 'edge-1', SWITCHBOARD_NODE_ID: 'edge-1' }).store.node, 'edge-1');
});

test('SWITCHBOARD_CLUSTER_NATS turns cluster mode on: its URLs and the stream replicas; unset is embedded', () => {
  assert.equal(loadConfig({}).store.cluster, undefined);
  assert.deepEqual(loadConfig({ SWITCHBOARD_CLUSTER_NATS: 'nats://10.0.0.1:4222, tls://nats.example:4222,10.0.0.3:4222' }).store.cluster, {
    servers: ['nats://10.0.0.1:4222', 'tls://nats.example:4222', '10.0.0.3:4222'],
    replicas: 3,
    variable: 'SWITCHBOARD_CLUSTER_NATS',
  });
  assert.equal(loadConfig({ SWITCHBOARD_CLUSTER_NATS: 'nats://127.0.0.1:4222', SWITCHBOARD_CLUSTER_REPLICAS: '1' }).store.cluster?.replicas, 1);
});

test('the offline commands check only the store variables: a bad speech setting does not stop verify', () => {
  const c = loadStoreConfig({ SWITCHBOARD_DATA_DIR: '/tmp/x', SWITCHBOARD_STT: 'whisper', SWITCHBOARD_PROFILE: 'production' });
  assert.equal(c.dataDir, '/tmp/x');
  assert.equal(c.durability.fsync, 'always');
  assert.throws(() => loadStoreConfig({ SWITCHBOARD_FSYNC_POLICY: 'x' }), /SWITCHBOARD_FSYNC_POLICY/);
});

test('switchboard config: every variable, its source, secrets masked', () => {
  const env = {
    SWITCHBOARD_PROFILE: 'production',
    SWITCHBOARD_HTTP_PORT: '9090',
    SWITCHBOARD_ADMIN_TOKEN: 'sbk_supersecret-admin-token-WXYZ',
    TWILIO_AUTH_TOKEN: 'tw-secret-0123456789abcd',
    DEEPGRAM_API_KEY: 'short',
    SWITCHBOARD_WEBRTC_ICE_SERVERS: '[{"urls":"turn:t.example.com","username":"u","credential":"hunter2-hunter2-hunter2"}]',
  };
  const rows = effectiveConfig(env);
  assert.deepEqual(rows.map((r) => r.name), VARIABLE_NAMES, 'every variable, in schema order');
  const row = (name: string) => rows.find((r) => r.name === name)!;
  assert.deepEqual({ value: row('SWITCHBOARD_HTTP_PORT').value, source: row('SWITCHBOARD_HTTP_PORT').source }, { value: '9090', source: 'env' });
  assert.deepEqual({ value: row('SWITCHBOARD_SIP_PORT').value, source: row('SWITCHBOARD_SIP_PORT').source }, { value: '5060', source: 'default' });
  assert.deepEqual({ value: row('SWITCHBOARD_FSYNC_POLICY').value, source: row('SWITCHBOARD_FSYNC_POLICY').source }, { value: 'always', source: 'profile' });
  assert.equal(row('SWITCHBOARD_ADMIN_TOKEN').value, '****WXYZ');
  assert.equal(row('DEEPGRAM_API_KEY').value, '****', 'a short secret shows nothing of itself');
  const text = formatConfig(rows, 'production');
  const json = JSON.stringify(rows);
  for (const out of [text, json]) {
    for (const secret of ['supersecret', 'tw-secret', 'short', 'hunter2']) assert.doesNotMatch(out, new RegExp(secret), `${secret} is not printed`);
  }
  assert.match(text, /^SWITCHBOARD_FSYNC_POLICY +always +profile production$/m);
  assert.match(text, /^SWITCHBOARD_HTTP_PORT +9090 +env$/m);
  assert.match(text, /^# speech$/m);
});

test('every token, secret, password or key in the schema is masked', () => {
  for (const name of VARIABLE_NAMES) {
    if (/TOKEN|SECRET|PASSWORD|_KEY$/.test(name)) assert.equal((VARIABLES[name] as { secret?: boolean }).secret, true, name);
  }
  assert.equal(mask('0123456789abcdefWXYZ'), '****WXYZ');
});

test('switchboard config refuses a bad value as start does', () => {
  assert.throws(() => effectiveConfig({ SWITCHBOARD_FSYNC_POLICY: 'sometimes' }), (err: unknown) => err instanceof ConfigError && /SWITCHBOARD_FSYNC_POLICY/.test(err.message));
});
