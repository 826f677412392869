/**
 * The scenario classifier: every seed sN-* is classified SN (from its
 * structure; names and meta are not read), hand-made near misses are not,
 * and what the generator aims at is what it gets.
 */
import { describe, expect, it } from 'vitest';
import { type Case, type CaseInput, validateCase } from '../../model/index.ts';
import { classifyCase, explainCase } from '../../coordinator/classify/scenarios.ts';
import { ScenarioCounter, formatScenarioStats, scenarioStats } from '../../coordinator/classify/stats.ts';
import { generateDetailed } from '../../coordinator/generate/index.ts';
import { loadSeedCases, scenarioOfFileName } from '../../corpus/seeds.ts';

function valid(input: CaseInput): Case {
  const v = validateCase(input);
  if (!v.ok) throw new Error(JSON.stringify(v.issues));
  return v.value;
}

const MiB = 2 ** 20;
type OpIn = CaseInput['program']['threads'][number]['ops'][number];
type ReadIn = Extract<OpIn, { kind: 'read' }>;
const base = (layers: CaseInput['stack']['layers'], threads: CaseInput['program']['threads']): Case =>
  valid({ format: 'blockfarm-case/1', name: 'negative', seed: 1, stack: { layers }, program: { threads } });
const ext4On = (disk: { size?: number; logicalBlockSize?: 512 | 4096 } = {}) => [
  { id: 'd0', kind: 'disk' as const, size: disk.size ?? 128 * MiB, logicalBlockSize: disk.logicalBlockSize ?? 512 },
  { id: 'fs0', kind: 'fs' as const, on: 'd0', type: 'ext4' as const },
];

describe('classifyCase on the seed corpus', () => {
  for (const s of loadSeedCases()) {
    it(`${s.file} is ${scenarioOfFileName(s.file)}`, () => {
      const c = valid(s.caseJson as CaseInput);
      expect(classifyCase(c)).toContain(scenarioOfFileName(s.file));
      // Structure only: the same case under another name and notes classifies the same.
      expect(classifyCase({ ...c, name: 'x', description: 'y', meta: { origin: 'manual', notes: 'S1 S2 S3 S4 S5' } })).toEqual(classifyCase(c));
    });
  }
});

