/**
 * The last line between a generator and an invalid case: validate, and where
 * the validator objects to single ops, drop the op (or only its mustSucceed
 * claim) and validate again. Problems with the stack or the program's shape
 * are not repaired: the caller draws again.
 */
import { type Case, type CaseInput, validateCase } from '../../model/index.ts';

export interface Repaired {
  value: Case;
  /** Ops dropped and claims withdrawn on the way (0 for a case valid as generated). */
  fixes: number;
  /** What the validator said about the case as generated (empty when it was valid). */
  issues: string[];
}

const OP_PATH = /^program\.threads\[(\d+)\]\.ops\[(\d+)\](.*)$/;

export function repairCase(input: CaseInput, rounds = 6): Repaired | undefined {
  let c: CaseInput = input;
  let fixes = 0;
  const first: string[] = [];
  for (let round = 0; round <= rounds; round++) {
    const v = validateCase(c);
    if (v.ok) return { value: v.value, fixes, issues: first };
    if (round === 0) first.push(...v.issues.map((i) => `${i.path}: ${i.message}`));
    const drop = new Map<number, Set<number>>();
    const unclaim: Array<[number, number]> = [];
    for (const issue of v.issues) {
      const m = OP_PATH.exec(issue.path);
      if (!m) return undefined;
      const [t, i, rest] = [Number(m[1]), Number(m[2]), m[3] ?? ''];
      if (rest === '.mustSucceed') unclaim.push([t, i]);
      else drop.set(t, (drop.get(t) ?? new Set()).add(i));
    }
    const threads = c.program.threads.map((th, t) => ({
      ...th,
      ops: th.ops
        .map((op, i) => (unclaim.some(([a, b]) => a === t && b === i) && (op.kind === 'read' || op.kind === 'write') ? { ...op, mustSucceed: undefined } : op))
        .filter((op, i) => op.kind === 'barrier' || !drop.get(t)?.has(i)),
    }));
    // A barrier the validator objects to cannot be dropped from one thread alone.
    for (const [t, is] of drop) for (const i of is) if (c.program.threads[t]?.ops[i]?.kind === 'barrier') return undefined;
    fixes += unclaim.length + [...drop.values()].reduce((n, s) => n + s.size, 0);
    c = { ...c, program: { ...c.program, threads } };
  }
  return undefined;
}
