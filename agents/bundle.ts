/**
 * Bundles an agent's source (TypeScript or JavaScript, with its imports) into
 * one ESM file with esbuild. `switchboard/agent` resolves to the SDK and
 * `switchboard/llm` to the LLM helper, so an
 * agent written outside this repository builds the same way. The bundle is
 * content-addressed by its sha256 when deployed. esbuild is imported by the
 * first bundle, not when this module loads (a start bundles nothing).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

const SDK = path.join(import.meta.dirname, 'sdk.ts');
const LLM = path.join(import.meta.dirname, 'llm.ts');

export interface Bundle {
  code: string;
  sha256: string;
}

export async function bundleAgent(entry: string): Promise<Bundle> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    alias: { 'switchboard/agent': SDK, 'switchboard/llm': LLM },
    logLevel: 'silent',
    legalComments: 'none',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced no output for ${entry}`);
  return { code: file.text, sha256: sha256(file.text) };
}

export function sha256(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

/**
 * The name an agent bundle declares (`export default defineAgent({ name })`), read by loading the bundle the way
 * the agent host does (as an ES module), so `switchboard agents deploy FILE` needs no `--name` for an agent that
 * names itself. Null when the module's default export carries no string name.
 */
export async function declaredAgentName(code: string): Promise<string | null> {
  const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as { default?: { name?: unknown } };
  const name = mod.default?.name;
  return typeof name === 'string' ? name : null;
}