describe('classifyCase on near misses', () => {
  it('S1: not for a buffered loop with matching 4 KiB blocks, nor for a loop nobody does IO through', () => {
    const layers = [...ext4On(), { id: 'b', kind: 'file' as const, on: 'fs0', name: 'b.img', size: 16 * MiB }];
    const plain = base([...layers, { id: 'lo', kind: 'loop', on: 'b', directIo: false, logicalBlockSize: 4096 }], [{ ops: [{ kind: 'write', id: 1, target: 'lo', offset: 0, length: 4096, direct: true }] }]);
    expect(classifyCase(plain)).not.toContain('S1');
    const idle = base([...layers, { id: 'lo', kind: 'loop', on: 'b', directIo: true, logicalBlockSize: 512 }, { id: 'd9', kind: 'disk', size: 64 * MiB }], [{ ops: [{ kind: 'write', id: 1, target: 'd9', offset: 0, length: 4096 }] }]);
    expect(classifyCase(idle)).not.toContain('S1');
    // A loop over a 512-byte disk in direct-IO mode is not the mismatch either.
    const small = base([{ id: 'd0', kind: 'disk', size: 64 * MiB }, { id: 'lo', kind: 'loop', on: 'd0', directIo: true, logicalBlockSize: 512 }], [{ ops: [{ kind: 'read', id: 1, target: 'lo', offset: 0, length: 512, direct: true }] }]);
    expect(classifyCase(small)).not.toContain('S1');
    // ... while the same over a 4 KiB disk is.
    const big = base([{ id: 'd0', kind: 'disk', size: 64 * MiB, logicalBlockSize: 4096 }, { id: 'lo', kind: 'loop', on: 'd0', directIo: true, logicalBlockSize: 512 }], [{ ops: [{ kind: 'read', id: 1, target: 'lo', offset: 0, length: 512, direct: true }] }]);
    expect(classifyCase(big)).toEqual(['S1']);
  });

  it('S2: not into a heap buffer, not a fully touched one, not over a single extent, not buffered', () => {
    const layers = [...ext4On(), { id: 'f', kind: 'file' as const, on: 'fs0', name: 'f.bin' }];
    const setup = [
      { kind: 'write' as const, id: 1, target: 'f', offset: 0, length: 4096 },
      { kind: 'fsync' as const, id: 2, target: 'f' },
      { kind: 'write' as const, id: 3, target: 'f', offset: 4096, length: 4096 },
      { kind: 'fsync' as const, id: 4, target: 'f' },
    ];
    const read = (buffer: ReadIn['buffer'], more: Partial<ReadIn> = {}): ReadIn => ({ kind: 'read', id: 9, target: 'f', offset: 0, length: 8192, via: 'io_uring', direct: true, buffer, ...more });
    expect(classifyCase(base(layers, [{ ops: [...setup, read({ placement: 'anon', touchedPages: 1 })] }]))).toEqual(['S2']);
    expect(classifyCase(base(layers, [{ ops: [...setup, read({ placement: 'heap', align: 0 })] }]))).not.toContain('S2');
    expect(classifyCase(base(layers, [{ ops: [...setup, read({ placement: 'anon', touchedPages: 2 })] }]))).not.toContain('S2');
    expect(classifyCase(base(layers, [{ ops: [...setup, read({ placement: 'anon', touchedPages: 1 }, { direct: false })] }]))).not.toContain('S2');
    expect(classifyCase(base(layers, [{ ops: [...setup, read({ placement: 'anon', touchedPages: 1 }, { via: 'psync' })] }]))).not.toContain('S2');
    // One write, one fsync: one extent.
    const single = [{ kind: 'write' as const, id: 1, target: 'f', offset: 0, length: 8192 }, { kind: 'fsync' as const, id: 2, target: 'f' }];
    expect(classifyCase(base(layers, [{ ops: [...single, read({ placement: 'anon', touchedPages: 1 })] }]))).not.toContain('S2');
    // Two writes with no writeback between them: delayed allocation may make them one extent.
    const merged = [setup[0]!, setup[2]!, setup[3]!];
    expect(classifyCase(base(layers, [{ ops: [...merged, read({ placement: 'anon', touchedPages: 1 })] }]))).not.toContain('S2');
  });

  it('S3: not plain dm-crypt, not dm-integrity alone, not scsi_debug without protection information or without dm above', () => {
    const io = (target: string) => [{ ops: [{ kind: 'write' as const, id: 1, target, offset: 0, length: 4096, direct: true }] }];
    expect(classifyCase(base([{ id: 'd0', kind: 'disk', size: 64 * MiB }, { id: 'c', kind: 'dm-crypt', on: 'd0' }], io('c')))).toEqual([]);
    expect(classifyCase(base([{ id: 'd0', kind: 'disk', size: 64 * MiB }, { id: 'i', kind: 'dm-integrity', on: 'd0' }], io('i')))).toEqual([]);
    expect(classifyCase(base([{ id: 's', kind: 'scsi-debug', size: 64 * MiB }, { id: 'l', kind: 'dm-linear', on: 's' }], io('l')))).toEqual([]);
    expect(classifyCase(base([{ id: 's', kind: 'scsi-debug', size: 64 * MiB, dif: 1 }], io('s')))).toEqual([]);
    expect(classifyCase(base([{ id: 's', kind: 'scsi-debug', size: 64 * MiB, dif: 1 }, { id: 'l', kind: 'dm-linear', on: 's' }], io('l')))).toEqual(['S3']);
  });

  it('S4: not a table swap with IO only in the same thread or in another phase', () => {
    const layers = [{ id: 'd0', kind: 'disk' as const, size: 64 * MiB }, { id: 'live', kind: 'dm-linear' as const, on: 'd0' }];
    const swap = (first: number) => [
      { kind: 'dm-suspend' as const, id: first, target: 'live' },
      { kind: 'dm-reload' as const, id: first + 1, target: 'live', as: 'snapshot-origin' as const },
      { kind: 'dm-resume' as const, id: first + 2, target: 'live' },
    ];
    const w = (id: number) => ({ kind: 'write' as const, id, target: 'live', offset: 0, length: 4096 });
    expect(classifyCase(base(layers, [{ ops: [w(1), ...swap(2), w(5)] }]))).toEqual([]);
    const phased = base(layers, [{ ops: [w(1), { kind: 'barrier', id: 2, name: 'x' }] }, { ops: [{ kind: 'barrier', id: 3, name: 'x' }, ...swap(4)] }]);
    expect(classifyCase(phased)).toEqual([]);
    const racing = base(layers, [{ ops: [w(1)] }, { ops: swap(2) }]);
    expect(classifyCase(racing)).toEqual(['S4']);
  });

  it('S5: not a mapping write and fallocate in one thread, nor in different phases, nor on different files', () => {
    const layers = [...ext4On(), { id: 'f', kind: 'file' as const, on: 'fs0', name: 'f.bin', size: 65536 }, { id: 'g', kind: 'file' as const, on: 'fs0', name: 'g.bin', size: 65536 }];
    const mw = (id: number, target = 'f') => ({ kind: 'mmap-write' as const, id, target, offset: 0, length: 4096 });
    const fa = (id: number, target = 'f') => ({ kind: 'fallocate' as const, id, target, offset: 0, length: 4096, mode: 'punch-hole' as const });
    expect(classifyCase(base(layers, [{ ops: [mw(1), fa(2)] }]))).toEqual([]);
    expect(classifyCase(base(layers, [{ ops: [mw(1), { kind: 'barrier', id: 2, name: 'x' }] }, { ops: [{ kind: 'barrier', id: 3, name: 'x' }, fa(4)] }]))).toEqual([]);
    expect(classifyCase(base(layers, [{ ops: [mw(1)] }, { ops: [fa(2, 'g')] }]))).toEqual([]);
    expect(classifyCase(base(layers, [{ ops: [mw(1)] }, { ops: [fa(2)] }]))).toEqual(['S5']);
    expect(classifyCase(base(layers, [{ ops: [mw(1)] }, { ops: [{ kind: 'truncate', id: 2, target: 'f', size: 0 }] }]))).toEqual(['S5']);
  });

  it('explains what matched', () => {
    const c = valid(loadSeedCases().find((s) => s.file.startsWith('s5-'))!.caseJson as CaseInput);
    expect(explainCase(c)[0]!.why).toMatch(/racing fallocate/);
  });
});

