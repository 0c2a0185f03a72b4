/**
 * A built-in agent run in the gateway's own thread (trusted code shipped with
 * Switchboard, e.g. `default`). Deployed agents run in worker threads instead
 * (agents/host/).
 */
import { makeContext, runHook } from './context.ts';
import type { AgentDefinition, HttpToolDefinition, Hook, Json, ToolContext, ToolDefinition, ToolRequirement } from './sdk.ts';
import { runHttpTool } from './tools.ts';
import type { Agent, TurnActions, TurnInput, TurnOutcome } from './types.ts';

export class LocalAgent implements Agent {
  readonly name: string;

  constructor(
    private readonly def: AgentDefinition,
    readonly version: string,
  ) {
    this.name = def.name;
  }

  get turnTaking(): AgentDefinition['turnTaking'] {
    return this.def.turnTaking;
  }

  has(hook: Hook): boolean {
    return typeof this.def[hook] === 'function';
  }

  async runTurn(input: TurnInput, actions: TurnActions): Promise<TurnOutcome> {
    const { ctx, state } = makeContext(input, actions, { name: this.name, version: this.version });
    await runHook(this.def, input, ctx);
    return { state: state() };
  }

  toolRequires(name: string): ToolRequirement {
    const tool = this.def.tools && Object.hasOwn(this.def.tools, name) ? this.def.tools[name] : undefined;
    return tool?.requires ?? 'none';
  }

  toolSensitive(name: string): boolean {
    const tool = this.def.tools && Object.hasOwn(this.def.tools, name) ? this.def.tools[name] : undefined;
    return tool?.sensitive === true;
  }

  async runTool(name: string, args: Json, ctx: ToolContext): Promise<Json> {
    const tool = this.def.tools && Object.hasOwn(this.def.tools, name) ? this.def.tools[name] : undefined; // own keys only: `constructor` is no tool
    if (!tool) throw new Error(`agent ${this.name} has no tool ${name}`);
    if ('http' in tool) return runHttpTool(tool as HttpToolDefinition, args, ctx);
    return (tool as ToolDefinition).run(args, ctx);
  }
}
