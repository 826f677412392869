/**
 * Shared-stack groups in a campaign's case stream (coordinator/farm/
 * case-source.ts): in a share of the aligned groups of four, the cases after
 * the first are followers that share one stack and data seed, with op ids
 * apart, each a case a target may run on the stack the previous one left;
 * a follower is a pure function of (seed, index, supports), whatever the
 * batches and the corpus, and never mutates.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_GENERATOR, CAMPAIGN_GENERATOR, CaseSource, type CorpusView, isSharedStackGroup } from '../../coordinator/farm/case-source.ts';
import { generateCase, stackResetsWithDisks } from '../../coordinator/generate/index.ts';
import { type Case, analyzeStack, stackReusable, validateCase } from '../../model/index.ts';
import { caseHash } from '../../corpus/store/hash.ts';

const SEED = 2026;
const ids = (c: Case) => c.program.threads.flatMap((t) => t.ops.map((op) => op.id));
const source = (over: Partial<ConstructorParameters<typeof CaseSource>[0]> = {}) =>
  new CaseSource({ seed: SEED, target: 'qemu', generator: CAMPAIGN_GENERATOR, mutationRate: 0, ...over });

describe('shared-stack groups', () => {
  it('followers share their group stack and seed, with op ids apart, and the stack can be kept between them', async () => {
    const s = source();
    const batch = await s.batch(0, 240);
    let groups = 0;
    let ownStacks = 0;
    for (let first = 0; first < batch.length; first += 4) {
      const group = batch.slice(first, first + 4);
      const positions = group.map((e) => s.followerPosition(e.index));
      if (positions[1] === undefined) {
        expect(positions).toEqual([undefined, undefined, undefined, undefined]);
        continue;
      }
      groups++;
      expect(positions).toEqual([undefined, 1, 2, 3]);
      const lead = group[0]!.case as Case;
      const followers = group.slice(1).map((e) => e.case as Case);
      const stack = followers[0]!.stack;
      // The first case's own stack when every layer of it resets with its disks, else one drawn for the group.
      const own = stackResetsWithDisks(analyzeStack(lead.stack).info);
      if (own) {
        ownStacks++;
        expect(stack).toEqual(lead.stack);
      }
      const seen = new Set(own ? ids(lead) : []);
      for (const [k, f] of followers.entries()) {
        const v = validateCase(f);
        if (!v.ok) throw new Error(`follower at ${first + k + 1} is invalid`);
        expect(f.stack).toEqual(stack);
        expect(f.seed).toBe(followers[0]!.seed);
        expect(stackReusable(v.value, v.info)).toBe(true);
        expect(group[k + 1]!.origin).toBe('generated');
        expect(f.meta.parent).toBe(followers[0]!.meta.parent);
        if (own) expect(f.meta.parent).toBe(caseHash(lead));
        for (const id of ids(f)) {
          expect(seen.has(id)).toBe(false);
          seen.add(id);
        }
      }
    }
    expect(groups).toBeGreaterThan(8);
    expect(ownStacks).toBeGreaterThan(0);
    expect(s.invalidGenerated).toBe(0);
  });

  it('the share of followers is near rate * 3/4, and the rate and group size are options', () => {
    const share = (rate: number, groupSize = 4) => {
      const s = source({ sharedStack: { rate, groupSize } });
      let n = 0;
      for (let i = 0; i < 40_000; i++) if (s.followerPosition(i) !== undefined) n++;
      return n / 40_000;
    };
    expect(share(0.3)).toBeCloseTo(0.3 * 0.75, 1);
    expect(Math.abs(share(0.3) - 0.225)).toBeLessThan(0.012);
    expect(Math.abs(share(0.6, 8) - 0.6 * 0.875)).toBeLessThan(0.015);
    expect(share(0)).toBe(0);
    expect(() => source({ sharedStack: { rate: 1.5 } })).toThrow(/sharedStack.rate must be in \[0, 1\]/);
    expect(() => source({ sharedStack: { groupSize: 1 } })).toThrow(/sharedStack.groupSize must be a whole number >= 2/);
  });

  it('case i is the same made alone, in other batches, or beside a corpus that mutates other indexes', async () => {
    const whole = await source().batch(0, 120);
    const followers = whole.filter((e) => source().followerPosition(e.index) !== undefined);
    expect(followers.length).toBeGreaterThan(10);
    for (const e of followers.filter((_, k) => k % 3 === 0)) {
      const alone = await source().batch(e.index, e.index + 1);
      expect(alone[0]!.id).toBe(e.id);
    }
    const split = source();
    const parts = [...(await split.batch(0, 50)), ...(await split.batch(50, 83)), ...(await split.batch(83, 120))];
    expect(parts.map((e) => e.id)).toEqual(whole.map((e) => e.id));

    // With a corpus and half the indexes drawn to mutate: followers stay the same cases; other indexes do mutate.
    const parent = generateCase(3, 3);
    const corpus: CorpusView = { size: async () => 1, at: async () => ({ id: 'a'.repeat(64), case: parent }) };
    const mutating = await source({ corpus, mutationRate: 0.5 }).batch(0, 120);
    for (const e of followers) expect(mutating[e.index]!.id).toBe(e.id);
    expect(mutating.filter((e) => e.origin === 'mutated').length).toBeGreaterThan(20);
  });

  it('starts after the seed cases, and not on the host target or with the stand-in generator', async () => {
    const seeds = (await source().batch(0, 6)).map((e) => e.case as Case);
    const withSeeds = source({ seeds, sharedStack: { rate: 1 } });
    for (let i = 0; i < 8; i++) expect(withSeeds.followerPosition(i)).toBeUndefined();
    expect(withSeeds.followerPosition(9)).toBe(1);
    expect(isSharedStackGroup(SEED, 5, 1)).toBe(true);
    const host = source({ target: 'host' });
    const builtin = source({ generator: BUILTIN_GENERATOR });
    for (let i = 0; i < 400; i++) {
      expect(host.followerPosition(i)).toBeUndefined();
      expect(builtin.followerPosition(i)).toBeUndefined();
    }
  });
});
