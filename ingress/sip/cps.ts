/**
 * A SIP route has no carrier-documented rate of its own here (SWITCHBOARD_SIP_OUTBOUND sets none): a campaign
 * calling from a SIP number defaults to 1 call per second — the common trunk default (Twilio's Elastic SIP Trunking:
 * "1 CPS per trunk per region", https://www.twilio.com/docs/glossary/cps) — and says more when its trunk allows.
 */
export const OUTBOUND_CPS = 1;
