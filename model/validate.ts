/**
 * Validation of a case: its shape (the zod schema), its stack (analyzeStack)
 * and its program. Every problem comes back as a path into the case and one
 * sentence; validation never throws.
 */
import type { z } from 'zod';
import { DM_KINDS, LAYER_KINDS, type Layer, type SemanticIssue } from './layers/index.ts';
import { OP_KINDS, type Op } from './ops/index.ts';
import { Case } from './schema/case.ts';
import { type StackInfo, analyzeStack } from './stack.ts';
import { iovecLengths } from './semantics/rules.ts';

export interface CaseIssue {
  path: string;
  message: string;
}

export type ValidationResult = { ok: true; value: Case; info: StackInfo } | { ok: false; issues: CaseIssue[] };

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(case)';
}

export function validateCase(input: unknown): ValidationResult {
  try {
    const parsed = Case.safeParse(input);
    if (!parsed.success) return { ok: false, issues: shapeIssues(parsed.error, input) };
    const c = parsed.data;
    const { info, issues } = analyzeStack(c.stack);
    issues.push(...programIssues(c, info));
    if (issues.length) return { ok: false, issues: issues.map((i) => ({ path: formatPath(i.path), message: i.message })) };
    return { ok: true, value: c, info };
  } catch (err) {
    return { ok: false, issues: [{ path: '(case)', message: `internal validation error: ${(err as Error).message}` }] };
  }
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/**
 * A value from the input, quoted for a one-line message: JSON escapes newlines,
 * long strings are cut, and objects and arrays are named, not serialised
 * (input nested deep enough would overflow JSON.stringify's stack).
 */
function quote(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v !== null && typeof v === 'object') return 'an object';
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The discriminator value a union issue is about. zod 4 reports the issue at the discriminator itself. */
function discriminatorValue(input: unknown, path: ReadonlyArray<PropertyKey>, key: string): unknown {
  return path[path.length - 1] === key ? valueAt(input, path) : valueAt(input, [...path, key]);
}

function shapeIssues(error: z.ZodError, input: unknown): CaseIssue[] {
  const out: CaseIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path;
    let message = issue.message;
    if (issue.code === 'invalid_union' && (issue as { discriminator?: string }).discriminator === 'kind') {
      const v = discriminatorValue(input, path, 'kind');
      const isLayer = path.includes('layers');
      const known = isLayer ? Object.keys(LAYER_KINDS) : OP_KINDS;
      const what = isLayer ? 'layer' : 'op';
      message = `${v === undefined ? `missing ${what} kind` : `unknown ${what} kind ${quote(v)}`}; known kinds: ${known.join(', ')}`;
    } else if (issue.code === 'invalid_union' && (issue as { discriminator?: string }).discriminator === 'placement') {
      message = `unknown buffer placement ${quote(discriminatorValue(input, path, 'placement'))}; known: heap, anon, mmap`;
    } else if (issue.code === 'unrecognized_keys') {
      // Keys come from the input: escape them so that the message stays on one line.
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${quote(k).slice(1, -1)}'`).join(', ')}`;
    } else if (issue.code === 'invalid_type' && valueAt(input, path) === undefined) {
      message = `missing (expected ${issue.expected})`;
    }
    out.push({ path: formatPath(path), message });
  }
  return out;
}

interface Located {
  op: Op;
  thread: number;
  index: number;
  phase: number;
  path: (string | number)[];
}

/** Block layers that program IO may use: nothing sits on them (snapshots of an origin do not count). */
function isFree(info: StackInfo, id: string): boolean {
  return info.usersOf(id).every((u) => u.kind === 'dm-snapshot' && u.origin === id);
}

function programIssues(c: Case, info: StackInfo): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const located: Located[] = [];
  const seenIds = new Map<number, string>();
  const barrierSeqs: string[][] = [];
  c.program.threads.forEach((t, ti) => {
    let phase = 0;
    const seq: string[] = [];
    t.ops.forEach((op, index) => {
      const path = ['program', 'threads', ti, 'ops', index];
      const prev = seenIds.get(op.id);
      if (prev) issues.push({ path: [...path, 'id'], message: `op id ${op.id} is also used at ${prev}` });
      else seenIds.set(op.id, formatPath(path));
      located.push({ op, thread: ti, index, phase, path });
      if (op.kind === 'barrier') {
        seq.push(op.name);
        phase++;
      }
    });
    barrierSeqs.push(seq);
  });
  const first = barrierSeqs[0] ?? [];
  barrierSeqs.forEach((seq, ti) => {
    if (seq.join('\u0000') !== first.join('\u0000'))
      issues.push({
        path: ['program', 'threads', ti],
        message: `barriers are global: every thread must pass the same barriers in the same order (thread 0: [${first.join(', ')}], thread ${ti}: [${seq.join(', ')}])`,
      });
  });

  for (const x of located) issues.push(...opIssues(x, info, c));
  issues.push(...suspendIssues(located, info));
  issues.push(...snapshotIssues(located, info));
  issues.push(...remountIssues(located, info));
  return issues;
}

