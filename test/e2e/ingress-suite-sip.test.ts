/**
 * The shared ingress suite (test/ingress-suite/) against the SIP trunk
 * ingress: a scripted UA (digest auth, PCMU RTP, RFC 4733) on loopback, the
 * gateway's SIP and RTP on free ports. Interoperability with a real UA stays
 * in sip-sipp.test.ts.
 */
import { runIngressSuite } from '../ingress-suite/suite.ts';
import { sipDriver } from '../ingress-suite/sip.ts';

runIngressSuite(sipDriver);
