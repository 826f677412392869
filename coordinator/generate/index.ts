/**
 * Case generation for campaigns.
 *
 * - caseArbitrary(opts): a fast-check arbitrary of valid cases, for
 *   properties and for anything that composes arbitraries.
 * - generateCase(seed, index, opts) / generateCases(seed, count, opts): the
 *   campaign's cases. Case i of campaign seed s depends on (s, i, opts) only,
 *   so a campaign is reproducible and resumes at any index without replaying
 *   the ones before.
 * - mutateCase(c, seed, opts): a valid variant of a corpus case.
 * - programForStack(leader, seed, opts): a new data-only program on the
 *   leader's stack, for targets that keep a stack set up between cases
 *   (shared-stack.ts).
 *
 * Every case returned passes validateCase. Which layer kinds and filesystems
 * appear is bounded by opts.supports (a target is only sent what it can
 * build); how often each scenario of SCENARIOS.md is aimed at is set by
 * opts.weights (see options.ts), and what each case really exercises is for
 * the classifier (coordinator/classify/scenarios.ts) to say.
 */
import fc from 'fast-check';
import type { Case, CaseInput } from '../../model/index.ts';
import { type Built, buildCase } from './build.ts';
import { drawArbitrary, mixSeed } from './draw.ts';
import { type GenerateOptions, normalizeOptions } from './options.ts';

export { type GenerateOptions, type Recipe, RECIPES, SUPPORTS, type Supports, type TargetKinds, GenerateOptionsError, normalizeOptions } from './options.ts';
export { mutateCase, type MutateOptions } from './mutate.ts';
export { type FollowerOptions, followerFirstOpId, programForStack, stackLeaderCase, stackResetsWithDisks } from './shared-stack.ts';
export { type Built } from './build.ts';

/** Valid cases as an arbitrary (unbiased: the recipe weights hold as written). */
export function caseArbitrary(opts: GenerateOptions = {}): fc.Arbitrary<CaseInput> {
  return detailedArbitrary(opts).map((b) => b.input);
}

/** The same, with what the generator did on the way (recipe, repairs): for tests and statistics. */
export function detailedArbitrary(opts: GenerateOptions = {}): fc.Arbitrary<Built> {
  const o = normalizeOptions(opts);
  return drawArbitrary().map((d) => buildCase(d, o));
}

/** Case `index` of the campaign with this seed. */
export function generateCase(seed: number, index: number, opts: GenerateOptions = {}): Case {
  return generateDetailed(seed, index, opts).value;
}

export function generateDetailed(seed: number, index: number, opts: GenerateOptions = {}): Built {
  const built = fc.sample(detailedArbitrary(opts), { seed: mixSeed(seed, index) | 0, numRuns: 1 })[0]!;
  const name = `gen-${(seed >>> 0).toString(16)}-${index}`;
  return { ...built, value: { ...built.value, name }, input: { ...built.input, name } };
}

/** Cases 0..count-1 of the campaign with this seed. */
export function generateCases(seed: number, count: number, opts: GenerateOptions = {}): Case[] {
  normalizeOptions(opts);
  return Array.from({ length: count }, (_, i) => generateCase(seed, i, opts));
}
