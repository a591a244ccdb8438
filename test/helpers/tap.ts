/** Types of the test harness that test files share. */
import type t from 'tap';

/** A (sub)test's `t`, as tap hands it to a test function: what helpers that make assertions take. */
export type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
