/**
 * Child process for the crash test: submits call lifecycle commands as fast as
 * it can at fsync=always from 32 concurrent loops and prints `ack <id> <seq> <ok>`
 * for every command once its promise resolved (i.e. once it is durable).
 * stdout to a pipe is synchronous on Linux, so a printed ack is never lost to
 * the kill -9 that follows.
 */
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { tenant_created } from '../../schema/reducers.ts';

const dataDir = process.argv[2];
const run = process.argv[3] ?? '0';
if (!dataDir) throw new Error('usage: crash-writer DATA_DIR RUN');
const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production', fsync: 'always' }), checkpointEvery: 50, checkpointMs: 20 });
const who = { tenant: 'acme', caller: 'crash-writer' };
await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, { ...who, id: 'tenant:acme' });
process.stdout.write('ready\n');

let n = 0;
async function submit(reducer: string, args: unknown): Promise<unknown> {
  const id = `r${run}-${n++}`;
  const r = await store.submitNamed(reducer, args, { ...who, id });
  process.stdout.write(`ack ${id} ${r.seq} ${r.outcome.ok ? 1 : 0}\n`);
  return r.outcome.ok ? r.outcome.result : undefined;
}

async function loop(worker: number): Promise<never> {
  for (let i = 0; ; i++) {
    const res = (await submit('call_received', { provider: 'twilio', provider_call_id: `CA-${run}-${worker}-${i}`, from: '+15550001111', to: '+15551234567' })) as
      | { call_id: string }
      | undefined;
    if (!res) continue;
    await submit('call_answered', { call_id: res.call_id });
    await submit('call_activated', { call_id: res.call_id });
    await submit('call_held', { call_id: res.call_id }); // legal from active
    await submit('call_answered', { call_id: res.call_id }); // illegal from held: a logged rejection
    await submit('call_ended', { call_id: res.call_id, reason: 'completed' });
  }
}
for (let w = 0; w < 32; w++) void loop(w);
