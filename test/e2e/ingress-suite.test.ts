/**
 * The shared ingress suite (test/ingress-suite/) against the webhook adapters:
 * Twilio and Vonage. SIP and WebRTC run the same suite from their own files
 * (ingress-suite-sip.test.ts; ingress-suite-webrtc.test.ts, which re-runs
 * itself in a private network namespace for ICE), so the four run in parallel.
 */
import { runIngressSuite } from '../ingress-suite/suite.ts';
import { twilioDriver } from '../ingress-suite/twilio.ts';
import { vonageDriver } from '../ingress-suite/vonage.ts';

for (const driver of [twilioDriver, vonageDriver]) runIngressSuite(driver);
