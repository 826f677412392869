/**
 * Only cases a target can build go to it: the generator's supports for a
 * QEMU target are narrowed to its kernel (coordinator/farm/buildable.ts), and
 * the real qemu target (its own unsupportedReason, from the guest image it
 * built for that kernel) agrees that it can build every case generated for
 * it. Needs a fetched kernel and qemu-system (infra/setup.sh); skipped where
 * this machine has neither.
 */
import { describe, expect, it } from 'vitest';
import { buildableFor, kindSupports } from '../../coordinator/farm/buildable.ts';
import { CAMPAIGN_GENERATOR, CaseSource } from '../../coordinator/farm/case-source.ts';
import { validateCase } from '../../model/index.ts';
import { SUPPORTS } from '../../coordinator/generate/index.ts';
import { createQemuTarget, kernelFor } from '../../worker/targets/qemu/factory.ts';
import type { Target } from '../../worker/targets/target.ts';

async function qemuTarget(): Promise<Target | string> {
  try {
    await kernelFor('qemu');
    return await createQemuTarget('qemu');
  } catch (err) {
    return (err as Error).message;
  }
}

async function unsupported(target: Target, supports: ReturnType<typeof kindSupports>, n: number): Promise<string[]> {
  const cases = await new CaseSource({ seed: 31, target: 'qemu', generator: CAMPAIGN_GENERATOR, mutationRate: 0, supports }).batch(0, n);
  const out: string[] = [];
  for (const e of cases) {
    const v = validateCase(e.case);
    if (!v.ok) throw new Error(`generated case ${e.index} is invalid`);
    const why = await target.unsupportedReason({ theCase: v.value, info: v.info });
    if (why) out.push(why);
  }
  return out;
}

describe('cases for a target are cases it can build', () => {
  it('the model and host keep their kind-level supports', async () => {
    expect((await buildableFor('model')).supports).toEqual(SUPPORTS.all);
    expect((await buildableFor('host')).supports).toEqual(SUPPORTS.host);
  });

  it('a QEMU target gets no layer its kernel lacks a module for, and the real target can build every generated case', async (ctx) => {
    const target = await qemuTarget();
    if (typeof target === 'string') {
      ctx.skip(`no QEMU target on this machine: ${target}`);
      return;
    }
    try {
      const b = await buildableFor('qemu');
      expect(b.basis).toMatch(/^kernel \S+'s modules$/);
      for (const d of b.dropped) expect(d.why).toMatch(/has no \S+ module/);
      const narrowed = await unsupported(target, b.supports, 300);
      expect(narrowed).toEqual([]);
      // Without the narrowing some cases would only come back unsupported (Debian's 6.1: dm-dust).
      if (b.dropped.length) expect((await unsupported(target, kindSupports('qemu'), 300)).length).toBeGreaterThan(0);
    } finally {
      await target.close();
    }
  }, 300_000);
});
