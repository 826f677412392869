/**
 * One case from a Draw: pick a recipe by weight, let it build a stack and a
 * program, validate (repairing single ops), and fall back to the random
 * recipe, then to a minimal case, if a recipe cannot build on this target.
 */
import { CASE_FORMAT, type Case, type CaseInput } from '../../model/index.ts';
import type { Draw } from './draw.ts';
import { type Normalized, RECIPES, type Recipe } from './options.ts';
import { RECIPE_FNS } from './recipes/index.ts';
import { repairCase } from './repair.ts';
import { StackBuilder } from './stack.ts';

export interface Built {
  input: CaseInput;
  value: Case;
  recipe: Recipe | 'fallback';
  /** The recipe drawn first (differs from `recipe` when it could not build on this target). */
  aimed: Recipe;
  /** Ops the repair step dropped or claims it withdrew. */
  fixes: number;
  /** Stack steps refused because the stack would not validate. */
  rejected: number;
  /** Recipes that could not build and were drawn again. */
  retries: number;
  /** What the validator said before repair. */
  issues: string[];
}

export function buildCase(d: Draw, o: Normalized): Built {
  let recipe: Recipe = d.weighted(RECIPES.map((r) => [o.weights[r], r] as const));
  const aimed = recipe;
  let rejected = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    const b = new StackBuilder(d, o);
    const threads = RECIPE_FNS[recipe](d, o, b);
    rejected += b.rejected;
    if (threads && b.layers.length) {
      const seed = d.int(0, 0xffffffff);
      const input: CaseInput = {
        format: CASE_FORMAT,
        name: `gen-${seed.toString(16).padStart(8, '0')}`,
        seed,
        stack: { layers: b.layers },
        program: { threads: threads.map((ops) => ({ ops })) },
        meta: { origin: 'generated', notes: `recipe ${recipe}` },
      };
      const fixed = repairCase(input);
      if (fixed) return { input: fixed.value, value: fixed.value, recipe, aimed, fixes: fixed.fixes, rejected, retries: attempt, issues: fixed.issues };
    }
    // This recipe could not build here (too few layer kinds, a stack that would not validate): random always can.
    recipe = 'random';
  }
  const value = fallbackCase(d.int(0, 0xffffffff));
  return { input: value, value, recipe: 'fallback', aimed, fixes: 0, rejected, retries: 4, issues: [] };
}

/** The smallest useful case: a write and a read on a disk. Valid on every target. */
export function fallbackCase(seed: number): Case {
  const input: CaseInput = {
    format: CASE_FORMAT,
    name: `gen-${seed.toString(16).padStart(8, '0')}`,
    seed,
    stack: { layers: [{ id: 'd0', kind: 'disk', size: 64 * 1024 * 1024 }] },
    program: {
      threads: [
        {
          ops: [
            { kind: 'write', id: 1, target: 'd0', offset: 0, length: 4096, direct: true },
            { kind: 'read', id: 2, target: 'd0', offset: 0, length: 4096, direct: true },
          ],
        },
      ],
    },
    meta: { origin: 'generated', notes: 'fallback' },
  };
  const r = repairCase(input);
  if (!r) throw new Error('the fallback case does not validate');
  return r.value;
}
