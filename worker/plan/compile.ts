/**
 * Compile a validated case into an executor plan for one environment: the
 * layers' set-up steps bottom-up, the program with every target resolved to
 * a path, the geometry probes, what to read back at the end, and the
 * decoding candidates. Pure: the same case and environment give the same plan.
 */
import { type Case, DM_KINDS, type Op, type SetupEnv, type StackInfo, layerModule } from '../../model/index.ts';
import { type DmLayer, dmName, reloadArgvs, snapshotCreateArgvs, snapshotMergeArgvs, snapshotRemoveArgvs } from '../../model/layers/dm-tables.ts';
import { CaseModel } from '../../model/semantics/case-model.ts';
import { finalObjects, predict } from '../../model/semantics/evaluate.ts';
import type { ExecPlan, FinalRead, PlanOp, SetupStep } from '../executor/protocol.ts';

export type CompileResult = { ok: true; plan: ExecPlan } | { ok: false; unsupported: string };

/** fallocate(2) flag values. */
const FALLOC_FLAGS: Record<string, number> = {
  allocate: 0,
  'keep-size': 0x01,
  'punch-hole': 0x02 | 0x01,
  'collapse-range': 0x08,
  'zero-range': 0x10,
  'zero-range-keep-size': 0x10 | 0x01,
  'insert-range': 0x20,
  'unshare-range': 0x40,
};

/** sync_file_range(2) flags: WRITE, or WAIT_BEFORE|WRITE|WAIT_AFTER. */
const SFR_FLAGS = { write: 0x2, 'wait-write': 0x1 | 0x2 | 0x4 } as const;

/** Block devices larger than this are read back only where the program touched them. */
const WHOLE_READBACK_LIMIT = 256 * 1024 * 1024;

const PAGE = 4096;

export interface CompileOptions {
  opTimeoutMs?: number;
}

export function compilePlan(c: Case, info: StackInfo, env: SetupEnv, opts: CompileOptions = {}): CompileResult {
  const setup: SetupStep[] = [];
  const checks: ExecPlan['checks'] = [];
  for (const l of info.order) {
    const m = layerModule(l);
    if (!m.setup) return { ok: false, unsupported: `this target cannot build ${l.kind} layers yet ('${l.id}')` };
    const s = m.setup(l, env, info);
    setup.push(...s.steps);
    // A filesystem that holds a loop device's backing file cannot be unmounted while the loop is attached.
    const pinned = l.kind === 'fs' && info.usersOf(l.id).some((f) => info.usersOf(f.id).length > 0);
    if (s.checks && !pinned) checks.unshift(...s.checks);
  }

  const mapLength = mmapWindows(c);
  const threads: PlanOp[][] = [];
  for (const t of c.program.threads) {
    const ops: PlanOp[] = [];
    for (const op of t.ops) {
      const p = compileOp(op, info, env, mapLength);
      if (typeof p === 'string') return { ok: false, unsupported: p };
      ops.push(p);
    }
    threads.push(ops);
  }
  threads.forEach((ops, t) => ops.push(...postRunOps(info, env, t)));

  const model = new CaseModel(c, info);
  const { world } = predict(model);
  const final: FinalRead[] = finalObjects(model, world).map((id) => {
    const isFile = info.layer(id)?.kind === 'file';
    const read: FinalRead = { id, path: isFile ? env.filePath(id) : env.devicePath(id), kind: isFile ? 'file' : 'block' };
    if (!isFile) read.ranges = readbackRanges(c, id, info.geometry(id)?.sizeMin ?? 0);
    return read;
  });

  return {
    ok: true,
    plan: {
      version: 1,
      seed: c.seed,
      opTimeoutMs: opts.opTimeoutMs ?? 60_000,
      setup,
      geometry: info.layers
        .filter((l) => l.kind !== 'fs')
        .map((l) => ({ id: l.id, path: l.kind === 'file' ? env.filePath(l.id) : env.devicePath(l.id), kind: l.kind === 'file' ? ('file' as const) : ('block' as const) })),
      threads,
      final,
      candidates: decodeCandidates(c),
      checks,
    },
  };
}

function pathOf(id: string, info: StackInfo, env: SetupEnv): string {
  return info.layer(id)?.kind === 'file' ? env.filePath(id) : env.devicePath(id);
}

