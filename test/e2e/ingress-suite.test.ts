/**
 * The shared ingress suite (test/ingress-suite/) against every adapter with a
 * driver: Twilio and Vonage. SIP and WebRTC have no driver yet (their peers —
 * sipp, Chromium — are external processes); see sip-sipp.test.ts and
 * webrtc.test.ts.
 */
import { runIngressSuite } from '../ingress-suite/suite.ts';
import { twilioDriver } from '../ingress-suite/twilio.ts';
import { vonageDriver } from '../ingress-suite/vonage.ts';

for (const driver of [twilioDriver, vonageDriver]) runIngressSuite(driver);
