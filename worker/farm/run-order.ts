/**
 * The order a runner takes a batch's cases in: grouped by the target's
 * run-order key (the QEMU target reuses a VM only for the next case of the
 * same disk geometry, and a stack only for the next case that builds the
 * same one), groups in the order their first case appears, cases
 * in batch order within a group. Results are keyed by case index and id, and
 * a failed or returned batch is handled whole, so the order is free.
 */
import type { Case, StackInfo } from '../../model/index.ts';
import type { Target } from '../targets/target.ts';

export function runOrder(infos: readonly StackInfo[], target: Pick<Target, 'runOrderKey'>, cases?: readonly Case[]): number[] {
  const identity = infos.map((_, i) => i);
  if (!target.runOrderKey) return identity;
  const groups = new Map<string, number[]>();
  for (const i of identity) {
    const key = target.runOrderKey(infos[i]!, cases?.[i]);
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  }
  return [...groups.values()].flat();
}
