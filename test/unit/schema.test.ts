/**
 * The case schema: round trips, coverage of every layer and op kind, and
 * rejection of malformed and impossible cases with a message that names the
 * path in the case.
 */
import { describe, expect, it } from 'vitest';
import { Case, type CaseInput, LAYER_KINDS, OP_KINDS, validateCase } from '../../model/index.ts';
import { VALID_CASES } from '../helpers/valid-cases.ts';

const MiB = 1024 * 1024;

type Layers = CaseInput['stack']['layers'];
type Ops = CaseInput['program']['threads'][number]['ops'];

function mk(layers: unknown[], ...threads: unknown[][]): CaseInput {
  return {
    format: 'blockfarm-case/1',
    name: 'reject',
    seed: 1,
    stack: { layers: layers as Layers },
    program: { threads: threads.map((ops) => ({ ops: ops as Ops })) },
  };
}
const disk = (id: string, size = 16 * MiB, extra: Record<string, unknown> = {}) => ({ id, kind: 'disk', size, ...extra });
const write = (id: number, target: string, extra: Record<string, unknown> = {}) => ({ kind: 'write', id, target, offset: 0, length: 4096, ...extra });

function issues(input: unknown) {
  const r = validateCase(input);
  return r.ok ? [] : r.issues;
}

describe('valid cases', () => {
  for (const [name, input] of Object.entries(VALID_CASES)) {
    it(`${name}: validates, and parse -> JSON -> parse is the identity (defaults filled in)`, () => {
      const v = validateCase(input);
      expect(v.ok ? [] : v.issues).toEqual([]);
      if (!v.ok) return;
      const json = JSON.stringify(v.value);
      const again = Case.parse(JSON.parse(json));
      expect(again).toEqual(v.value);
      // A second validation of the serialised form agrees, and serialising again is byte-identical.
      const v2 = validateCase(JSON.parse(json));
      expect(v2.ok && v2.value).toEqual(v.value);
      expect(JSON.stringify(again)).toBe(json);
      // The one top-level default.
      expect(again.meta).toEqual({ origin: 'manual' });
    });
  }

  it('fills in the documented defaults', () => {
    const v = validateCase(VALID_CASES['raw-disk']);
    if (!v.ok) throw new Error('raw-disk is invalid');
    const ops = v.value.program.threads[0]!.ops;
    const discard = ops.find((o) => o.kind === 'discard');
    expect(discard).toMatchObject({ mode: 'zeroout' });
    const read = ops.find((o) => o.kind === 'read' && o.id === 2);
    expect(read).toMatchObject({ via: 'pvec', nowait: false, direct: false, vectors: 2, buffer: { placement: 'heap', align: 0 } });
    const anon = ops.find((o) => o.kind === 'read' && o.id === 9);
    expect(anon).toMatchObject({ buffer: { placement: 'anon', touchedPages: 1, align: 0 } });

    const f = validateCase(VALID_CASES['ext4-file-ops']);
    if (!f.ok) throw new Error('ext4-file-ops is invalid');
    expect(f.value.stack.layers.find((l) => l.id === 'd')).toEqual({ id: 'd', kind: 'disk', size: 64 * MiB, logicalBlockSize: 512 });
    expect(f.value.stack.layers.find((l) => l.id === 'fs')).toMatchObject({ blockSize: 4096, mkfsOptions: [], mountOptions: ['noatime'] });
    expect(f.value.stack.layers.find((l) => l.id === 'f')).toMatchObject({ prealloc: false });
    const w = f.value.program.threads[0]!.ops[0]!;
    expect(w).toMatchObject({ kind: 'write', dsync: false, via: 'psync', buffer: { placement: 'mmap', file: 'g', offset: 0, align: 0 } });

    const a = validateCase(VALID_CASES['aead-crypt-integrity']);
    if (!a.ok) throw new Error('aead-crypt-integrity is invalid');
    expect(a.value.stack.layers.find((l) => l.id === 'cr')).toEqual({ id: 'cr', kind: 'dm-crypt', on: 'ig', integrity: 'gcm', sectorSize: 512, wipe: false });
    expect(a.value.stack.layers.find((l) => l.id === 'ig')).toMatchObject({ sectorSize: 512, mode: 'journal', wipe: false });

    const s = validateCase(VALID_CASES.snapshots);
    if (!s.ok) throw new Error('snapshots is invalid');
    expect(s.value.stack.layers.find((l) => l.id === 'snap')).toMatchObject({ chunk: 4096, persistent: true, createdAt: 'op' });
    expect(s.value.stack.layers.find((l) => l.id === 'old')).toMatchObject({ createdAt: 'setup' });
  });

  it('every layer kind and every op kind appears in a valid case (a new kind needs one here)', () => {
    const layerKinds = new Set<string>();
    const opKinds = new Set<string>();
    for (const input of Object.values(VALID_CASES)) {
      for (const l of input.stack.layers) layerKinds.add(l.kind);
      for (const t of input.program.threads) for (const o of t.ops) opKinds.add(o.kind);
    }
    expect([...layerKinds].sort()).toEqual(Object.keys(LAYER_KINDS).sort());
    expect([...opKinds].sort()).toEqual([...OP_KINDS].sort());
  });
});

