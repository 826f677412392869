/**
 * The case generator: reproducible per campaign seed, every case valid,
 * every scenario of SCENARIOS.md reached with real probability, the target's
 * `supports` respected, and the options checked once.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DM_KINDS, validateCase } from '../../model/index.ts';
import { formatScenarioStats, scenarioStats, shares } from '../../coordinator/classify/stats.ts';
import { SCENARIO_TAGS } from '../../coordinator/classify/scenarios.ts';
import { GenerateOptionsError, SUPPORTS, caseArbitrary, detailedArbitrary, generateCase, generateCases, generateDetailed, normalizeOptions } from '../../coordinator/generate/index.ts';
import { MAX_ORDERS, orders } from '../../coordinator/generate/program.ts';
import type { Op } from '../../model/index.ts';

type OpOf = Op;
const shifting = (o: Op) => o.kind === 'truncate' || (o.kind === 'fallocate' && (o.mode === 'collapse-range' || o.mode === 'insert-range'));
const objects = (o: Op): string[] => [...('target' in o ? [o.target] : []), ...((o.kind === 'read' || o.kind === 'write') && o.buffer.placement === 'mmap' ? [o.buffer.file] : [])];
import { fcParams } from '../helpers/fc.ts';

const ops = (c: { program: { threads: Array<{ ops: unknown[] }> } }) => c.program.threads.reduce((n, t) => n + t.ops.length, 0);

describe('generateCases', () => {
  it('is deterministic per seed, and case i does not depend on how many come before it', () => {
    const a = generateCases(1234, 40);
    const b = generateCases(1234, 40);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(generateCase(1234, 37))).toBe(JSON.stringify(a[37]));
    const other = generateCases(1235, 40);
    expect(other.map((c) => JSON.stringify(c.stack))).not.toEqual(a.map((c) => JSON.stringify(c.stack)));
    expect(new Set(a.map((c) => c.name)).size).toBe(40);
    expect(a.every((c) => c.meta.origin === 'generated')).toBe(true);
  });

  it('validates 100% of 2000 cases over many seeds, as generated (no repair needed) and after a JSON round trip', () => {
    let repaired = 0;
    let fallbacks = 0;
    for (let i = 0; i < 2000; i++) {
      const b = generateDetailed(900 + (i % 20), i);
      const v = validateCase(JSON.parse(JSON.stringify(b.value)));
      if (!v.ok) throw new Error(`case ${i}: ${JSON.stringify(v.issues)}\n${JSON.stringify(b.value)}`);
      if (b.fixes) repaired++;
      if (b.recipe === 'fallback') fallbacks++;
    }
    // The repair step is a safety net: the recipes themselves build valid programs.
    expect(repaired).toBeLessThanOrEqual(10);
    expect(fallbacks).toBe(0);
  });

  it('keeps cases small: disks of 64-512 MiB, about 60 ops at most', () => {
    const cases = generateCases(77, 400);
    const sizes = cases.flatMap((c) => c.stack.layers.flatMap((l) => (l.kind === 'disk' && !l.id.includes('-') ? [l.size] : [])));
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(64 * 2 ** 20);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(512 * 2 ** 20);
    const counts = cases.map(ops).sort((x, y) => x - y);
    expect(counts[Math.floor(counts.length / 2)]!).toBeLessThanOrEqual(40);
    expect(counts[counts.length - 1]!).toBeLessThanOrEqual(60);
    expect(cases.every((c) => c.program.threads.length <= 4)).toBe(true);
  });

  it('reaches every scenario in at least 5% of 1000 cases (distribution printed)', () => {
    const stats = scenarioStats(generateCases(2024, 1000));
    console.log(`scenario distribution over 1000 generated cases (seed 2024, all layer kinds):\n${formatScenarioStats(stats)}`);
    const s = shares(stats);
    for (const tag of SCENARIO_TAGS) expect(s[tag], tag).toBeGreaterThanOrEqual(0.05);
  });

  it('goes beyond the seeds: random stacks use every layer kind the model knows', () => {
    const kinds = new Set(generateCases(31, 600).flatMap((c) => c.stack.layers.map((l) => l.kind)));
    expect([...kinds].sort()).toEqual(Object.keys(SUPPORTS.all.layerKinds.reduce((o, k) => ({ ...o, [k]: 1 }), {})).sort());
    const opKinds = new Set(generateCases(32, 600).flatMap((c) => c.program.threads.flatMap((t) => t.ops.map((o) => o.kind))));
    expect(opKinds.size).toBeGreaterThanOrEqual(24);
  });

  it('respects supports: host-only generation never needs dm, md or scsi-debug, and reaches S1, S2, S5', () => {
    const cases = generateCases(5, 500, { supports: SUPPORTS.host });
    const kinds = new Set(cases.flatMap((c) => c.stack.layers.map((l) => l.kind)));
    for (const k of kinds) expect(SUPPORTS.host.layerKinds).toContain(k);
    expect(cases.some((c) => c.stack.layers.some((l) => DM_KINDS.has(l.kind) || l.kind === 'md' || l.kind === 'scsi-debug'))).toBe(false);
    const fsTypes = new Set(cases.flatMap((c) => c.stack.layers.flatMap((l) => (l.kind === 'fs' ? [l.type] : []))));
    for (const t of fsTypes) expect(SUPPORTS.host.fsTypes).toContain(t);
    const s = shares(scenarioStats(cases));
    console.log(`host-only scenario shares: ${JSON.stringify(s)}`);
    for (const tag of ['S1', 'S2', 'S5'] as const) expect(s[tag], tag).toBeGreaterThanOrEqual(0.1);
  });

  it('reaches every scenario for a QEMU target whose kernel lacks dm-dust (Debian 6.1), and makes no dm-dust layer', () => {
    const supports = { layerKinds: SUPPORTS.qemu.layerKinds.filter((k) => k !== 'dm-dust'), fsTypes: SUPPORTS.qemu.fsTypes };
    const cases = generateCases(7, 600, { supports });
    expect(cases.some((c) => c.stack.layers.some((l) => l.kind === 'dm-dust'))).toBe(false);
    const s = shares(scenarioStats(cases));
    for (const tag of SCENARIO_TAGS) expect(s[tag], tag).toBeGreaterThanOrEqual(0.05);
  });

  it('respects narrower supports too (a fs type list, no loop)', () => {
    const cases = generateCases(6, 200, { supports: { layerKinds: ['disk', 'fs', 'file', 'dm-linear'], fsTypes: ['xfs'] } });
    for (const c of cases) {
      for (const l of c.stack.layers) {
        expect(['disk', 'fs', 'file', 'dm-linear']).toContain(l.kind);
        if (l.kind === 'fs') expect(l.type).toBe('xfs');
      }
    }
  });

  it('honours maxOps and maxThreads', () => {
    const cases = generateCases(8, 300, { maxThreads: 2, maxOps: 20 });
    expect(cases.every((c) => c.program.threads.length <= 2)).toBe(true);
    expect(Math.max(...cases.map(ops))).toBeLessThanOrEqual(20);
    expect(Math.max(...generateCases(8, 300).map(ops))).toBeLessThanOrEqual(60);
  });

  it('keeps racing phases the model must walk in serial orders small', () => {
    let racing = 0;
    for (const c of generateCases(9, 600)) {
      // Per phase and thread: the ops, as the model cuts them at barriers.
      const phases: OpOf[][][] = [];
      c.program.threads.forEach((t, ti) => {
        let p = 0;
        for (const op of t.ops) {
          if (op.kind === 'barrier') p++;
          else ((phases[p] ??= c.program.threads.map(() => []))[ti]!).push(op);
        }
      });
      for (const phase of phases) {
        if (!phase) continue;
        const moved = new Set(phase.flat().filter(shifting).map((o) => ('target' in o ? o.target : '')));
        const touching = phase.filter((ops) => ops.some((o) => objects(o).some((id) => moved.has(id))));
        if (moved.size === 0 || touching.length < 2) continue;
        racing++;
        expect(orders(phase.map((ops) => ops.length))).toBeLessThanOrEqual(MAX_ORDERS);
      }
    }
    expect(racing).toBeGreaterThan(10);
    expect(orders([2, 2])).toBe(6);
    expect(orders([3, 3, 3])).toBe(1680);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => normalizeOptions({ supports: { layerKinds: ['fs'] } })).toThrow(GenerateOptionsError);
    expect(() => normalizeOptions({ supports: { layerKinds: ['disk', 'floppy' as never] } })).toThrow(/unknown layer kind 'floppy'/);
    expect(() => normalizeOptions({ maxThreads: 9 })).toThrow(/maxThreads/);
    expect(() => normalizeOptions({ misaligned: 2 })).toThrow(/misaligned/);
    expect(() => normalizeOptions({ weights: { S1: 0, S2: 0, S3: 0, S4: 0, S5: 0, random: 0 } })).toThrow(/no recipe/);
    // Recipes a target cannot build lose their weight instead of failing.
    expect(normalizeOptions({ supports: SUPPORTS.host }).weights.S3).toBe(0);
  });
});

describe('caseArbitrary', () => {
  it('yields valid cases under fast-check (composes with other arbitraries)', () => {
    fc.assert(
      fc.property(caseArbitrary({ maxOps: 30 }), fc.nat(3), (input, _n) => {
        const v = validateCase(input);
        if (!v.ok) throw new Error(JSON.stringify(v.issues));
      }),
      fcParams('caseArbitrary valid', 150),
    );
  });

  it('is reproducible from a fast-check seed', () => {
    const a = fc.sample(detailedArbitrary(), { seed: 99, numRuns: 20 }).map((b) => JSON.stringify(b.value));
    const b = fc.sample(detailedArbitrary(), { seed: 99, numRuns: 20 }).map((b) => JSON.stringify(b.value));
    expect(b).toEqual(a);
  });
});
