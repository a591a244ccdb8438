/** Defaults from PROTOCOL.md, "Limits and closing". Every server takes the same. */
export const PROTOCOL_VERSION = 1;
export const MAX_LINE_BYTES = 1024;
export const DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024;
export const DEFAULT_IDLE_TIMEOUT_SECONDS = 120;
export const DEFAULT_PORT = 8020;
export const DEFAULT_HOST = '127.0.0.1';
export const MAX_NAME_CODE_POINTS = 128;
export const MAX_NAME_BYTES = 255;
