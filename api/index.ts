/**
 * Mounts the control plane and compliance API (CONTRACT "Compliance and control API"), the console and the softphone
 * page; `GET /` redirects to the softphone. The `/v1` routes live in one encapsulated scope behind the cross-site request guard (`request-guard.ts`):
 * JSON bodies only, and cookie-authenticated state changes only from the gateway's own origin.
 */
import path from 'node:path';
import { mountConsole } from './console.ts';
import { mountPhone } from './phone.ts';
import type { ApiContext } from './context.ts';
import { requestGuard } from './request-guard.ts';
import { mountAdminRoutes } from './routes/admin.ts';
import { mountAgentRoutes } from './routes/agents.ts';
import { mountAgentPauseRoutes } from './routes/agent-pause.ts';
import { mountAuthRoutes } from './routes/auth.ts';
import { mountCallRoutes } from './routes/calls.ts';
import { mountEraseRoutes } from './routes/erase.ts';
import { mountClusterRoutes } from './routes/cluster.ts';
import { mountContentRoutes } from './routes/content.ts';
import { mountDialRoutes } from './routes/dial.ts';
import { mountToolApprovalRoutes } from './routes/tool-approvals.ts';
import { mountRecordingPauseRoutes } from './routes/recording-pause.ts';
import { mountCampaignRoutes } from './routes/campaigns.ts';
import { mountProviderAccountRoutes } from './routes/provider-accounts.ts';
import { mountSuperviseRoutes } from './routes/supervise.ts';
import type { HttpServer } from '../http/server.ts';

export async function mountApi(http: HttpServer, ctx: ApiContext): Promise<void> {
  await http.app.register(async (api) => {
    api.addHook('onRequest', requestGuard({ publicUrl: ctx.publicUrl }));
    mountAuthRoutes(api, ctx);
    mountAdminRoutes(api, ctx);
    mountCallRoutes(api, ctx);
    mountEraseRoutes(api, ctx);
    mountClusterRoutes(api, ctx);
    mountDialRoutes(api, ctx);
    mountContentRoutes(api, ctx);
    mountAgentRoutes(api, ctx);
    mountAgentPauseRoutes(api, ctx);
    mountToolApprovalRoutes(api, ctx);
    mountRecordingPauseRoutes(api, ctx);
    mountCampaignRoutes(api, ctx);
    mountProviderAccountRoutes(api, ctx);
    mountSuperviseRoutes(api, ctx);
  });
  mountConsole(http.app);
  await mountPhone(http.app, ctx.cacheDir ? path.join(ctx.cacheDir, 'phone') : undefined);
  // A newcomer opens the bare address first: send them to the softphone (which links the console).
  http.app.get('/', async (_req, reply) => reply.redirect('/phone', 302));
}
