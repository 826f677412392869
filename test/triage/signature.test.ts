/**
 * Signatures: stable across runs (timestamps, pids, addresses, device
 * numbers change, the id does not), one lock inversion seen from its two
 * sides is one signature, and divergences of the model are signed by what
 * went wrong and where (class, op, path, layer, filesystem), never by
 * offsets, op ids or sizes.
 *
 * Console texts: worker/kernel-log/testdata (the parser's golden files) and
 * test/triage/testdata (written for these tests).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Case, Divergence, RunOutcome } from '../../model/index.ts';
import {
  type Finding, allSignatures, isSignatureId, kindOfTitle, primaryDivergence, showsSignature, signatureOf,
} from '../../coordinator/triage/signature.ts';
import { MemorySignatureStore } from '../../coordinator/triage/store.ts';
import { parseKernelLog } from '../../worker/kernel-log/parse.ts';
import { build, caseInput } from '../helpers/cases.ts';

const ROOT = join(import.meta.dirname, '../..');
function golden(name: string): string {
  const t = readFileSync(join(ROOT, 'worker/kernel-log/testdata', name), 'utf8');
  return t.slice(t.indexOf('\n\n') + 2);
}
const otherSide = readFileSync(join(ROOT, 'test/triage/testdata/lockdep-loop-other-side.txt'), 'utf8');

/** The same log as another run would print it: other times, pids, addresses, loop numbers, CPU. */
function anotherRun(log: string, k: number): string {
  return log
    .replace(/\[\s*(\d+)\.(\d+)\]/g, (_, s: string, us: string) => `[${String(Number(s) + 1000 * k).padStart(5)}.${us}]`)
    .replace(/\bPID: \d+/g, `PID: ${4000 + k}`)
    .replace(/\/(\d{3,5})\b/g, (_, p: string) => `/${Number(p) + k}`)
    .replace(/\bff[0-9a-f]{14}\b/g, (h) => (BigInt(`0x${h}`) + BigInt(0x1000 * k)).toString(16))
    .replace(/\bloop(\d+)\b/g, (_, n: string) => `loop${Number(n) + k}`)
    .replace(/\bCPU: \d/g, `CPU: ${k % 2}`);
}

function crashOf(log: string, kind: 'crash' | 'hang' = 'crash'): Finding {
  const r = parseKernelLog(log).find((x) => x.crash) ?? parseKernelLog(log)[0]!;
  return { kind, target: 'qemu:6.1.0-21-amd64', title: r.title, log, durationMs: 1 };
}

function kernelLogDivergence(title: string): Finding {
  return { kind: 'divergence', target: 'host', divergences: [{ class: 'kernel-log', expected: 'no kernel report', observed: title, message: `the kernel logged: ${title}` }], notes: [], durationMs: 1 };
}

