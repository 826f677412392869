/**
 * Programs for a shared stack (coordinator/generate/shared-stack.ts): a
 * follower keeps its leader's stack and data seed, draws a new program of
 * data ops only, numbers its ops past the leader's and the earlier
 * followers', and is a case a target may run on the leader's stack
 * (stackReusable) that the model passes on its own prediction.
 */
import { describe, expect, it } from 'vitest';
import { type Case, analyzeStack, judgeObservation, predictObservation, stackReusable, validateCase } from '../../model/index.ts';
import { SUPPORTS, followerFirstOpId, generateCase, programForStack, stackLeaderCase, stackResetsWithDisks } from '../../coordinator/generate/index.ts';
import { caseHash } from '../../corpus/store/hash.ts';

const QEMU = { supports: SUPPORTS.qemu };
const opIds = (c: Case) => c.program.threads.flatMap((t) => t.ops.map((op) => op.id));

/** Leaders: stacks drawn for sharing, and generated cases whose stack happens to reset with its disks. */
function leaders(): Case[] {
  const drawn = Array.from({ length: 24 }, (_, i) => stackLeaderCase(500 + i, QEMU));
  const generated: Case[] = [];
  for (let i = 0; generated.length < 6 && i < 400; i++) {
    const c = generateCase(61, i, QEMU);
    if (stackResetsWithDisks(analyzeStack(c.stack).info)) generated.push(c);
  }
  expect(generated.length).toBe(6);
  return [...drawn, ...generated];
}

function followersOf(leader: Case, seed: number): Case[] {
  return [1, 2, 3].map((position) => programForStack(leader, seed * 10 + position, { ...QEMU, position, firstOpId: followerFirstOpId(leader, position, QEMU) }));
}

describe('programForStack', () => {
  const groups = leaders().map((leader, i) => ({ leader, followers: followersOf(leader, i) }));

  it('keeps the stack and data seed, draws data ops only, and numbers ops apart from the rest of the group', () => {
    let racing = 0;
    const kinds = new Set<string>();
    for (const { leader, followers } of groups) {
      const seen = new Set(opIds(leader));
      followers.forEach((f, k) => {
        const v = validateCase(JSON.parse(JSON.stringify(f)));
        if (!v.ok) throw new Error(`follower ${k + 1} of ${leader.name}: ${JSON.stringify(v.issues)}`);
        expect(v.value.stack).toEqual(leader.stack);
        expect(v.value.seed).toBe(leader.seed);
        expect(stackReusable(v.value, v.info), `follower ${k + 1} of ${leader.name}`).toBe(true);
        expect(f.name).toBe(`${leader.name}-p${k + 1}`);
        expect(f.meta).toMatchObject({ origin: 'generated', parent: caseHash(leader) });
        const first = followerFirstOpId(leader, k + 1, QEMU);
        for (const id of opIds(f)) {
          expect(seen.has(id), `op id ${id} of ${f.name} used before in its group`).toBe(false);
          expect(id).toBeGreaterThanOrEqual(first);
          seen.add(id);
        }
        expect(opIds(f).length).toBeLessThanOrEqual(60);
        for (const t of f.program.threads) for (const op of t.ops) kinds.add(op.kind);
        // Threads that work on one target race.
        const targetsOf = f.program.threads.map((t) => new Set(t.ops.flatMap((op) => ('target' in op ? [op.target] : []))));
        if (targetsOf.some((a, i) => targetsOf.some((b, j) => i < j && [...a].some((x) => b.has(x))))) racing++;
      });
    }
    expect(racing).toBeGreaterThan(5);
    for (const k of ['write', 'read', 'flush', 'discard', 'fsync']) expect(kinds.has(k), k).toBe(true);
    expect(kinds.has('fallocate')).toBe(false);
  });

  it('gives the same case for the same leader, seed and position', () => {
    const { leader } = groups[3]!;
    const again = followersOf(leader, 3);
    expect(again).toEqual(groups[3]!.followers);
    expect(again[0]).not.toEqual(again[1]);
  });

  it('makes cases the model passes on its own prediction, claims included', () => {
    const failures: string[] = [];
    for (const { followers } of groups.slice(0, 20)) {
      for (const f of followers) {
        const v = validateCase(f);
        if (!v.ok) throw new Error('invalid');
        const obs = predictObservation(v.value, v.info);
        const j = judgeObservation(v.value, v.info, obs);
        if (j.incomplete !== undefined || j.verdict === 'divergence') failures.push(`${f.name}: ${j.incomplete ?? j.verdict}`);
        for (const t of v.value.program.threads)
          for (const op of t.ops)
            if ((op.kind === 'read' || op.kind === 'write') && op.mustSucceed && (obs.results.find((r) => r.op === op.id)?.ret ?? -1) < 0) failures.push(`${f.name}: op ${op.id} claimed to succeed`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('stackLeaderCase draws only layers that reset with their disks, of several kinds', () => {
    const kinds = new Set(groups.slice(0, 24).flatMap(({ leader }) => leader.stack.layers.map((l) => l.kind)));
    expect([...kinds].sort()).toEqual(['disk', 'dm-crypt', 'dm-linear', 'dm-stripe']);
    const onDisks = stackLeaderCase(7, { supports: { layerKinds: ['disk', 'fs', 'file', 'loop'] } });
    expect(onDisks.stack.layers.every((l) => l.kind === 'disk')).toBe(true);
  });

  it('refuses a stack that zeroing its disks does not reset, naming the layer', () => {
    let withFs: Case | undefined;
    for (let i = 0; !withFs; i++) {
      const c = generateCase(62, i, QEMU);
      if (c.stack.layers.some((l) => l.kind === 'fs')) withFs = c;
    }
    expect(() => programForStack(withFs!, 1, { ...QEMU, firstOpId: 1001 })).toThrow(/programForStack: .*layer '.+' keeps state that zeroing its disks does not reset/);
    expect(() => programForStack(groups[0]!.leader, 1, { ...QEMU, firstOpId: 0 })).toThrow(/firstOpId must be a whole number/);
  });
});
