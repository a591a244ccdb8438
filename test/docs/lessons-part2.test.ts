/**
 * The second half of the lab guides' sections (lessons.test.ts has the first,
 * and says what the test does; lesson-suite.ts deals the sections out).
 */
import t from 'tap';
import { FILE_LIMIT_MS, runGuideSections } from './lesson-suite.js';

t.setTimeout(FILE_LIMIT_MS);

t.test('every command in both guides runs, and shows what the guide says (part 2 of 2)', (t) => runGuideSections(t, 1, 2));
