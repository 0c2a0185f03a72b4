/**
 * The shared ingress suite (test/ingress-suite/) against a provider the gateway has never heard of: the fake
 * adapter in test/fixtures/fake-provider/, mounted through the ingress port (ingress/port.ts) by passing it to
 * the test gateway — no edit to schema/, media/, bridge/ or the adapter list.
 */
import { runIngressSuite } from '../ingress-suite/suite.ts';
import { fakeDriver } from '../fixtures/fake-provider/driver.ts';

runIngressSuite(fakeDriver);
