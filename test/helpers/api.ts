/** A small client for the compliance API in tests: JSON in and out, bearer auth. */
import { ADMIN_TOKEN } from './gateway.ts';

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  raw: Buffer;
}

export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const raw = Buffer.from(await res.arrayBuffer());
  let body: unknown = raw;
  if ((res.headers.get('content-type') ?? '').includes('json')) body = raw.length ? JSON.parse(raw.toString('utf8')) : null;
  else if ((res.headers.get('content-type') ?? '').startsWith('text/')) body = raw.toString('utf8');
  return { status: res.status, headers: res.headers, body: body as T, raw };
}

/** Creates a user of `role` in the admin token's tenant and returns a token for them. */
export async function userToken(base: string, role: string, adminToken: string = ADMIN_TOKEN, email = `${role}-${Math.random().toString(36).slice(2, 8)}@example.com`): Promise<{ token: string; userId: string; email: string }> {
  const u = await api<{ id: string }>(base, 'POST', '/v1/users', { token: adminToken, body: { email, role, password: 'correct horse battery staple' } });
  if (u.status !== 201) throw new Error(`user create failed: ${u.status} ${JSON.stringify(u.body)}`);
  const t = await api<{ token: string }>(base, 'POST', '/v1/tokens', { token: adminToken, body: { name: `${role} test`, user_id: u.body.id } });
  if (t.status !== 201) throw new Error(`token create failed: ${t.status} ${JSON.stringify(t.body)}`);
  return { token: t.body.token, userId: u.body.id, email };
}
