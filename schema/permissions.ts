/**
 * The permission matrix, in one place. The API checks it before a route runs;
 * reducers that touch content or identities (recording/transcript access,
 * users, tokens, holds) check it again, so the store refuses what the API
 * should never have let through.
 *
 * Content (recordings, transcripts, evidence) is for admin, compliance and
 * auditor; developers see call metadata and deploy agents but never hear or
 * read a call; auditors read everything but change nothing.
 */
import type { ROLES } from './tables.ts';

export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  'users:manage',
  'users:read',
  'tenants:manage',
  'numbers:read',
  'numbers:write',
  'policies:read',
  'policies:write',
  'calls:read',
  /** Place outbound (agent-initiated) calls: POST /v1/calls. */
  'calls:originate',
  /** Add numbers to and remove them from the tenant's do-not-call list (campaigns never dial a listed number). */
  'dnc:write',
  /** Set, see (redacted) and remove the tenant's provider accounts (PUT/GET/DELETE /v1/provider-accounts): admin only. */
  'provider_accounts:write',
  'content:read',
  'evidence:export',
  'holds:write',
  /** Erase a call's content (crypto-shredding): POST /v1/calls/:id/erase, by call or by subject. */
  'content:erase',
  'access_log:read',
  'audit:verify',
  'agents:read',
  'agents:deploy',
  /** See pending tool approvals (tool, arguments, call) and approve or deny them. */
  'tools:approve',
  /** Tighten a tool's requirement (consent, approval) for the tenant. */
  'tools:policy',
  /** Pause and resume a live call's recording and transcription (PCI capture): POST /v1/calls/:id/recording/pause|resume. */
  'recording:pause',
  /** Join a live call as its supervisor (listen, whisper, take over): POST /v1/calls/:id/supervise … (admin only). */
  'supervisor',
  'subscribe',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const ALL: readonly Permission[] = PERMISSIONS;

export const MATRIX: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(ALL),
  compliance: new Set<Permission>([
    'users:read', 'numbers:read', 'policies:read', 'policies:write', 'calls:read', 'content:read', 'evidence:export',
    'holds:write', 'content:erase', 'access_log:read', 'audit:verify', 'agents:read', 'tools:approve', 'tools:policy', 'recording:pause', 'subscribe', 'dnc:write',
  ]),
  auditor: new Set<Permission>([
    'users:read', 'numbers:read', 'policies:read', 'calls:read', 'content:read', 'evidence:export', 'access_log:read',
    'audit:verify', 'agents:read', 'subscribe',
  ]),
  developer: new Set<Permission>(['numbers:read', 'numbers:write', 'policies:read', 'calls:read', 'calls:originate', 'dnc:write', 'agents:read', 'agents:deploy', 'subscribe']),
};

export function can(role: Role, permission: Permission): boolean {
  return MATRIX[role].has(permission);
}

/** The tenant whose admins operate the deployment (create tenants). */
export const OPERATOR_TENANT = 'default';
