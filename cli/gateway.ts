/**
 * Composition root: opens the store, mounts every HTTP surface, listens, and
 * shuts everything down in reverse order exactly once. The bootstrap admin's
 * token is made only after HTTP, SIP and the RTP range listen (a start that
 * fails on a port loses no token); a listen failure is one line naming its
 * variable (cli/listen-errors.ts). The CLI shows the token (cli/banner.ts).
 * `drain` (bridge/drain.ts) takes the node out of service gently: new calls refused busy, live calls finish,
 * then the same stop, recording the node `stopped`.
 */
import { loadVad } from '../media/vad-factory.ts';
import { startTracer } from '../telemetry/tracing.ts';
import fs from 'node:fs';
import path from 'node:path';
import { defaultAgent } from '../agents/default-agent.ts';
import { loadConfigTools } from '../agents/config-tools.ts';
import { AgentRegistry } from '../agents/registry.ts';
import type { Agent } from '../agents/types.ts';
import { BOOTSTRAP_EMAIL, bootstrapAdmin } from '../api/auth/bootstrap.ts';
import type { ApiContext } from '../api/context.ts';
import { mountHealth } from '../api/health.ts';
import { mountApi } from '../api/index.ts';
import { GatewayMetrics } from '../api/metrics.ts';
import { CallAdmission, LoopLag } from '../bridge/admission.ts';
import { RefusalLog } from '../bridge/refusals.ts';
import { mountSubscriptions } from '../api/subscribe.ts';
import { HttpServer } from '../http/server.ts';
import { CallControl } from '../bridge/call-control.ts';
import { CallManager } from '../bridge/call-manager.ts';
import { SupervisorDesk } from '../bridge/supervisor-desk.ts';
import { HumanLegs } from '../bridge/human-legs.ts';
import { NodeDrain } from '../bridge/drain.ts';
import { CampaignRunner } from '../campaigns/scheduler.ts';
import { NodeOwnership } from '../bridge/ownership.ts';
import { builtinAdapters, outboundCallsPerSecond, sipIngress, type SipIngress } from '../ingress/adapters.ts';
import { DialRouter } from '../ingress/dial-router.ts';
import { HoldAudio } from '../bridge/hold-audio.ts';
import { ADAPTER_NAME, type IngressAdapter, type IngressHost, type IngressRecords, type MountedIngress } from '../ingress/port.ts';
import { MediaClock } from '../media/pacer.ts';
import { FsBlobStore } from '../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../recording/crypto.ts';
import { ContentKeyring } from '../recording/content-keys.ts';
import { ContentSealer } from '../recording/content-seal.ts';
import { ContentEraser } from '../bridge/content-erase.ts';
import { plainContent } from './migrate.ts';
import { RecordingService } from '../recording/service.ts';
import { schema, type SwitchboardTables } from '../schema/index.ts';
import { clusterBlobStore, Store, StoreError, type Tables } from '../store/index.ts';
import { ConfigError, type Config } from './config/index.ts';
import { listenError, mountError } from './listen-errors.ts';
import { droppedLogLines, type Logger } from './logger.ts';
import { endCallsLeftByFault } from '../bridge/fault-recovery.ts';
import type { StoreFault } from '../store/index.ts';
import { chooseSpeech } from './speech.ts';
import { tenant_created } from '../schema/reducers.ts';
import { CLUSTER_LEVEL_ID, levelAbove, levelRefusal } from '../schema/log-level.ts';

export const DEFAULT_TENANT = 'default';

/** The gateway's version (package.json), recorded on this node's row. */
const VERSION = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** `disk full (SQLITE_FULL: database or disk is full)`; cluster mode: `cluster log unavailable (no quorum: …)`. */
function faultText(f: StoreFault): string {
  const what = { disk_full: 'disk full', io_error: 'I/O error', busy: 'busy', log_unavailable: 'cluster log unavailable' }[f.kind];
  return `${what} (${f.reason})`;
}

