/**
 * Composition root: opens the store, mounts every HTTP surface, listens, and
 * shuts everything down in reverse order exactly once.
 */
import path from 'node:path';
import { defaultAgent } from '../agents/default-agent.ts';
import type { Agent } from '../agents/types.ts';
import { mountHealth } from '../api/health.ts';
import { HttpServer } from '../api/server.ts';
import { CallManager } from '../bridge/call-manager.ts';
import { mountTwilio } from '../ingress/twilio/index.ts';
import { MediaClock } from '../media/pacer.ts';
import { FsBlobStore } from '../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../recording/crypto.ts';
import { RecordingService } from '../recording/service.ts';
import { schema, type SwitchboardTables } from '../schema/index.ts';
import { Store, type Tables } from '../store/index.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { chooseSpeech } from './speech.ts';

export const DEFAULT_TENANT = 'default';

export interface Gateway {
  store: Store<SwitchboardTables>;
  recordings: RecordingService;
  calls: CallManager;
  clock: MediaClock;
  http: HttpServer;
  urls: { http: string; public: string };
  stop(): Promise<void>;
}

export async function startGateway(config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Gateway> {
  if (config.clusterNats) {
    throw new Error('SWITCHBOARD_CLUSTER_NATS is set, but cluster mode (JetStream log) is not built yet; unset it to run embedded');
  }
  if (config.durability.fsync === 'never') logger.warn('SWITCHBOARD_FSYNC_POLICY=never: committed commands can be lost on a crash; use only for tests');
  const store = Store.open({
    dataDir: config.dataDir,
    schema,
    durability: config.durability,
    node: config.node,
    onError: (err) => logger.error({ err }, 'store background error'),
  });
  logger.info({ dataDir: config.dataDir, node: store.node, head: store.head.seq, fsync: config.durability.fsync, profile: config.durability.profile }, 'store open');
  if (!store.read(null).tenants.get(DEFAULT_TENANT)) {
    await store.submit('tenant_created', { id: DEFAULT_TENANT, name: 'Default tenant' }, { tenant: DEFAULT_TENANT, caller: 'system:bootstrap', id: 'bootstrap:tenant:default' });
  }
  let ready = false;
  const clock = new MediaClock({ onError: (err) => logger.error({ err }, 'media clock listener failed') });
  clock.start();
  const agents = new Map<string, Agent>([[defaultAgent.name, defaultAgent]]);
  const recordings = new RecordingService({
    store,
    dataDir: config.dataDir,
    blobs: new FsBlobStore(config.dataDir),
    master: loadOrCreateMasterKey(config.dataDir),
    logger,
    ffmpegPath: env.SWITCHBOARD_FFMPEG || undefined,
  });
  recordings.start();
  const speech = await chooseSpeech(env, logger, path.join(config.dataDir, 'cache', 'tts'));
  const calls = new CallManager({
    recordings,
    store,
    clock,
    stt: speech.stt,
    tts: speech.tts,
    logger,
    resolveAgent: (name) => {
      const agent = name ? agents.get(name) : undefined;
      if (!agent && name) logger.warn({ agent: name }, 'unknown agent: the default agent answers');
      return agent ?? defaultAgent;
    },
  });
  const http = new HttpServer(logger);
  mountHealth(http.app, {
    store: store as unknown as Store<Tables>,
    ready: () => ready,
    node: store.node,
    metrics: () => [
      { name: 'switchboard_calls_active', help: 'Calls with live media on this node.', value: calls.size },
      { name: 'switchboard_media_streams', help: 'Outbound streams on the media clock.', value: clock.size },
      { name: 'switchboard_media_frames_sent_total', help: 'Outbound 20 ms frames sent.', value: clock.frameTotals().sent, type: 'counter' },
      { name: 'switchboard_media_frames_late_total', help: 'Outbound frames sent more than 40 ms after their slot.', value: clock.frameTotals().late, type: 'counter' },
      { name: 'switchboard_media_clock_slots_total', help: '20 ms slots run by the media clock.', value: clock.stats.slots, type: 'counter' },
      { name: 'switchboard_media_clock_skipped_slots_total', help: 'Slots skipped after a stall longer than 200 ms (audio delayed).', value: clock.stats.skippedSlots, type: 'counter' },
    ],
  });
  mountTwilio({
    http,
    store,
    calls,
    logger,
    publicUrl: config.publicUrl,
    authToken: env.TWILIO_AUTH_TOKEN || undefined,
    development: config.durability.profile === 'development',
  });
  let bound: { port: number; host: string };
  try {
    bound = await http.listen(config.httpPort, config.host);
  } catch (err) {
    clock.stop();
    recordings.stop();
    store.close();
    throw err;
  }
  ready = true;
  const host = bound.host === '0.0.0.0' || bound.host === '::' ? 'localhost' : bound.host;
  const urls = { http: `http://${host}:${bound.port}`, public: config.publicUrl };
  logger.info(
    {
      http: urls.http,
      publicUrl: urls.public,
      routes: { health: `${urls.http}/healthz`, ready: `${urls.http}/readyz`, metrics: `${urls.http}/metrics` },
    },
    `switchboard listening on ${urls.http}`,
  );
  let stopping: Promise<void> | null = null;
  return {
    store,
    recordings,
    calls,
    clock,
    http,
    urls,
    stop: () =>
      (stopping ??= (async () => {
        ready = false;
        calls.close();
        clock.stop();
        await http.close();
        await recordings.idle();
        recordings.stop();
        store.close();
        logger.info('switchboard stopped');
      })()),
  };
}
