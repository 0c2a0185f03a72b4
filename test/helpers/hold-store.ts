/** Child process for the lock test: opens the store at argv[2] and holds it until killed. */
import { resolveDurability, Store } from '../../store/index.ts';
import { tallySchema } from './tally-schema.ts';

const store = Store.open({ dataDir: process.argv[2] ?? '.', schema: tallySchema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, node: 'n1' });
process.stdout.write(`holding ${store.head.seq}\n`);
setInterval(() => {}, 1000);
