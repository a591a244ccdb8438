/** The storage root, in its two flavours with the same semantics: see types.ts. */
export * from './types.js';
export { SyncStorage, InThreadNameLock } from './sync.js';
export { AsyncStorage, NameQueueLock } from './async.js';
export { SharedNameLock, DEFAULT_LOCK_SLOTS } from './shared-lock.js';
export { SharedAdmissions } from './shared-admissions.js';
