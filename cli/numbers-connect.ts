/**
 * `switchboard numbers connect [NUMBER] --provider P [--public-url URL] [--dry-run]`:
 * points a provider at this gateway. Vonage and Twilio through their APIs
 * (ingress/vonage/connect.ts, ingress/twilio/connect.ts, loaded on demand); for
 * SIP and WebRTC the command says what to do by hand, with the URLs, and exits 2.
 *
 * Exit codes as cli/main.ts: 0 done (or a dry run with every input present);
 * 1 the provider's API failed or could not be reached; 2 a missing or invalid
 * input, or a provider this command does not configure.
 */
import type { Command } from 'commander';
import { connectSettings } from './config/client.ts';
import { UsageError } from './remote.ts';

interface ConnectOptions {
  provider?: string;
  publicUrl?: string;
  dryRun?: boolean;
}

/** The public base URL for the hand-made instructions: a placeholder when unset or not a URL. */
function publicBase(opts: ConnectOptions, configured: string | undefined): string {
  const raw = opts.publicUrl ?? configured;
  try {
    if (raw !== undefined && raw.trim() !== '') return new URL(raw).href.replace(/\/+$/, '');
  } catch {
    // the placeholder below
  }
  return 'https://YOUR-GATEWAY';
}

/** Providers configured outside this command: one line of what to do, with the URLs. */
function byHand(provider: string, base: string, sipPort: string): string | undefined {
  switch (provider) {
    case 'sip':
      return `SIP trunks are pointed at the gateway by the carrier: ask it to send the trunk's calls to sip:${new URL(base).hostname}:${sipPort} (UDP or TCP); this command changes nothing at the carrier.`;
    case 'webrtc':
      return `WebRTC needs no provider set-up: browsers POST their offer to ${base}/webrtc/offer?to=NUMBER (try ${base}/phone).`;
    default:
      return undefined;
  }
}

export function registerConnectCommand(numbers: Command): void {
  numbers
    .command('connect [number]')
    .description(
      "point a provider at this gateway. vonage: sets the application's voice answer/event webhooks to PUBLIC/vonage/answer and PUBLIC/vonage/event (other capabilities kept) and, with NUMBER (E.164), links the number to the application; needs VONAGE_API_KEY, VONAGE_API_SECRET, VONAGE_APPLICATION_ID (VONAGE_API_HOST/VONAGE_REST_HOST override the API hosts). twilio: sets NUMBER's voice URL to POST PUBLIC/twilio/voice and status callback to POST PUBLIC/twilio/status; needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (TWILIO_API_BASE overrides the API base). sip, webrtc: prints what to set by hand",
    )
    .option('--provider <provider>', 'vonage | twilio (configured through their APIs) | sip | webrtc (explained)')
    .option('--public-url <url>', "the gateway's public base URL, https (default SWITCHBOARD_PUBLIC_URL)")
    .option('--dry-run', 'check the inputs and print the changes; send nothing')
    .action(async (number: string | undefined, opts: ConnectOptions) => {
      const env = connectSettings();
      const provider = opts.provider?.trim().toLowerCase();
      if (provider === undefined || provider === '') throw new UsageError('numbers connect: pass --provider vonage or twilio (sip and webrtc are explained)');
      if (provider !== 'vonage' && provider !== 'twilio') {
        const { SWITCHBOARD_PUBLIC_URL: configured, SWITCHBOARD_SIP_PORT: sipPort = '5060' } = env;
        const text = byHand(provider, publicBase(opts, configured), sipPort);
        if (text === undefined) throw new UsageError(`numbers connect: unknown provider ${JSON.stringify(opts.provider)} (vonage | twilio | sip | webrtc)`);
        console.error(`switchboard: ${text}`);
        process.exitCode = 2;
        return;
      }
      const adapters = await import('../ingress/adapters.ts');
      const { connectProvider, ProviderConnectError } = provider === 'twilio' ? await adapters.twilioNumberConnect() : await adapters.vonageNumberConnect();
      try {
        await connectProvider({ number, publicUrl: opts.publicUrl, dryRun: opts.dryRun === true, env, print: (line) => console.log(line) });
      } catch (err) {
        if (!(err instanceof ProviderConnectError)) throw err;
        console.error(`switchboard: ${err.message}`);
        process.exitCode = err.exitCode;
      }
    });
}
