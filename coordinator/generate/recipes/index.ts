/** The recipes by name: one per scenario of SCENARIOS.md, and fully random cases. */
import type { Recipe } from '../options.ts';
import type { RecipeFn } from './common.ts';
import { randomCase } from './random.ts';
import { s1LoopDio } from './s1-loop-dio.ts';
import { s2DioPartialFault } from './s2-dio-partial-fault.ts';
import { s3Integrity } from './s3-integrity.ts';
import { s4LiveDm } from './s4-live-dm.ts';
import { s5MmapRace } from './s5-mmap-race.ts';

export const RECIPE_FNS: Readonly<Record<Recipe, RecipeFn>> = {
  S1: s1LoopDio,
  S2: s2DioPartialFault,
  S3: s3Integrity,
  S4: s4LiveDm,
  S5: s5MmapRace,
  random: randomCase,
};

export type { RecipeFn } from './common.ts';
export { randomStack } from './random.ts';
