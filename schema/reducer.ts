/** `defineReducer` bound to Switchboard's tables, so every reducer's ctx is typed. */
import { reducerFactory, type ReducerCtx } from '../store/index.ts';
import type { SwitchboardTables } from './tables.ts';

export const defineReducer = reducerFactory<SwitchboardTables>();
export type Ctx = ReducerCtx<SwitchboardTables>;