function need(x: Located, info: StackInfo, id: string, what: string, ok: (l: Layer) => boolean): SemanticIssue[] {
  const l = info.layer(id);
  if (!l) return [{ path: [...x.path, 'target'], message: `op ${x.op.id} (${x.op.kind}) targets '${id}', which is not in the stack` }];
  if (!ok(l)) return [{ path: [...x.path, 'target'], message: `op ${x.op.id} (${x.op.kind}) needs ${what}; '${id}' is a ${l.kind}` }];
  return [];
}

function opIssues(x: Located, info: StackInfo, c: Case): SemanticIssue[] {
  const op = x.op;
  const isFileL = (l: Layer) => l.kind === 'file' && info.usersOf(l.id).length === 0;
  const isFreeBlock = (l: Layer) => LAYER_KINDS[l.kind].role === 'block' && isFree(info, l.id);
  const inUse = (id: string) => {
    const l = info.layer(id);
    if (!l) return [];
    const users = info.usersOf(id).filter((u) => !(u.kind === 'dm-snapshot' && u.origin === id));
    return users.length && LAYER_KINDS[l.kind].role !== 'fs'
      ? [{ path: [...x.path, 'target'], message: `op ${op.id} (${op.kind}) uses '${id}' directly, but '${users[0]!.id}' (${users[0]!.kind}) sits on it; only 'corrupt' may reach under another layer` }]
      : [];
  };
  switch (op.kind) {
    case 'write':
    case 'read': {
      const out = [...need(x, info, op.target, 'a file or a block device', (l) => l.kind === 'file' || LAYER_KINDS[l.kind].role === 'block'), ...inUse(op.target)];
      if (op.via === 'psync' && (op.nowait || op.vectors > 1))
        out.push({ path: x.path, message: `op ${op.id}: psync has no flags and one buffer; use via 'pvec' or 'io_uring' for nowait or vectors` });
      if (op.vectors > op.length) out.push({ path: [...x.path, 'vectors'], message: `op ${op.id}: ${op.vectors} vectors for ${op.length} bytes` });
      const b = op.buffer;
      if (b.placement === 'anon' && b.touchedPages * 4096 > b.align + op.length + 4095)
        out.push({ path: [...x.path, 'buffer', 'touchedPages'], message: `op ${op.id}: the buffer has ${Math.ceil((b.align + op.length) / 4096)} pages, fewer than ${b.touchedPages} touched` });
      if (b.placement === 'mmap') {
        out.push(...need({ ...x, path: [...x.path, 'buffer'] }, info, b.file, 'a file for its buffer mapping', (l) => l.kind === 'file').map((i) => ({ ...i, path: [...x.path, 'buffer', 'file'] })));
        if (b.file === op.target) {
          const bs = b.offset + b.align;
          if (bs < op.offset + op.length && op.offset < bs + op.length)
            out.push({ path: [...x.path, 'buffer'], message: `op ${op.id}: the buffer maps the same bytes of '${op.target}' that the op ${op.kind === 'read' ? 'reads' : 'writes'}` });
        }
      }
      if (op.mustSucceed) out.push(...mustSucceedIssues(x, op, info, c));
      return out;
    }
    case 'mmap-write':
    case 'mmap-read':
    case 'msync':
    case 'truncate':
    case 'sync-file-range':
      return need(x, info, op.target, 'a file no other layer uses', isFileL);
    case 'fallocate':
    case 'fsync':
      return [...need(x, info, op.target, 'a file or a block device', (l) => l.kind === 'file' || LAYER_KINDS[l.kind].role === 'block'), ...inUse(op.target)];
    case 'flush':
    case 'discard':
      return [...need(x, info, op.target, 'a block device', (l) => LAYER_KINDS[l.kind].role === 'block'), ...inUse(op.target)];
    case 'remount': {
      const out = need(x, info, op.target, 'a filesystem', (l) => l.kind === 'fs');
      // An attached loop device keeps its backing file open: unmounting would fail with EBUSY.
      const pinned = info.usersOf(op.target).find((f) => f.kind === 'file' && info.usersOf(f.id).length > 0);
      if (pinned) out.push({ path: [...x.path, 'target'], message: `op ${op.id}: '${op.target}' holds '${pinned.id}', the backing file of '${info.usersOf(pinned.id)[0]!.id}'; it cannot be unmounted while that is attached` });
      return out;
    }
    case 'loop-set-direct-io':
      return need(x, info, op.target, 'a loop device', (l) => l.kind === 'loop');
    case 'loop-set-block-size': {
      const out = need(x, info, op.target, 'a loop device', (l) => l.kind === 'loop');
      for (const u of info.usersOf(op.target))
        if (u.kind === 'fs' && u.blockSize < op.size)
          out.push({ path: [...x.path, 'size'], message: `op ${op.id}: block size ${op.size} is larger than the ${u.blockSize}-byte blocks of filesystem '${u.id}' on it` });
      return out;
    }
    case 'dm-suspend':
    case 'dm-resume':
      return need(x, info, op.target, 'a device-mapper layer', (l) => DM_KINDS.has(l.kind));
    case 'dm-reload': {
      const out = need(x, info, op.target, 'a device-mapper layer', (l) => DM_KINDS.has(l.kind));
      const l = info.layer(op.target);
      if (l && op.as !== 'same') {
        const whole = (l.kind === 'dm-linear' && l.offset === 0 && l.length === undefined) || l.kind === 'dm-snapshot-origin';
        if (!whole) out.push({ path: [...x.path, 'as'], message: `op ${op.id}: only a whole-device dm-linear or a snapshot origin can be reloaded as ${op.as}` });
        if (op.as === 'linear' && info.usersOf(op.target).some((u) => u.kind === 'dm-snapshot'))
          out.push({ path: [...x.path, 'as'], message: `op ${op.id}: '${op.target}' is a snapshot's origin; as plain linear its writes would bypass the snapshot` });
      }
      return out;
    }
    case 'snapshot-create':
    case 'snapshot-remove':
    case 'snapshot-merge':
      return need(x, info, op.target, 'a dm-snapshot layer', (l) => l.kind === 'dm-snapshot');
    case 'md-fail': {
      const out = need(x, info, op.target, 'an md raid1 layer', (l) => l.kind === 'md' && l.level === 1);
      const l = info.layer(op.target);
      if (l?.kind === 'md' && op.member >= l.members.length) out.push({ path: [...x.path, 'member'], message: `op ${op.id}: md '${l.id}' has ${l.members.length} members` });
      return out;
    }
    case 'corrupt':
      return need(x, info, op.target, 'a block device under another layer', (l) => LAYER_KINDS[l.kind].role === 'block' && !isFreeBlock(l));
    case 'barrier':
    case 'sleep':
    case 'drop-caches':
      return [];
  }
}