export interface Gateway {
  store: Store<SwitchboardTables>;
  agents: AgentRegistry;
  recordings: RecordingService;
  calls: CallManager;
  clock: MediaClock;
  http: HttpServer;
  /** SIP trunk ingress (UDP + TCP on SWITCHBOARD_SIP_PORT, RTP from SWITCHBOARD_RTP_PORTS). */
  sip: SipIngress;
  /** Every mounted ingress adapter, by name, in mount order (ingress/adapters.ts, then `options.adapters`). */
  ingress: ReadonlyMap<string, MountedIngress>;
  /** What the adapters do to calls (bridge/call-control.ts). */
  control: CallControl;
  /** This node's row, heartbeat, media hold and fencing (bridge/ownership.ts). */
  ownership: NodeOwnership;
  /** Refused calls, counted per source and window (bridge/refusals.ts); `flush()` ends the window now. */
  refusals: RefusalLog;
  /** Draining (SIGTERM, POST /v1/cluster/drain): `start()` begins it; `done` resolves once the gateway stopped. */
  drain: NodeDrain;
  /**
   * Resolves (with the line to stop with) if the cluster's log level rises above this build's while it runs
   * (schema/log-level.ts): the caller stops the gateway and exits 2.
   */
  logLevelAbove: Promise<string>;
  urls: { http: string; public: string };
  /**
   * The bootstrap admin: `token` is the one generated at this start (only its hash is stored; the CLI shows it
   * once, cli/banner.ts), null when one existed already or comes from SWITCHBOARD_ADMIN_TOKEN (`fromEnv`).
   */
  admin: { email: string; token: string | null; fromEnv: boolean };
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** Ingress adapters mounted after the built-in ones (a test's own provider, test/fixtures/fake-provider/). */
  adapters?: readonly IngressAdapter[];
}

/** The adapters to mount: names unique and of the adapters' pattern (they are stored as a call's provider). */
function adapterList(builtin: IngressAdapter[], extra: readonly IngressAdapter[]): IngressAdapter[] {
  const all = [...builtin, ...extra];
  const seen = new Set<string>();
  for (const a of all) {
    if (!ADAPTER_NAME.test(a.name)) throw new Error(`ingress adapter name ${JSON.stringify(a.name)} does not match ${ADAPTER_NAME}`);
    if (seen.has(a.name)) throw new Error(`two ingress adapters are named ${a.name}`);
    seen.add(a.name);
  }
  return all;
}

/** Starts the gateway from `config` (cli/config/: parsed once by the caller); each module gets its section. */
function loadHoldAudio(text: string | undefined): HoldAudio {
  try {
    return HoldAudio.load(text);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

export async function startGateway(config: Config, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  // Start-up phases, ms since the process started (logged with "listening"; bench/restart.bench.ts reads them).
  const startup = { loaded: Math.round(performance.now()), storeOpen: 0, listening: 0 };
  const configTools = loadConfigTools(config.agents.toolsFile);
  // The hold WAVs are checked before anything opens: a bad file stops the start naming the variable (exit 2).
  const holdAudio = loadHoldAudio(config.agents.holdAudio);
  if (config.agents.holdAudio) logger.info({ hold: holdAudio.describe() }, 'hold audio for transfers: SWITCHBOARD_HOLD_AUDIO');
  const limits = config.admission;
  if (config.store.durability.fsync === 'never') logger.warn('SWITCHBOARD_FSYNC_POLICY=never: committed commands can be lost on a crash; use only for tests');
  // Everything this process (and ffmpeg, its child) creates is private to its user, whatever umask it was started
  // with; the store also sets explicit modes and tightens a data dir left looser (store/permissions.ts).
  process.umask(0o077);
  const metrics = new GatewayMetrics();
  const storeOptions = {
    dataDir: config.dataDir,
    schema,
    durability: config.store.durability,
    node: config.store.node,
    onError: (err: unknown) => logger.error({ err }, 'store background error'),
    onCommit: (info: { commands: number; ms: number }) => metrics.observeCommit(info),
  };
  // Cluster mode (SWITCHBOARD_CLUSTER_NATS): the same store on the JetStream log, caught up before anything is served.
  const cluster = config.store.cluster;
  const store = cluster ? await Store.openCluster({ ...storeOptions, cluster: { ...cluster, variable: 'SWITCHBOARD_CLUSTER_NATS' } }) : Store.open(storeOptions);
  startup.storeOpen = Math.round(performance.now());
  if (!cluster && store.logPosition > 0) {
    const refusal = store.clusterCopy();
    store.close();
    throw refusal;
  }
  // Caught up: a log already at a level above this build's would be applied the old way from here on (a fork).
  const level = store.read(null).log_levels.get(CLUSTER_LEVEL_ID);
  if (level && levelAbove(level)) {
    store.close();
    await store.whenClosed();
    throw new StoreError('log_inconsistent', levelRefusal(store.node, level));
  }
  logger.info(
    { dataDir: config.dataDir, node: store.node, head: store.head.seq, fsync: config.store.durability.fsync, profile: config.store.durability.profile, log: store.logKind, ...(cluster ? { nats: cluster.servers, streamSeq: store.logPosition } : {}) },
    'store open',
  );
  if (store.tightened.length > 0) {
    logger.warn({ paths: store.tightened.slice(0, 50), count: store.tightened.length }, `data dir permissions tightened: ${store.tightened.length} path(s) were readable by other users (now 0700 dirs, 0600 files)`);
  }
  if (!store.read(null).tenants.get(DEFAULT_TENANT)) {
    await store.submit(tenant_created, { id: DEFAULT_TENANT, name: 'Default tenant' }, { tenant: DEFAULT_TENANT, caller: 'system:bootstrap', id: 'bootstrap:tenant:default' });
  }
  // Recordings (and, in cluster mode, agent bundles): the data dir's files, or the cluster's object store.
  const blobs = cluster ? await clusterBlobStore(store).catch((err: unknown) => (store.close(), Promise.reject(err))) : new FsBlobStore(config.dataDir);
  const master = loadOrCreateMasterKey(config.dataDir);
  // Content is sealed with its call's key before it is submitted; the keys live in the blob store, outside the log.
  const content = new ContentSealer(store, new ContentKeyring(blobs, master), logger.child({ component: 'content' }));
  content.install();
  // A data dir from before sealing: its log holds plain content that erasure cannot reach (cli/migrate.ts).
  // Scanned once: a clean log leaves a marker (every later command is sealed by the submit path).
  const sealedMarker = path.join(config.dataDir, 'keys', 'content-sealed');
  const plain = cluster || fs.existsSync(sealedMarker) ? 0 : plainContent(store, 1);
  if (plain === 0 && !cluster && !fs.existsSync(sealedMarker)) fs.writeFileSync(sealedMarker, 'content sealed from the first event (cli/migrate.ts)\n', { mode: 0o600 });
  if (plain > 0) logger.warn({ dataDir: config.dataDir }, `this data dir's log holds content written before content sealing, which erasure cannot remove: stop the gateway and run \`switchboard migrate --data-dir ${config.dataDir}\``);
  let ready = false;
  // Four 5 ms phases: each call keeps its 20 ms cadence, and a tick sends for a quarter of the calls, not all of them.
  // Cluster mode: outgoing media waits while this node's lease is not known to be renewed (bridge/ownership.ts).
  let ownership: NodeOwnership | null = null;
  const clock = new MediaClock({ phases: 4, gate: () => ownership?.mayTransmit() ?? true, onError: (err) => logger.error({ err }, 'media clock listener failed') });
  clock.start();
  const agents = new AgentRegistry({
    store,
    dataDir: config.dataDir,
    ...(cluster ? { bundles: blobs } : {}),
    logger: logger.child({ component: 'agents' }),
    builtins: new Map<string, Agent>([[defaultAgent.name, defaultAgent]]),
    fallback: defaultAgent,
    initTimeoutMs: config.agents.initTimeoutMs,
    turnTimeoutMs: config.agents.turnTimeoutMs,
  });
  // Started now, awaited just before the node says it is ready: the agent workers (threads) and the speech probes
  // (a child process) run while the rest starts, not in a row before it.
  const agentsStarted = agents.start();
  agentsStarted.catch(() => undefined);
  const speechChosen = chooseSpeech(config.speech, logger, path.join(config.dataDir, 'cache', 'tts'));
  speechChosen.catch(() => undefined);
  await endCallsLeftByFault(store, logger);
  const recordings = new RecordingService({
    store,
    dataDir: config.dataDir,
    blobs,
    master,
    logger,
    ffmpegPath: config.recording.ffmpegPath,
    retentionSweepMs: config.recording.retentionSweepMs,
    cluster: Boolean(cluster),
  });
  recordings.start();
  const eraser = new ContentEraser({ store, content, deleteMedia: (row) => recordings.deleteMedia(row), logger });
  eraser.start(config.recording.retentionSweepMs ?? 60_000);
  const speech = await speechChosen;
  // The silero VAD imports onnxruntime and its model here, only when chosen (the energy VAD loads nothing).
  const vad = await loadVad(config.speech.vad);
  if (vad.kind !== 'energy') logger.info({ vad: vad.kind }, 'voice activity detection: silero (onnxruntime)');
  const tracer = await startTracer({ endpoint: config.telemetry.otlpEndpoint, node: store.node, version: VERSION });
  if (tracer.enabled) logger.info({ endpoint: config.telemetry.otlpEndpoint }, 'tracing: one trace per call, exported over OTLP/HTTP');
  // Warm transfers (bridge/transfer-warm.ts) dial the human through the adapters' dial router, set once they listen.
  const humans = new HumanLegs();
  const transferDialer = {
    dial: (r: { tenant: string; caller: string; from: string; to: string }) => {
      if (!api.dialer) return Promise.reject(new Error('outbound dialing is not ready'));
      return api.dialer.dial(r);
    },
    cancel: (callId: string, reason: string) => void api.dialer?.cancel?.(callId, reason),
  };
  const calls = new CallManager({
    humans,
    transferDialer,
    holdAudio,
    tracer,
    recordings,
    store,
    clock,
    stt: speech.stt,
    tts: speech.tts,
    logger,
    agents,
    silenceMs: config.agents.silenceMs,
    vad,
    toolApproval: config.agents.toolApproval,
    configTools,
  });
  let onLevelAbove: (line: string) => void = () => undefined;
  const logLevelAbove = new Promise<string>((resolve) => (onLevelAbove = resolve));
  ownership = new NodeOwnership({ store, sessions: calls, cluster: Boolean(cluster), leaseMs: config.ownership.leaseMs, version: VERSION, logger, onLevelAbove: (line) => onLevelAbove(line) });
  await ownership.start();
  const loopLag = limits.maxLoopLagMs > 0 ? new LoopLag(1000, { onError: (err) => logger.error({ err }, 'event loop delay reading failed') }) : null;
  // Set below, once stop() exists; admission and /readyz ask it from the start.
  let drain: NodeDrain | null = null;
  const admission = new CallAdmission({ ...limits, live: calls, draining: () => drain?.active === true, ...(loopLag ? { loopLagMs: () => loopLag.p99Ms } : {}), storeFault: () => (store.health ? faultText(store.health) : null) });
  store.onHealth((fault) => {
    if (fault) {
      const writes = fault.kind === 'log_unavailable' ? 'writes are refused until the log has a quorum again' : 'writes wait and are retried';
      logger.error({ fault: fault.kind, detail: fault.reason }, `store cannot write (${faultText(fault)}): new calls get the busy answer, live calls continue unrecorded, ${writes}`);
      recordings.abortAll(`store unavailable: ${faultText(fault)}`);
    } else logger.warn('store writes again: the waiting commands committed; new calls are admitted');
  });
  calls.onAttached((callId) => admission.attached(callId));
  if (admission.enabled) logger.info({ ...limits }, 'admission control on: new calls beyond these limits get a busy answer');
  const refusals = new RefusalLog(store, { logger });
  const control = new CallControl({ store, sessions: calls, admission, refusals, logger, humans });
  const adapters = adapterList(
    builtinAdapters({
      publicUrl: config.http.publicUrl,
      development: config.profile === 'development',
      host: config.host,
      twilioAuthToken: config.providers.twilio.authToken,
      vonageSignatureSecret: config.providers.vonage.signatureSecret,
      accounts: config.providers.accounts,
      sip: config.sip,
      webrtc: config.webrtc,
    }),
    options.adapters ?? [],
  );
  const http = new HttpServer(logger);
  metrics.attach({
    callsActive: () => calls.size,
    mediaStreams: () => clock.size,
    frames: () => clock.frameTotals(),
    clock: () => clock.stats,
    tickTimes: () => clock.tickTimes,
    storeHeadSeq: () => store.head.seq,
    subscriptions: () => store.subscriberCount,
    storeUnavailable: () => (store.health ? 1 : 0),
    logLinesDropped: droppedLogLines,
  });
  mountHealth(http.app, { store: store as unknown as Store<Tables>, ready: () => ready, draining: () => drain?.active === true, node: store.node, metrics, logLinesDropped: droppedLogLines });
  const api: ApiContext = {
    store,
    logger,
    blobs,
    master,
    content,
    eraser,
    now: Date.now,
    ffmpegPath: config.recording.ffmpegPath,
    publicUrl: config.http.publicUrl,
    agents,
    providers: adapters.map((a) => a.name),
    cacheDir: path.join(config.dataDir, 'cache'),
  };
  await mountApi(http, api);
  const subscriptions = mountSubscriptions(http, api);
  let listening = false;
  const ingressHost: IngressHost = {
    http: {
      register: async (plugin) => {
        if (listening) throw new Error('HTTP routes are registered before the server listens (an adapter of stage `sockets` has none)');
        await http.app.register(plugin);
      },
      onUpgrade: (path, handler) => http.onUpgrade(path, handler),
    },
    calls: control,
    store: { read: (tenant) => store.read(tenant), node: store.node },
    records: { submit: (reducer, args, who) => store.submit(reducer, args, who) } satisfies IngressRecords,
    grants: subscriptions,
    logger,
    dataDir: config.dataDir,
  };
  const mounted = new Map<string, MountedIngress>();
  /** Closes what is mounted, last first (shutdown, or a start that failed half-way). */
  const closeIngress = async (): Promise<void> => {
    for (const m of [...mounted.values()].reverse()) await m.close();
  };
  const giveUp = async (): Promise<void> => {
    await ownership?.stop();
    await closeIngress().catch((err: unknown) => logger.warn({ err }, 'closing ingress adapters failed'));
    await http.close();
    clock.stop();
    recordings.stop();
    eraser.stop();
    store.close();
  };
  const mountStage = async (stage: 'routes' | 'sockets'): Promise<void> => {
    for (const adapter of adapters.filter((a) => (a.stage ?? 'routes') === stage)) {
      try {
        mounted.set(adapter.name, await adapter.mount(ingressHost));
      } catch (err) {
        await giveUp();
        throw mountError(err);
      }
    }
  };
  await mountStage('routes');
  // Supervisors join live calls from the browser (bridge/supervisor-desk.ts) through the adapter that takes browsers.
  api.supervise = new SupervisorDesk({ store, calls, logger, browser: () => [...mounted.values()].find((m) => m.browserLegs)?.browserLegs ?? null });
  let bound: { port: number; host: string };
  try {
    bound = await http.listen(config.http.port, config.host);
  } catch (err) {
    await closeIngress().catch(() => undefined);
    clock.stop();
    recordings.stop();
    eraser.stop();
    store.close();
    throw listenError(err, config.host, config.http.port);
  }
  listening = true;
  await mountStage('sockets');
  const sip = sipIngress(mounted);
  if (!sip) {
    await giveUp();
    throw new Error('the SIP ingress is not mounted');
  }
  // The admin token is made only once every port listens: a start that fails on a port loses no token.
  let adminToken: string | null;
  try {
    adminToken = await bootstrapAdmin(store, config.admin.token, logger);
  } catch (err) {
    await giveUp();
    throw err;
  }
  api.dialer = new DialRouter(new Map([...mounted].flatMap(([name, m]) => (m.dialer ? [[name, m.dialer] as const] : []))), { read: store.read.bind(store), node: store.node });
  // Campaigns run on the node that created them (campaigns/scheduler.ts), through the dialer the adapters offer.
  const campaigns = new CampaignRunner({ store, dialer: () => api.dialer, logger, hold: () => drain?.active === true });
  api.campaigns = { runner: campaigns, callsPerSecond: outboundCallsPerSecond };
  try {
    await agentsStarted;
  } catch (err) {
    await giveUp();
    throw err;
  }
  ready = true;
  await campaigns.start();
  const host = bound.host === '0.0.0.0' || bound.host === '::' ? 'localhost' : bound.host;
  const urls = { http: `http://${host}:${bound.port}`, public: config.http.publicUrl };
  startup.listening = Math.round(performance.now());
  logger.info(
    {
      startupMs: startup,
      http: urls.http,
      publicUrl: urls.public,
      routes: { api: `${urls.http}/v1`, console: `${urls.http}/console`, health: `${urls.http}/healthz`, ready: `${urls.http}/readyz`, metrics: `${urls.http}/metrics` },
    },
    `switchboard listening on ${urls.http}`,
  );
  // What the adapters import on first use (heavy packages kept out of the start), loaded now in the background
  // (`warm()`, ingress/port.ts), one adapter after the other in the adapters' order: the restart does not wait for it.
  // prom-client (api/metrics.ts) last: a scrape before it is in loads it itself.
  void (async () => {
    for (const [name, m] of mounted) await m.warm?.().catch((err: unknown) => logger.warn({ err, ingress: name }, 'loading an adapter\'s packages in the background failed'));
    await metrics.warm().catch((err: unknown) => logger.warn({ err }, 'loading prom-client in the background failed'));
  })();
  let stopping: Promise<void> | null = null;
  /** Stops once; `drained` (the end of a drain) records the node stopped in embedded mode too. */
  const stop = (reason = 'shutdown', drained = false): Promise<void> =>
    (stopping ??= (async () => {
      ready = false;
      // Cluster mode: recorded stopped, its lease ended, so another node may take the calls it leaves at once.
      campaigns.stop();
      await ownership?.stop(reason, drained);
      subscriptions.close();
      calls.close();
      await closeIngress();
      agents.close();
      clock.stop();
      loopLag?.stop();
      metrics.close();
      await http.close();
      await refusals.close(); // the window's counts, before the store closes
      // Finalizations in flight get a bounded wait; one cut short is redone at the next start.
      const idle = await Promise.race([recordings.idle().then(() => true), new Promise<boolean>((r) => setTimeout(r, 15_000, false).unref())]);
      if (!idle) logger.warn('recordings still finalizing at shutdown: they are finalized at the next start');
      recordings.stop();
      eraser.stop();
      await tracer.shutdown().catch((err: unknown) => logger.warn({ err }, 'traces not flushed'));
      store.close();
      await store.whenClosed(); // cluster mode: the NATS connection closed
      logger.info('switchboard stopped');
    })());
  const own = ownership;
  drain = new NodeDrain({
    markDraining: (timeoutMs) => own.drain(timeoutMs),
    live: calls,
    ended: (callId) => (store.read(null).calls.get(callId)?.state ?? 'ended') === 'ended',
    cluster: Boolean(cluster),
    timeoutMs: config.ownership.drainTimeoutMs,
    stop: (reason) => stop(reason, true),
    logger,
  });
  api.drain = drain;
  return {
    store,
    agents,
    recordings,
    calls,
    clock,
    http,
    sip,
    ingress: mounted,
    control,
    ownership,
    refusals,
    urls,
    admin: { email: BOOTSTRAP_EMAIL, token: adminToken, fromEnv: Boolean(config.admin.token) },
    drain,
    logLevelAbove,
    stop: () => stop(),
  };
}