interface Rejection {
  what: string;
  input: unknown;
  path: string;
  phrase: string | RegExp;
}

const REJECTIONS: Rejection[] = [
  {
    what: 'an unknown layer kind',
    input: mk([disk('d'), { id: 'x', kind: 'floppy', on: 'd' }], []),
    path: 'stack.layers[1].kind',
    phrase: 'unknown layer kind "floppy"; known kinds: disk, scsi-debug',
  },
  {
    what: 'an unknown op kind',
    input: mk([disk('d')], [{ kind: 'frobnicate', id: 1, target: 'd' }]),
    path: 'program.threads[0].ops[0].kind',
    phrase: 'unknown op kind "frobnicate"; known kinds: write, read',
  },
  {
    what: 'a layer without a kind',
    input: mk([{ id: 'd', size: MiB }], []),
    path: 'stack.layers[0].kind',
    phrase: 'missing layer kind',
  },
  {
    what: 'an unknown buffer placement',
    input: mk([disk('d')], [write(1, 'd', { buffer: { placement: 'stack' } })]),
    path: 'program.threads[0].ops[0].buffer.placement',
    phrase: 'unknown buffer placement "stack"',
  },
  {
    what: 'an unknown field',
    input: mk([disk('d', 16 * MiB, { colour: 'red' })], []),
    path: 'stack.layers[0]',
    phrase: "unknown field 'colour'",
  },
  {
    what: 'an unknown field at the top',
    input: { ...mk([disk('d')], []), priority: 3 },
    path: '(case)',
    phrase: "unknown field 'priority'",
  },
  {
    what: 'a missing field',
    input: mk([{ id: 'd', kind: 'disk' }], []),
    path: 'stack.layers[0].size',
    phrase: 'missing (expected number)',
  },
  {
    what: 'a missing seed',
    input: (() => {
      const c = mk([disk('d')], []) as Record<string, unknown>;
      delete c.seed;
      return c;
    })(),
    path: 'seed',
    phrase: 'missing (expected number)',
  },
  {
    what: 'a reference to a missing layer',
    input: mk([disk('d'), { id: 'lin', kind: 'dm-linear', on: 'nowhere' }], [write(1, 'lin')]),
    path: 'stack.layers[1].on',
    phrase: "sits on 'nowhere', which is not in the stack",
  },
  {
    what: 'an op on a missing layer',
    input: mk([disk('d')], [write(1, 'ghost')]),
    path: 'program.threads[0].ops[0].target',
    phrase: "targets 'ghost', which is not in the stack",
  },
  {
    what: 'a raid0 member that is missing',
    input: mk([disk('a'), { id: 'r', kind: 'md', level: 0, members: ['a', 'b'] }], []),
    path: 'stack.layers[1].members[1]',
    phrase: "sits on 'b', which is not in the stack",
  },
  {
    what: 'a cycle',
    input: mk([{ id: 'a', kind: 'dm-linear', on: 'b' }, { id: 'b', kind: 'dm-linear', on: 'a' }], []),
    path: 'stack.layers[0]',
    phrase: 'the stack has a cycle: a -> b -> a',
  },
  {
    what: 'a layer on itself',
    input: mk([{ id: 'a', kind: 'dm-linear', on: 'a' }], []),
    path: 'stack.layers[0]',
    phrase: 'the stack has a cycle: a -> a',
  },
  {
    what: 'a raid0 with one member',
    input: mk([disk('a'), { id: 'r', kind: 'md', level: 0, members: ['a'] }], [write(1, 'r')]),
    path: 'stack.layers[1].members',
    phrase: 'a raid0 needs at least 2 members, this one has 1',
  },
  {
    what: 'a file too large for its filesystem',
    input: mk([disk('d', 64 * MiB), { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' }, { id: 'f', kind: 'file', on: 'fs', name: 'f', size: 60 * MiB }], []),
    path: 'stack.layers[1].on',
    phrase: "the files on 'fs' (62914560 bytes) may not fit",
  },
  {
    what: 'a filesystem too small',
    input: mk([disk('d', 4 * MiB), { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' }, { id: 'f', kind: 'file', on: 'fs', name: 'f' }], []),
    path: 'stack.layers[1].on',
    phrase: 'ext4 needs a device of at least 8 MiB',
  },
  {
    what: 'xfs under 300 MiB',
    input: mk([disk('d', 256 * MiB), { id: 'fs', kind: 'fs', on: 'd', type: 'xfs' }, { id: 'f', kind: 'file', on: 'fs', name: 'f' }], []),
    path: 'stack.layers[1].on',
    phrase: 'xfs needs a device of at least 300 MiB',
  },
  {
    what: 'an unaligned O_DIRECT op that claims it must succeed',
    input: mk([disk('d', 16 * MiB, { logicalBlockSize: 4096 })], [write(1, 'd', { offset: 512, direct: true, mustSucceed: true })]),
    path: 'program.threads[0].ops[0].mustSucceed',
    phrase: 'is not a multiple of 4096, so EINVAL is allowed',
  },
  {
    what: 'an O_DIRECT op on a file below the filesystem block size that claims it must succeed',
    input: mk(
      [disk('d', 64 * MiB), { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' }, { id: 'f', kind: 'file', on: 'fs', name: 'f' }],
      [write(1, 'f', { length: 512, direct: true, mustSucceed: true })],
    ),
    path: 'program.threads[0].ops[0].mustSucceed',
    phrase: 'is not a multiple of 4096',
  },
  {
    what: 'a RWF_NOWAIT op that claims it must succeed',
    input: mk([disk('d')], [write(1, 'd', { via: 'pvec', nowait: true, mustSucceed: true })]),
    path: 'program.threads[0].ops[0].mustSucceed',
    phrase: 'RWF_NOWAIT, which may always answer EAGAIN',
  },
  {
    what: 'duplicate op ids',
    input: mk([disk('d')], [write(1, 'd'), write(1, 'd', { offset: 4096 })]),
    path: 'program.threads[0].ops[1].id',
    phrase: 'op id 1 is also used at program.threads[0].ops[0]',
  },
  {
    what: 'duplicate op ids across threads',
    input: mk([disk('d')], [write(1, 'd')], [write(1, 'd', { offset: 4096 })]),
    path: 'program.threads[1].ops[0].id',
    phrase: 'op id 1 is also used at program.threads[0].ops[0]',
  },
  {
    what: 'duplicate layer ids',
    input: mk([disk('d'), disk('d')], []),
    path: 'stack.layers[1].id',
    phrase: "layer id 'd' is used twice",
  },
  {
    what: 'inconsistent barriers across threads',
    input: mk([disk('d')], [write(1, 'd'), { kind: 'barrier', id: 2, name: 'x' }], [write(3, 'd', { offset: 8192 })]),
    path: 'program.threads[1]',
    phrase: 'barriers are global: every thread must pass the same barriers in the same order (thread 0: [x], thread 1: [])',
  },
  {
    what: 'barriers in a different order',
    input: mk(
      [disk('d')],
      [{ kind: 'barrier', id: 1, name: 'a' }, { kind: 'barrier', id: 2, name: 'b' }],
      [{ kind: 'barrier', id: 3, name: 'b' }, { kind: 'barrier', id: 4, name: 'a' }],
    ),
    path: 'program.threads[1]',
    phrase: '(thread 0: [a, b], thread 1: [b, a])',
  },
  {
    what: 'dm-suspend without resume',
    input: mk([disk('d'), { id: 'lin', kind: 'dm-linear', on: 'd' }], [{ kind: 'dm-suspend', id: 1, target: 'lin' }]),
    path: 'program.threads[0].ops[0]',
    phrase: "op 1 suspends 'lin' and its thread never resumes it",
  },
  {
    what: 'IO to a suspended device before its resume',
    input: mk(
      [disk('d'), { id: 'lin', kind: 'dm-linear', on: 'd' }],
      [{ kind: 'dm-suspend', id: 1, target: 'lin' }, write(2, 'lin'), { kind: 'dm-resume', id: 3, target: 'lin' }],
    ),
    path: 'program.threads[0].ops[1]',
    phrase: "would wait forever: its thread suspended 'lin' at op 1",
  },
  {
    what: 'raw IO to a device that has a layer on it',
    input: mk([disk('d'), { id: 'lin', kind: 'dm-linear', on: 'd' }], [write(1, 'd')]),
    path: 'program.threads[0].ops[0].target',
    phrase: "uses 'd' directly, but 'lin' (dm-linear) sits on it",
  },
  {
    what: 'authenticated dm-crypt not on dm-integrity',
    input: mk([disk('d', 32 * MiB), { id: 'cr', kind: 'dm-crypt', on: 'd', integrity: 'gcm' }], [write(1, 'cr')]),
    path: 'stack.layers[1].on',
    phrase: "authenticated dm-crypt (gcm) must sit on a dm-integrity layer, not 'disk'",
  },
  {
    what: 'authenticated dm-crypt with the wrong tag size below',
    input: mk(
      [disk('d', 32 * MiB), { id: 'ig', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 32 }, { id: 'cr', kind: 'dm-crypt', on: 'ig', integrity: 'gcm' }],
      [write(1, 'cr')],
    ),
    path: 'stack.layers[2].on',
    phrase: "dm-integrity 'ig' has tagSize 32; gcm needs 28",
  },
  {
    what: 'authenticated dm-crypt over dm-integrity that hashes itself',
    input: mk(
      [disk('d', 32 * MiB), { id: 'ig', kind: 'dm-integrity', on: 'd', internalHash: 'crc32c', tagSize: 4 }, { id: 'cr', kind: 'dm-crypt', on: 'ig', integrity: 'gcm' }],
      [write(1, 'cr')],
    ),
    path: 'stack.layers[2].on',
    phrase: "must have internalHash 'none'",
  },
  {
    what: 'dm-integrity in bitmap mode without its own hash (the kernel refuses it)',
    input: mk(
      [disk('d', 32 * MiB), { id: 'ig', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28, mode: 'bitmap' }, { id: 'cr', kind: 'dm-crypt', on: 'ig', integrity: 'gcm' }],
      [write(1, 'cr')],
    ),
    path: 'stack.layers[1].mode',
    phrase: "bitmap mode needs an internal hash",
  },
  {
    what: 'a dm-snapshot whose COW device is too small',
    input: mk(
      [disk('b', 8 * MiB), disk('c', 8 * MiB), { id: 'o', kind: 'dm-snapshot-origin', on: 'b' }, { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'c' }],
      [write(1, 'o')],
    ),
    path: 'stack.layers[3].cow',
    phrase: "COW device 'c' (8388608 bytes) may overflow",
  },
  {
    what: 'snapshot ops before snapshot-create',
    input: mk(
      [disk('b', 8 * MiB), disk('c', 16 * MiB), { id: 'o', kind: 'dm-snapshot-origin', on: 'b' }, { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'c', createdAt: 'op' }],
      [{ kind: 'read', id: 1, target: 's', offset: 0, length: 4096 }, { kind: 'snapshot-create', id: 2, target: 's' }],
    ),
    path: 'program.threads[0].ops[0]',
    phrase: "op 1 uses snapshot 's' before snapshot-create op 2 surely ran",
  },
  {
    what: 'a snapshot made by an op that the program never makes',
    input: mk(
      [disk('b', 8 * MiB), disk('c', 16 * MiB), { id: 'o', kind: 'dm-snapshot-origin', on: 'b' }, { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'c', createdAt: 'op' }],
      [write(1, 'o')],
    ),
    path: 'stack.layers[3].createdAt',
    phrase: 'needs exactly one snapshot-create for it (it has 0)',
  },
  {
    what: 'a psync op with several vectors',
    input: mk([disk('d')], [write(1, 'd', { vectors: 2 })]),
    path: 'program.threads[0].ops[0]',
    phrase: "psync has no flags and one buffer; use via 'pvec' or 'io_uring'",
  },
  {
    what: 'a case that is not an object',
    input: [1, 2, 3],
    path: '(case)',
    phrase: 'expected object, received array',
  },
  {
    what: 'the wrong format',
    input: { ...mk([disk('d')], []), format: 'blockfarm-case/0' },
    path: 'format',
    phrase: 'blockfarm-case/1',
  },
];

describe('rejections name the path and say what is wrong', () => {
  for (const r of REJECTIONS) {
    it(r.what, () => {
      const got = issues(r.input);
      expect(got.length, JSON.stringify(got)).toBeGreaterThan(0);
      const at = got.filter((i) => i.path === r.path);
      expect(at, `issues: ${JSON.stringify(got)}`).not.toEqual([]);
      const phrase = r.phrase;
      expect(
        at.some((i) => (typeof phrase === 'string' ? i.message.includes(phrase) : phrase.test(i.message))),
        `no issue at ${r.path} says '${String(phrase)}': ${JSON.stringify(at)}`,
      ).toBe(true);
      for (const i of got) {
        expect(i.message).not.toMatch(/[\r\n]/);
        expect(i.message).not.toMatch(/internal validation error/);
      }
    });
  }

  it('a field name with a newline stays on one line', () => {
    const input = JSON.parse(JSON.stringify(mk([disk('d')], [])).replace('"id":"d"', '"id":"d","evil\\nkey":1'));
    expect(issues(input)).toEqual([{ path: 'stack.layers[0]', message: "unknown field 'evil\\nkey'" }]);
  });

  it('a kind that is a deeply nested value is named, not serialised', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const input = mk([{ id: 'd', kind: deep, size: MiB }], []);
    expect(issues(input)).toEqual([{ path: 'stack.layers[0].kind', message: expect.stringMatching(/^unknown layer kind an array; known kinds: disk/) }]);
  });
});