describe('kernel findings', () => {
  it('a crash keeps its signature when the run differs in times, pids, addresses and devices', () => {
    for (const name of ['02.txt', '03.txt', '04.txt']) {
      const log = golden(name);
      const a = signatureOf(crashOf(log));
      for (const k of [1, 2, 3]) {
        const b = signatureOf(crashOf(anotherRun(log, k)));
        expect(b.id, `${name} run ${k}`).toBe(a.id);
        expect(b.altIds).toEqual(a.altIds);
      }
      expect(isSignatureId(a.id)).toBe(true);
      expect(a.parts.source).toBe('kernel');
    }
  });

  it('a KASAN report is signed by its kind and guilty function, with where the object was allocated and freed as alternatives', () => {
    const log = golden('02.txt');
    const s = signatureOf(crashOf(log));
    expect(s.parts.reportKind).toBe('KASAN');
    expect(s.parts.guilty).toBeDefined();
    expect(s.title).toContain(s.parts.guilty!);
    expect(s.altIds.length).toBeGreaterThanOrEqual(1);
    expect(s.title).not.toMatch(/0x|ffff|\d{3,}/);
  });

  it('one lock inversion seen from its two sides gets one signature when the logs are at hand', () => {
    const a = parseKernelLog(golden('08.txt'))[0]!;
    const b = parseKernelLog(otherSide)[0]!;
    expect(a.title).toBe('possible deadlock in loop_reread_partitions');
    expect(b.title).toBe('possible deadlock in lo_open');
    const sa = signatureOf(kernelLogDivergence(a.title), undefined, golden('08.txt'));
    const sb = signatureOf(kernelLogDivergence(b.title), undefined, anotherRun(otherSide, 2));
    expect(sa.id).toBe(sb.id);
    expect(sa.title).not.toBe(sb.title);
    expect(sa.parts.reportKind).toBe('lockdep');
  });

  it('and the store merges them when one side came without its log (title only)', async () => {
    const store = new MemorySignatureStore();
    const withLog = signatureOf(kernelLogDivergence('possible deadlock in lo_open'), undefined, otherSide);
    const bare = signatureOf(kernelLogDivergence('possible deadlock in loop_reread_partitions'));
    expect(bare.id).not.toBe(withLog.id);
    const r1 = await store.record({ signature: withLog, target: 'qemu:6.6.13-lockdep', kernel: '6.6.13-lockdep', at: 1000 });
    const r2 = await store.record({ signature: bare, target: 'host', kernel: '6.18.44', at: 2000 });
    expect(r1.isNew).toBe(true);
    expect(r2.isNew).toBe(false);
    expect(r2.mergedFrom).toBe(bare.id);
    expect(r2.record.id).toBe(withLog.id);
    expect(r2.record.count).toBe(2);
    expect(Object.keys(r2.record.kernels).sort()).toEqual(['6.18.44', '6.6.13-lockdep']);
    expect((await store.get(bare.id))?.id).toBe(withLog.id);
    expect(await store.list()).toHaveLength(1);
  });

  it('a kernel-log title and the same report as a crash are one bug', () => {
    const log = golden('02.txt');
    const crash = signatureOf(crashOf(log));
    const asLog = signatureOf(kernelLogDivergence(crash.title));
    expect(asLog.id).toBe(crash.id);
    expect(kindOfTitle(crash.title)).toBe('KASAN');
  });

  it('knows the report kind of bare titles', () => {
    expect(kindOfTitle('WARNING in ext4_evict_inode')).toBe('WARNING');
    expect(kindOfTitle('INFO: task hung in blk_mq_freeze_queue_wait')).toBe('hung-task');
    expect(kindOfTitle('I/O error on loopN')).toBe('io-error');
    expect(kindOfTitle('something else')).toBe('unknown');
  });

  it('a kernel bug report outranks the data divergences it came with; IO error reports do not', () => {
    const ds: Divergence[] = [
      { class: 'wrong-data', dataClass: 'zeroes', op: 3, opKind: 'read', offset: 4096, expected: 'op 1', observed: 'zeroes', message: '' },
      { class: 'kernel-log', expected: '', observed: 'I/O error on loopN', message: '' },
      { class: 'kernel-log', expected: '', observed: 'WARNING in ext4_evict_inode', message: '' },
    ];
    expect(primaryDivergence(ds)?.observed).toBe('WARNING in ext4_evict_inode');
    expect(primaryDivergence([ds[0]!, ds[1]!])?.class).toBe('wrong-data');
  });
});

// ---------------------------------------------------------------- model divergences

const MiB = 1024 * 1024;

function loopCase(fs: 'ext4' | 'btrfs', offsets: [number, number], ids: [number, number], via: 'psync' | 'pvec' | 'io_uring' = 'io_uring'): Case {
  return build(
    caseInput(
      [
        { id: 'd', kind: 'disk', size: 256 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: fs },
        { id: 'back', kind: 'file', on: 'fs', name: 'back.img', size: 32 * MiB },
        { id: 'lo', kind: 'loop', on: 'back', directIo: true, logicalBlockSize: 512 },
      ],
      [
        { kind: 'write', id: ids[0], target: 'lo', offset: offsets[0], length: 8192, direct: true },
        { kind: 'read', id: ids[1], target: 'lo', offset: offsets[1], length: 8192, direct: true, via },
      ],
      { seed: ids[0] * 7 },
    ),
  ).c;
}

function wrongData(c: Case, readId: number, writeId: number, offset: number, dataClass: 'zeroes' | 'stale' = 'zeroes'): Finding {
  return {
    kind: 'divergence',
    target: 'host',
    durationMs: 5,
    notes: [],
    divergences: [
      { class: 'wrong-data', dataClass, op: readId, opKind: 'read', thread: 0, object: 'lo', offset, expected: `op ${writeId}`, observed: 'zeroes', expectedWriters: [writeId], message: `op ${readId} read zeroes at offset ${offset}` },
    ],
  };
}

