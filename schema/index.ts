/** Switchboard's schema: every table and every reducer. */
import type { SchemaDef } from '../store/index.ts';
import { accessReducers, retiredAccessReducers } from './access.ts';
import { agentReducers } from './agents.ts';
import { agentVersionReducers } from './agent-versions.ts';
import { agentPauseReducers } from './agent-pause.ts';
import { callReducers, retiredCallReducers } from './calls/reducers.ts';
import { outboundCallReducers } from './calls/outbound.ts';
import { consentReducers } from './consent.ts';
import { recordingReducers } from './recording.ts';
import { tables, type SwitchboardTables } from './tables.ts';
import { callEventsIndex, transcriptSearch } from './search.ts';
import { nodeReducers } from './nodes.ts';
import { logLevelReducers } from './log-level.ts';
import { tenancyReducers } from './tenancy.ts';
import { webhookNonceReducers } from './webhook-nonces.ts';
import { toolApprovalReducers } from './tool-approvals.ts';
import { contentReducers } from './content.ts';
import { pciReducers } from './pci.ts';
import { answeredByReducers } from './answered-by.ts';
import { campaignReducers } from './campaigns.ts';
import { dncReducers } from './dnc.ts';
import { turnTakingReducers } from './turn-taking.ts';
import { providerAccountReducers } from './provider-accounts.ts';
import { callMatrixReducers } from './call-matrix.ts';
import { supervisionReducers } from './supervision.ts';

/**
 * Reducers only older logs hold: applied when such a log replays (or a command carried by name from one arrives),
 * never submitted by this code. Each says why in its comment.
 */
export const retired = [...retiredAccessReducers, ...retiredCallReducers];

export const schema: SchemaDef<SwitchboardTables> = {
  version: 2,
  tables,
  derived: [transcriptSearch, callEventsIndex],
  reducers: [...tenancyReducers, ...accessReducers, ...callReducers, ...outboundCallReducers, ...consentReducers, ...recordingReducers, ...agentReducers, ...agentVersionReducers, ...agentPauseReducers, ...webhookNonceReducers, ...nodeReducers, ...logLevelReducers, ...toolApprovalReducers, ...pciReducers, ...answeredByReducers, ...campaignReducers, ...dncReducers, ...contentReducers, ...turnTakingReducers, ...providerAccountReducers, ...callMatrixReducers, ...supervisionReducers, ...retired],
};
export { tables, type SwitchboardTables } from './tables.ts';
export { TRANSITIONS, canTransition } from './calls/lifecycle.ts';
export { CALL_EVENTS, TRANSCRIPT_FTS } from './search.ts';
export { DEFAULT_POLICY } from './consent.ts';
export { CONTENT_ARGS, CONTENT_COLUMNS } from './content.ts';
export { MATRIX, can, OPERATOR_TENANT, type Permission, type Role } from './permissions.ts';