describe('the generator and the classifier agree', () => {
  it('a recipe aimed at a scenario produces a case of that scenario at least 85% of the time', () => {
    const hit = new Map<string, [number, number]>();
    for (let i = 0; i < 600; i++) {
      const b = generateDetailed(808, i);
      if (b.recipe === 'random' || b.recipe === 'fallback') continue;
      const [h, n] = hit.get(b.recipe) ?? [0, 0];
      hit.set(b.recipe, [h + (classifyCase(b.value).includes(b.recipe) ? 1 : 0), n + 1]);
    }
    for (const [recipe, [h, n]] of hit) expect(h / n, `${recipe}: ${h}/${n}`).toBeGreaterThanOrEqual(0.85);
  });

  it('campaign statistics count per scenario, merge, and print', () => {
    const cases = Array.from({ length: 50 }, (_, i) => generateDetailed(809, i).value);
    const all = scenarioStats(cases);
    const a = new ScenarioCounter();
    const b = new ScenarioCounter();
    cases.forEach((c, i) => (i % 2 ? a : b).add(c));
    a.merge(b.snapshot());
    expect(a.snapshot()).toEqual(all);
    expect(all.total).toBe(50);
    expect(formatScenarioStats(all)).toMatch(/^scenario\s+cases\s+share\nS1\s+\d+\s+\d+\.\d%/);
  });
});
