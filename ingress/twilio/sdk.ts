/**
 * The twilio package (the real SDK: `validateRequest` for webhook signatures, TwiML's `VoiceResponse`), imported
 * on first use instead of at start: it costs about half a second of CPU to load, which a restart should not wait
 * for.
 *
 *   start ─► listening ─► warm() (index.ts) ─► loadTwilio() in the background
 *   a webhook ─► await loadTwilio() (at once when warm) ─► twilioSdk() in signature.ts and the TwiML
 *   a media upgrade before the SDK is in ─► held until loadTwilio() resolves (index.ts)
 */
import type twilio from 'twilio';

type TwilioSdk = typeof twilio;

let loaded: TwilioSdk | null = null;
let loading: Promise<TwilioSdk> | null = null;

/** Imports the SDK once (later calls share the promise); a failed import is retried by the next call. */
export function loadTwilio(): Promise<TwilioSdk> {
  loading ??= import('twilio').then(
    (m) => (loaded = (m as unknown as { default: TwilioSdk }).default), // a CommonJS package: its exports are `default`
    (err: unknown) => {
      loading = null;
      throw err;
    },
  );
  return loading;
}

/** Whether the SDK is in (`twilioSdk()` may be called). */
export function twilioLoaded(): boolean {
  return loaded !== null;
}

/** The SDK, once `loadTwilio()` has resolved. */
export function twilioSdk(): TwilioSdk {
  if (!loaded) throw new Error('the twilio SDK is not loaded yet: await loadTwilio() first');
  return loaded;
}
