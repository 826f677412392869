/**
 * fast-check settings for the property tests. A failure message from
 * fc.assert carries the seed and the path of the shrunk counterexample; to
 * replay one, run with FC_SEED=<seed> (and FC_PATH=<path>). FC_RUNS raises or
 * lowers the number of runs. Every property logs the seed it ran with, so a
 * failing CI log always has it.
 */
import type { Parameters } from 'fast-check';

export function fcParams<T>(name: string, runs: number): Parameters<T> {
  const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const p: Parameters<T> = {
    seed,
    numRuns: process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : runs,
    verbose: 1,
    endOnFailure: false,
  };
  if (process.env.FC_PATH) p.path = process.env.FC_PATH;
  // vitest shows a test's console output when it fails; print the seed up front.
  console.log(`[fast-check] ${name}: seed ${seed} (replay with FC_SEED=${seed})`);
  return p;
}
