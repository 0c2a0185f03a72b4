/**
 * The shared ingress suite (test/ingress-suite/) against the WebRTC ingress:
 * a werift client peer (Opus, RFC 4733, session-token resume) and the
 * gateway's werift, ICE on loopback only — inside a private network namespace
 * (helpers/netns.ts re-runs this file under `unshare -n`). Interoperability
 * with a real browser stays in webrtc.test.ts.
 */
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { runIngressSuite } from '../ingress-suite/suite.ts';
import { webrtcDriver } from '../ingress-suite/webrtc.ts';

if (insidePrivateNetwork(import.meta.filename, 300_000)) runIngressSuite(webrtcDriver);
