/**
 * Vonage's documented outbound rate, the default pace of a campaign calling from a Vonage number: "The default
 * limit is 3 CPS … a cap on how many new outbound calls can be initiated within any rolling one-second window";
 * calls beyond it are refused (429), not queued (https://developer.vonage.com/en/voice/voice-api/concepts/cps-limit).
 */
export const OUTBOUND_CPS = 3;
