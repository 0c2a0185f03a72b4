/**
 * Twilio's documented outbound rate, the default pace of a campaign calling from a Twilio number: "By default each
 * account is granted 1 CPS for Programmable Voice API calls and 1 CPS per trunk per region for Elastic SIP
 * Trunking calls" (https://www.twilio.com/docs/glossary/cps). Accounts may raise it; a campaign may say more.
 */
export const OUTBOUND_CPS = 1;
