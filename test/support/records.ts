/**
 * Kept only so branches written before the move still compile: import from `./factories.ts`.
 * Delete once no file imports it (`grep -r support/records.ts test`).
 */
export * from './factories.ts';