/** A case may claim an op must succeed only where every kernel must make it succeed. */
function mustSucceedIssues(x: Located, op: Extract<Op, { kind: 'read' | 'write' }>, info: StackInfo, c: Case): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  if (op.nowait) out.push({ path: [...x.path, 'mustSucceed'], message: `op ${op.id} is RWF_NOWAIT, which may always answer EAGAIN, so it cannot be claimed to succeed` });
  if (!op.direct) return out;
  const l = info.layer(op.target);
  let unit = 4096;
  if (l?.kind === 'file') {
    const fsl = info.layer(l.on);
    const dev = fsl?.kind === 'fs' ? info.geometry(fsl.on) : undefined;
    unit = Math.max(fsl?.kind === 'fs' ? fsl.blockSize : 4096, ...(dev?.logicalBlockSizes ?? [512]));
  } else if (l) {
    const sizes = [...(info.geometry(l.id)?.logicalBlockSizes ?? [512])];
    for (const t of c.program.threads) for (const o of t.ops) if (o.kind === 'loop-set-block-size' && o.target === l.id) sizes.push(o.size);
    unit = Math.max(...sizes);
  }
  const lens = iovecLengths(op.length, op.vectors);
  let at = op.buffer.align;
  const bases = lens.map((n) => {
    const b = at;
    at += n;
    return b;
  });
  if (op.offset % unit || lens.some((n) => n % unit) || bases.some((b) => b % unit))
    out.push({
      path: [...x.path, 'mustSucceed'],
      message: `op ${op.id} claims it must succeed, but its O_DIRECT offset ${op.offset}, length ${op.length} or buffer alignment ${op.buffer.align} is not a multiple of ${unit}, so EINVAL is allowed`,
    });
  return out;
}