function compileOp(op: Op, info: StackInfo, env: SetupEnv, mapLength: Map<string, number>): PlanOp | string {
  const path = 'target' in op ? pathOf(op.target, info, env) : '';
  switch (op.kind) {
    case 'write':
    case 'read': {
      const b = op.buffer;
      const buffer = b.placement === 'mmap' ? { placement: 'mmap' as const, path: env.filePath(b.file), offset: b.offset, align: b.align } : b;
      return { id: op.id, kind: op.kind, path, offset: op.offset, length: op.length, via: op.via, nowait: op.nowait, direct: op.direct, dsync: op.kind === 'write' ? op.dsync : false, vectors: op.vectors, buffer };
    }
    case 'mmap-write':
    case 'mmap-read':
      return { id: op.id, kind: op.kind, path, offset: op.offset, length: op.length, mapLength: mapLength.get(op.target) ?? PAGE };
    case 'msync':
      return { id: op.id, kind: 'msync', path, mode: op.mode, mapLength: mapLength.get(op.target) ?? PAGE };
    case 'fallocate':
      return { id: op.id, kind: 'fallocate', path, mode: FALLOC_FLAGS[op.mode]!, offset: op.offset, length: op.length };
    case 'truncate':
      return { id: op.id, kind: 'truncate', path, size: op.size };
    case 'fsync':
      return { id: op.id, kind: 'fsync', path, dataOnly: op.dataOnly };
    case 'sync-file-range':
      return { id: op.id, kind: 'sync-file-range', path, offset: op.offset, length: op.length, flags: SFR_FLAGS[op.flags] };
    case 'flush':
      return { id: op.id, kind: 'flush', path };
    case 'drop-caches':
      return { id: op.id, kind: 'drop-caches' };
    case 'discard':
      return { id: op.id, kind: 'discard', path, mode: op.mode, offset: op.offset, length: op.length };
    case 'loop-set-direct-io':
      return { id: op.id, kind: 'loop-set-direct-io', path, on: op.on };
    case 'loop-set-block-size':
      return { id: op.id, kind: 'loop-set-block-size', path, size: op.size };
    case 'corrupt':
      return { id: op.id, kind: 'corrupt', path, offset: op.offset, length: op.length };
    case 'barrier':
      return { id: op.id, kind: 'barrier', name: op.name };
    case 'sleep':
      return { id: op.id, kind: 'sleep', ms: op.ms };
    case 'remount': {
      const fsl = info.layer(op.target);
      if (fsl?.kind !== 'fs') return `remount of '${op.target}', which is not a filesystem`;
      const mnt = env.mountPoint(fsl.id);
      const dev = env.devicePath(fsl.on);
      const opts = fsl.mountOptions.length ? fsl.mountOptions.join(',') : 'defaults';
      const argvs =
        op.mode === 'cycle'
          ? [['umount', mnt], ['mount', '-t', fsl.type, '-o', opts, dev, mnt]]
          : [['mount', '-o', 'remount,ro', mnt], ['mount', '-o', 'remount,rw', mnt]];
      return { id: op.id, kind: 'exec', argvs, closePrefix: `${mnt}/` };
    }
    case 'md-fail': {
      const md = info.layer(op.target);
      if (md?.kind !== 'md') return `md-fail of '${op.target}', which is not md`;
      return { id: op.id, kind: 'exec', argvs: [['mdadm', env.devicePath(md.id), '--fail', env.devicePath(md.members[op.member]!)]] };
    }
    case 'dm-suspend':
    case 'dm-resume':
    case 'dm-reload': {
      const l = info.layer(op.target);
      if (!l || !DM_KINDS.has(l.kind)) return `${op.kind} of '${op.target}', which is not a device-mapper layer`;
      const name = dmName(env, l.id);
      if (op.kind === 'dm-suspend') return { id: op.id, kind: 'exec', argvs: [['dmsetup', 'suspend', ...(op.noflush ? ['--noflush'] : []), name]] };
      if (op.kind === 'dm-resume') return { id: op.id, kind: 'exec', argvs: [['dmsetup', 'resume', name]] };
      return { id: op.id, kind: 'exec', argvs: reloadArgvs(l as DmLayer, op.as, env, info) };
    }
    case 'snapshot-create':
    case 'snapshot-remove':
    case 'snapshot-merge': {
      const l = info.layer(op.target);
      if (l?.kind !== 'dm-snapshot') return `${op.kind} of '${op.target}', which is not a dm-snapshot layer`;
      if (op.kind === 'snapshot-create') return { id: op.id, kind: 'exec', argvs: snapshotCreateArgvs(l, env, info) };
      // The snapshot device goes away: close what the program holds open on it first.
      const closePrefix = env.devicePath(l.id);
      if (op.kind === 'snapshot-remove') return { id: op.id, kind: 'exec', argvs: snapshotRemoveArgvs(l, env), closePrefix };
      return { id: op.id, kind: 'exec', argvs: snapshotMergeArgvs(l, env, info), closePrefix };
    }
  }
}

