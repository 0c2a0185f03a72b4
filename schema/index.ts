/** Switchboard's schema: every table and every reducer. */
import type { SchemaDef } from '../store/index.ts';
import { agentReducers } from './agents.ts';
import { callReducers } from './calls/reducers.ts';
import { consentReducers } from './consent.ts';
import { recordingReducers } from './recording.ts';
import { tables, type SwitchboardTables } from './tables.ts';
import { tenancyReducers } from './tenancy.ts';

export const schema: SchemaDef<SwitchboardTables> = {
  version: 1,
  tables,
  reducers: [...tenancyReducers, ...callReducers, ...consentReducers, ...recordingReducers, ...agentReducers],
};
export { tables, type SwitchboardTables } from './tables.ts';
export { TRANSITIONS, canTransition } from './calls/lifecycle.ts';
export { DEFAULT_POLICY } from './consent.ts';