/** A suspended device blocks IO until resumed: the suspending thread must resume it before any barrier and before its own IO. */
function suspendIssues(located: Located[], info: StackInfo): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const byThread = new Map<number, Located[]>();
  for (const x of located) byThread.set(x.thread, [...(byThread.get(x.thread) ?? []), x]);
  for (const ops of byThread.values()) {
    const suspended = new Map<string, Located>();
    for (const x of ops) {
      const op = x.op;
      if (op.kind === 'dm-suspend') {
        if (suspended.has(op.target)) issues.push({ path: x.path, message: `op ${op.id}: '${op.target}' is already suspended` });
        suspended.set(op.target, x);
      } else if (op.kind === 'dm-resume') suspended.delete(op.target);
      else if (suspended.size && (op.kind === 'barrier' || ('target' in op && op.kind !== 'dm-reload' && [...suspended.keys()].some((s) => dependsOn(info, op.target, s))))) {
        const [s, at] = [...suspended.entries()][0]!;
        issues.push({ path: x.path, message: `op ${op.id} (${op.kind}) would wait forever: its thread suspended '${s}' at op ${at.op.id} and has not resumed it` });
      }
    }
    for (const [s, at] of suspended) issues.push({ path: at.path, message: `op ${at.op.id} suspends '${s}' and its thread never resumes it` });
  }
  return issues;
}

function dependsOn(info: StackInfo, id: string, lower: string): boolean {
  return id === lower || info.below(id).some((l) => l.id === lower) || info.usersOf(lower).some((u) => u.kind === 'fs' && (u.id === id || info.layer(id)?.kind === 'file' && (info.layer(id) as { on: string }).on === u.id));
}

/** Snapshots made by an op are used only after it, and not after they are removed or merged. */
function snapshotIssues(located: Located[], info: StackInfo): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  for (const l of info.layers) {
    if (l.kind !== 'dm-snapshot') continue;
    const mine = located.filter((x) => 'target' in x.op && x.op.target === l.id);
    const creates = mine.filter((x) => x.op.kind === 'snapshot-create');
    const ends = mine.filter((x) => x.op.kind === 'snapshot-remove' || x.op.kind === 'snapshot-merge');
    if (l.createdAt === 'op' && creates.length !== 1)
      issues.push({ path: ['stack', 'layers', info.layers.indexOf(l), 'createdAt'], message: `snapshot '${l.id}' is made by an op, so the program needs exactly one snapshot-create for it (it has ${creates.length})` });
    if (l.createdAt === 'setup' && creates.length)
      issues.push({ path: creates[0]!.path, message: `snapshot '${l.id}' already exists from set-up (createdAt 'setup')` });
    if (ends.length > 1) issues.push({ path: ends[1]!.path, message: `snapshot '${l.id}' is removed or merged twice` });
    const before = (a: Located, b: Located) => a.phase < b.phase || (a.thread === b.thread && a.index < b.index);
    for (const x of mine) {
      if (x.op.kind === 'snapshot-create') continue;
      const c = creates[0];
      if (c && !before(c, x)) issues.push({ path: x.path, message: `op ${x.op.id} uses snapshot '${l.id}' before snapshot-create op ${c.op.id} surely ran (same thread later, or a later phase)` });
      const e = ends[0];
      if (e && e !== x && !before(x, e)) issues.push({ path: x.path, message: `op ${x.op.id} uses snapshot '${l.id}' after it may have been removed by op ${e.op.id}` });
    }
  }
  return issues;
}

/** Unmounting needs the filesystem to itself: no other thread may use its files in the same phase. */
function remountIssues(located: Located[], info: StackInfo): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  for (const r of located) {
    if (r.op.kind !== 'remount') continue;
    const fsId = r.op.target;
    for (const x of located) {
      if (x.thread === r.thread || x.phase !== r.phase || !('target' in x.op)) continue;
      const t = info.layer(x.op.target);
      if (t?.kind === 'file' && t.on === fsId)
        issues.push({ path: x.path, message: `op ${x.op.id} uses '${t.id}' while op ${r.op.id} in another thread remounts '${fsId}' in the same phase; put a barrier between them` });
    }
  }
  return issues;
}
