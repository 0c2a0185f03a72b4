/**
 * Column atoms and value lists the data model's table files share (schema/tables.ts, schema/call-tables.ts): ids,
 * times, text bounds, the call states, roles and provider names. Data only.
 */
import { z } from 'zod';

export const id = z.string().min(1).max(200);
export const ts = z.number().int().nonnegative();
export const tsOrNull = ts.nullable();
export const text = z.string().max(10_000);
export const CALL_STATES = ['ringing', 'answered', 'consenting', 'active', 'held', 'transferring', 'resuming', 'ended'] as const;
export type CallState = (typeof CALL_STATES)[number];
export const ROLES = ['admin', 'compliance', 'auditor', 'developer'] as const;
/** The built-in ingress adapters (ingress/adapters.ts), as data: the default set the API accepts for a number. */
export const PROVIDERS = ['twilio', 'vonage', 'sip', 'webrtc'] as const;
/**
 * A call's (or a number's) provider: the name of the ingress adapter it came through. Any name of the adapters'
 * pattern (ingress/port.ts ADAPTER_NAME) is valid data, not only the built-in four: a new adapter needs no schema
 * edit. A pattern rather than a list registered at start keeps reducers a function of the log alone: a replay
 * on a node that does not mount some adapter still accepts its calls. Which names a user may give a number is
 * the API's check, against the adapters this gateway mounts.
 */
export const ProviderName = z.string().regex(/^[a-z][a-z0-9-]{1,31}$/, 'a provider (ingress adapter) name: a lowercase letter, then letters, digits or -');