/**
 * Plan-only ops, after the program: every thread meets at a barrier, then
 * thread 0 unmounts and mounts each filesystem again, so that the final
 * read-back (after dropping caches) shows what reached the disk. Their ids
 * are above any case op id; runCase judges a failed remount.
 */
export const POST_RUN_OP_BASE = 2 ** 30;

function postRunOps(info: StackInfo, env: SetupEnv, thread: number): PlanOp[] {
  const remountable = info.order.filter((l) => l.kind === 'fs' && !info.usersOf(l.id).some((f) => info.usersOf(f.id).length > 0));
  if (remountable.length === 0) return [];
  const ops: PlanOp[] = [{ id: POST_RUN_OP_BASE + thread, kind: 'barrier', name: 'blockfarm-post-run' }];
  if (thread !== 0) return ops;
  remountable.forEach((fsl, i) => {
    if (fsl.kind !== 'fs') return;
    const mnt = env.mountPoint(fsl.id);
    const opts = fsl.mountOptions.length ? fsl.mountOptions.join(',') : 'defaults';
    ops.push({ id: POST_RUN_OP_BASE + 100 + i, kind: 'exec', argvs: [['umount', mnt], ['mount', '-t', fsl.type, '-o', opts, env.devicePath(fsl.on), mnt]], closePrefix: `${mnt}/` });
  });
  return ops;
}

/** Each file's mapping window: as far as any mmap op on it reaches, in whole pages. */
function mmapWindows(c: Case): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of c.program.threads)
    for (const op of t.ops) {
      if (op.kind !== 'mmap-write' && op.kind !== 'mmap-read') continue;
      const end = Math.ceil((op.offset + op.length) / PAGE) * PAGE;
      out.set(op.target, Math.max(out.get(op.target) ?? PAGE, end));
    }
  return out;
}

/** Whole small devices; for large ones only what the program touched (merged, page-aligned). */
function readbackRanges(c: Case, id: string, size: number): Array<[number, number]> {
  if (size <= WHOLE_READBACK_LIMIT) return [[0, size]];
  const spans: Array<[number, number]> = [];
  for (const t of c.program.threads)
    for (const op of t.ops)
      if ('target' in op && op.target === id && 'offset' in op && 'length' in op) {
        const s = Math.floor(op.offset / PAGE) * PAGE;
        spans.push([s, Math.min(size, Math.ceil((op.offset + op.length) / PAGE) * PAGE)]);
      }
  spans.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else if (s[1] > s[0]) merged.push([...s]);
  }
  return merged;
}

/** Writers' (op, delta) pairs a read may show: in place, moved by sector-ish amounts, or by the content moves the case does. */
export function decodeCandidates(c: Case): Array<{ op: number; delta: number }> {
  const writers: number[] = [];
  const moves = new Set<number>([0, 512, -512, 1024, -1024, 2048, -2048, 4096, -4096]);
  for (const t of c.program.threads)
    for (const op of t.ops) {
      if (op.kind === 'write' || op.kind === 'mmap-write') writers.push(op.id);
      if (op.kind === 'fallocate' && (op.mode === 'collapse-range' || op.mode === 'insert-range')) {
        moves.add(op.length);
        moves.add(-op.length);
      }
      if (op.kind === 'read' && op.buffer.placement === 'mmap') moves.add(op.offset - (op.buffer.offset + op.buffer.align));
      if (op.kind === 'write' && op.buffer.placement === 'mmap') moves.add(op.buffer.offset + op.buffer.align - op.offset);
    }
  const deltas = [...moves];
  return writers.flatMap((op) => deltas.map((delta) => ({ op, delta })));
}
