/**
 * The file-name rule of PROTOCOL.md. It is the only gate between a request and
 * the storage root, so it is an allow-list: a name that passes cannot contain a
 * separator, cannot start with a dot, and cannot name anything outside the root.
 */
import { MAX_NAME_BYTES, MAX_NAME_CODE_POINTS } from './limits.js';

const NAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N}._-]*$/u;
const utf8 = new TextEncoder();

export type NameProblem = 'empty' | 'too-long' | 'not-nfc' | 'bad-character';

/** Why `name` is not a valid file name, or null when it is one. */
export function nameProblem(name: string): NameProblem | null {
  if (name.length === 0) return 'empty';
  let codePoints = 0;
  for (const _ of name) codePoints++;
  if (codePoints > MAX_NAME_CODE_POINTS || utf8.encode(name).length > MAX_NAME_BYTES) return 'too-long';
  if (!NAME_PATTERN.test(name)) return 'bad-character';
  if (name.normalize('NFC') !== name) return 'not-nfc';
  return null;
}

export function isValidName(name: string): boolean {
  return nameProblem(name) === null;
}

const PROBLEM_TEXT: Record<NameProblem, string> = {
  empty: 'a name cannot be empty',
  'too-long': `a name has at most ${MAX_NAME_CODE_POINTS} characters and ${MAX_NAME_BYTES} bytes`,
  'not-nfc': 'a name must be in Unicode NFC form',
  'bad-character': 'a name is letters, digits, ".", "_" and "-", starting with a letter or digit',
};

export function describeNameProblem(problem: NameProblem): string {
  return PROBLEM_TEXT[problem];
}
