/**
 * The end reason of an outbound call that was never answered, from the final
 * response (RFC 3261 §21): what an operator filters on (`sip:busy`,
 * `sip:declined`, …), not the status number alone.
 */
const BY_STATUS: Readonly<Record<number, string>> = {
  404: 'sip:not-found',
  604: 'sip:not-found',
  403: 'sip:declined',
  603: 'sip:declined',
  408: 'sip:timeout',
  480: 'sip:unavailable',
  486: 'sip:busy',
  600: 'sip:busy',
  487: 'sip:cancelled',
  488: 'sip:incompatible-media',
  606: 'sip:incompatible-media',
  401: 'sip:auth-failed',
  407: 'sip:auth-failed',
};

export function endReasonFor(status: number): string {
  const named = BY_STATUS[status];
  if (named) return named;
  if (status >= 300 && status < 400) return `sip:redirected-${status}`;
  if (status >= 500 && status < 600) return `sip:server-error-${status}`;
  return `sip:rejected-${status}`;
}
