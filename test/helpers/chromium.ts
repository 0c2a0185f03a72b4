/** Headless Chromium for browser tests (RECIPES.md): the Debian binary and the flags every test launches it with. */
export const CHROMIUM = process.env.SWITCHBOARD_CHROMIUM || '/usr/bin/chromium';

/** Headless, offline, no background traffic; only 127.0.0.1 resolves. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];
