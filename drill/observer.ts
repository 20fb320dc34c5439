/**
 * What watches a drill as it runs: the runner tells a DrillObserver (drill/progress.ts: the live
 * terminal progress) every sample, step and mark, and the record at the end.
 */
import type { DrillObserver } from './progress.js';

export type { DrillObserver } from './progress.js';

/** Observes nothing (tests, and runs whose record is read elsewhere). */
export const silentObserver: DrillObserver = { sample() {}, step() {}, mark() {}, done() {} };
