/**
 * Test-only access to a store's SQLite handle, for tests that must reach under
 * the store (e.g. capping the page count to simulate a full disk). Production
 * code never imports this module; test/unit/project/store-door.test.ts checks it.
 */
export { databaseOf } from './store.ts';