describe('model divergences', () => {
  it('ignore offsets, op ids, sizes and seeds', () => {
    const a = loopCase('ext4', [0, 0], [1, 2]);
    const b = loopCase('ext4', [4 * MiB, 4 * MiB + 512], [17, 40]);
    const sa = signatureOf(wrongData(a, 2, 1, 512), a);
    const sb = signatureOf(wrongData(b, 40, 17, 4 * MiB + 4096), b);
    expect(sb.id).toBe(sa.id);
    expect(sa.key).toBe('model|wrong-data|zeroes|-|read|io_uring+direct|loop|ext4');
    expect(sa.title).toBe('wrong data (zeroes) from read via io_uring O_DIRECT on loop (ext4)');
    for (const n of ['512', '4096', '4194304', '8192', '17', '40']) expect(`${sb.key} ${sb.title}`).not.toContain(n);
  });

  it('tell apart the data class, the submission path, the filesystem and the layer', () => {
    const base = loopCase('ext4', [0, 0], [1, 2]);
    const id = signatureOf(wrongData(base, 2, 1, 0), base).id;
    const stale = signatureOf(wrongData(base, 2, 1, 0, 'stale'), base).id;
    const psync = loopCase('ext4', [0, 0], [1, 2], 'psync');
    const btrfs = loopCase('btrfs', [0, 0], [1, 2]);
    const ids = [id, stale, signatureOf(wrongData(psync, 2, 1, 0), psync).id, signatureOf(wrongData(btrfs, 2, 1, 0), btrfs).id];
    expect(new Set(ids).size).toBe(4);
  });

  it('an unexpected error is signed by its errno', () => {
    const c = loopCase('ext4', [0, 0], [1, 2], 'pvec');
    const eio: Finding = { kind: 'divergence', target: 'host', durationMs: 1, notes: [], divergences: [{ class: 'unexpected-error', op: 1, opKind: 'write', expected: 'success (8192 bytes)', observed: 'EIO', message: '' }] };
    const s = signatureOf(eio, c);
    expect(s.parts).toMatchObject({ class: 'unexpected-error', errno: 'EIO', op: 'write', path: 'psync+direct', top: 'loop', fs: 'ext4' });
    expect(s.title).toBe('unexpected EIO from write via psync O_DIRECT on loop (ext4)');
    const einval = structuredClone(eio) as Extract<RunOutcome, { kind: 'divergence' }>;
    einval.divergences[0]!.observed = 'EINVAL';
    expect(signatureOf(einval, c).id).not.toBe(s.id);
  });

  it('lists every distinct signature of an outcome, the primary first', () => {
    const c = loopCase('ext4', [0, 0], [1, 2]);
    const o = wrongData(c, 2, 1, 0) as Extract<Finding, { kind: 'divergence' }>;
    o.divergences.push({ ...o.divergences[0]!, offset: 4096 }, { class: 'fsck', expected: 'a clean check', observed: 'exit 4', message: 'fsck fs found damage (exit 4): ...' });
    const all = allSignatures(o, c);
    expect(all).toHaveLength(2);
    expect(all[1]!.parts).toMatchObject({ class: 'fsck', top: 'fs', fs: 'ext4' });
  });

  it("'core' matching keeps the bug and lets the path and stack change; 'exact' does not", () => {
    const a = loopCase('ext4', [0, 0], [1, 2]);
    const b = loopCase('btrfs', [0, 0], [1, 2], 'psync');
    const sa = signatureOf(wrongData(a, 2, 1, 0), a);
    expect(showsSignature(wrongData(b, 2, 1, 0), b, sa, 'core')).toBe(true);
    expect(showsSignature(wrongData(b, 2, 1, 0), b, sa, 'exact')).toBe(false);
    expect(showsSignature(wrongData(b, 2, 1, 0, 'stale'), b, sa, 'core')).toBe(false);
    expect(showsSignature({ kind: 'pass', target: 'host', notes: [], durationMs: 1 }, b, sa)).toBe(false);
  });
});
