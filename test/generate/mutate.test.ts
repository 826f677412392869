/** Mutation of corpus cases: always valid, always different, reproducible, within the target's supports. */
import { describe, expect, it } from 'vitest';
import { type Case, validateCase } from '../../model/index.ts';
import { SUPPORTS, generateCase, generateCases, mutateCase } from '../../coordinator/generate/index.ts';
import { canonicalJson, caseEssence, caseHash } from '../../corpus/store/hash.ts';
import { loadSeedCases } from '../../corpus/seeds.ts';

const seeds: Case[] = loadSeedCases().map((s) => {
  const v = validateCase(s.caseJson);
  if (!v.ok) throw new Error(`${s.file} does not validate`);
  return v.value;
});
const essence = (c: Case) => canonicalJson(caseEssence(c));

describe('mutateCase', () => {
  const base = [...seeds, ...generateCases(41, 40)];

  it('yields valid cases that differ from their input (600 mutants of seeds and generated cases)', () => {
    const kinds = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const c = base[i % base.length]!;
      const m = mutateCase(c, i, { donors: base });
      const v = validateCase(JSON.parse(JSON.stringify(m)));
      if (!v.ok) throw new Error(`mutant ${i} of ${c.name}: ${JSON.stringify(v.issues)}`);
      expect(essence(m)).not.toBe(essence(c));
      expect(m.meta.origin).toBe('mutated');
      expect(m.meta.parent).toBe(caseHash(c));
      for (const k of (m.meta.notes ?? '').replace(/^mutations: /, '').split(', ')) kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    // Every kind of mutation happens.
    expect([...kinds.keys()].sort()).toEqual(['add-op', 'add-thread', 'barrier', 'duplicate-op', 'remove-op', 'reseed', 'splice', 'swap-layer-param', 'tweak-data', 'tweak-op']);
  });

  it('is reproducible: same case and seed, same mutant', () => {
    for (let i = 0; i < 20; i++) {
      const c = base[i]!;
      expect(essence(mutateCase(c, 1000 + i, { donors: base }))).toBe(essence(mutateCase(c, 1000 + i, { donors: base })));
    }
  });

  it('changes what the issue asks for: offsets and lengths, paths, buffers, flags, ops, threads, layer parameters', () => {
    const c = seeds.find((s) => s.name.length && s.program.threads.length === 1 && s.stack.layers.some((l) => l.kind === 'loop'))!;
    const diffs = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const m = mutateCase(c, i, { donors: base });
      if (m.program.threads.length > c.program.threads.length) diffs.add('thread');
      if (canonicalJson(m.stack) !== canonicalJson(c.stack)) diffs.add('layer');
      const before = c.program.threads.flatMap((t) => t.ops);
      const after = m.program.threads.flatMap((t) => t.ops);
      if (after.length !== before.length) diffs.add('ops');
      for (const op of after) {
        const old = before.find((o) => o.id === op.id);
        if (!old || old.kind !== op.kind || (op.kind !== 'read' && op.kind !== 'write') || (old.kind !== 'read' && old.kind !== 'write')) continue;
        if (old.offset !== op.offset || old.length !== op.length) diffs.add('range');
        if (old.via !== op.via) diffs.add('path');
        if (canonicalJson(old.buffer) !== canonicalJson(op.buffer)) diffs.add('buffer');
        if (old.direct !== op.direct || old.nowait !== op.nowait) diffs.add('flags');
      }
    }
    expect([...diffs].sort()).toEqual(['buffer', 'flags', 'layer', 'ops', 'path', 'range', 'thread']);
  });

  it('splices ops from a donor, retargeted to this case', () => {
    const c = generateCase(43, 1);
    const donor = seeds.find((s) => s.stack.layers.some((l) => l.kind === 'file'))!;
    let spliced = 0;
    for (let i = 0; i < 300 && !spliced; i++) {
      const m = mutateCase(c, i, { donors: [donor] });
      if ((m.meta.notes ?? '').includes('splice')) spliced++;
      const ids = new Set(m.stack.layers.map((l) => l.id));
      for (const op of m.program.threads.flatMap((t) => t.ops)) if ('target' in op) expect(ids.has(op.target)).toBe(true);
    }
    expect(spliced).toBe(1);
  });

  it('never leaves what the target supports', () => {
    const host = generateCases(44, 30, { supports: SUPPORTS.host });
    for (let i = 0; i < 150; i++) {
      const m = mutateCase(host[i % host.length]!, i, { supports: SUPPORTS.host, donors: host });
      for (const l of m.stack.layers) expect(SUPPORTS.host.layerKinds).toContain(l.kind);
    }
  });

  it('falls back to a new data seed when nothing else can change (a one-op case on a bare disk)', () => {
    const c = generateCase(45, 0);
    const tiny: Case = { ...c, stack: { layers: [{ id: 'd0', kind: 'disk', size: 64 * 2 ** 20, logicalBlockSize: 512 }] }, program: { threads: [{ ops: [{ kind: 'drop-caches', id: 1 }] }] } };
    for (let i = 0; i < 20; i++) {
      const m = mutateCase(tiny, i, { supports: { layerKinds: ['disk'] } });
      expect(validateCase(m).ok).toBe(true);
      expect(essence(m)).not.toBe(essence(tiny));
    }
  });
});
