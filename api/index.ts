/** Mounts the control plane and compliance API (CONTRACT "Compliance and control API"), the console and the softphone page. */
import { mountConsole } from './console.ts';
import { mountPhone } from './phone.ts';
import type { ApiContext } from './context.ts';
import { mountAdminRoutes } from './routes/admin.ts';
import { mountAgentRoutes } from './routes/agents.ts';
import { mountAuthRoutes } from './routes/auth.ts';
import { mountCallRoutes } from './routes/calls.ts';
import { mountContentRoutes } from './routes/content.ts';
import { mountDialRoutes } from './routes/dial.ts';
import type { HttpServer } from './server.ts';

export async function mountApi(http: HttpServer, ctx: ApiContext): Promise<void> {
  mountAuthRoutes(http.app, ctx);
  mountAdminRoutes(http.app, ctx);
  mountCallRoutes(http.app, ctx);
  mountDialRoutes(http.app, ctx);
  mountContentRoutes(http.app, ctx);
  mountAgentRoutes(http.app, ctx);
  mountConsole(http.app);
  await mountPhone(http.app);
}
