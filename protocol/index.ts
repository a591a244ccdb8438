/** The socklab wire protocol, version 1 (PROTOCOL.md), with no I/O: see server-session.ts and client.ts. */
export * from './errors.js';
export * from './limits.js';
export * from './names.js';
export * from './receive-buffer.js';
export * from './replies.js';
export * from './requests.js';
export * from './server-session.js';
export * from './client.js';
