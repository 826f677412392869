/**
 * What the corpus keeps. A case earns its place by showing the farm
 * something it had not seen:
 * - a new signature: a finding (divergence, crash, hang) not seen before;
 * - a new outcome class: a target (kernel) answering one kind of op in a way
 *   it had not answered before in a run with this outcome ("read+dio:EINVAL
 *   in a pass on qemu:6.1.0-56-amd64"), a coarse stand-in for coverage that
 *   every target reports today;
 * - new coverage, once a kernel reports coverage features (kcov).
 * Unsupported and infrastructure-error runs never keep a case: they say
 * nothing about the kernel.
 *
 * Keys share one namespace (`sig:`, `class:`, `cov:`) so a caller can keep
 * them in one Redis set or one in-memory Set.
 */
import type { Case, Observation } from '../../model/index.ts';

export type OutcomeClass = 'pass' | 'divergence' | 'crash' | 'hang' | 'unsupported' | 'infra-error';

export interface KeepInput {
  /** Target name, e.g. 'model', 'host', 'qemu:6.1.0-56-amd64'. */
  target: string;
  outcome: OutcomeClass;
  /** The finding's dedup signature, for divergences, crashes and hangs. */
  signature?: string;
  /** How the target answered each kind of op (see behaviourFeatures). */
  features?: readonly string[];
  /** Coverage features (kcov PCs, edges), once kernels report them. */
  coverage?: readonly string[];
}

export type KeepReason = 'new-signature' | 'new-outcome-class' | 'new-coverage';

export type KeepDecision =
  | { keep: false }
  | {
      keep: true;
      reason: KeepReason;
      /** Every key this run saw for the first time: mark them seen once the case is stored. */
      newKeys: string[];
    };

/** The keys a run can be new in, most important first. */
export function keepKeys(run: KeepInput): Array<{ key: string; reason: KeepReason }> {
  if (run.outcome === 'unsupported' || run.outcome === 'infra-error') return [];
  const out: Array<{ key: string; reason: KeepReason }> = [];
  if (run.signature) out.push({ key: `sig:${run.signature}`, reason: 'new-signature' });
  out.push({ key: `class:${run.target}:${run.outcome}`, reason: 'new-outcome-class' });
  for (const f of new Set(run.features ?? [])) out.push({ key: `class:${run.target}:${run.outcome}:${f}`, reason: 'new-outcome-class' });
  for (const f of new Set(run.coverage ?? [])) out.push({ key: `cov:${f}`, reason: 'new-coverage' });
  return out;
}

function decide(keys: Array<{ key: string; reason: KeepReason }>, seen: readonly boolean[]): KeepDecision {
  const fresh = keys.filter((_, i) => !seen[i]);
  if (!fresh.length) return { keep: false };
  return { keep: true, reason: fresh[0]!.reason, newKeys: fresh.map((k) => k.key) };
}

/** Keep the case when the run shows anything not seen before (`seen` answers for one key). */
export function shouldKeep(run: KeepInput, seen: (key: string) => boolean): KeepDecision {
  const keys = keepKeys(run);
  return decide(keys, keys.map((k) => seen(k.key)));
}

/** The same against an asynchronous store (a Redis set: SMISMEMBER answers for all keys at once). */
export async function shouldKeepAsync(run: KeepInput, seen: (keys: string[]) => Promise<boolean[]>): Promise<KeepDecision> {
  const keys = keepKeys(run);
  if (!keys.length) return { keep: false };
  return decide(keys, await seen(keys.map((k) => k.key)));
}

/**
 * How a target answered each kind of op: "<kind>[+dio|+nowait|+uring|+vec]:<ok|short|ERRNO|SIGBUS>",
 * deduplicated. Short means fewer bytes than asked for a read or write.
 */
export function behaviourFeatures(c: Case, obs: Observation): string[] {
  const ops = new Map(c.program.threads.flatMap((t) => t.ops).map((op) => [op.id, op]));
  const out = new Set<string>();
  for (const r of obs.results) {
    const op = ops.get(r.op);
    if (!op || op.kind === 'barrier' || op.kind === 'sleep') continue;
    let kind: string = op.kind;
    if (op.kind === 'read' || op.kind === 'write') {
      if (op.direct) kind += '+dio';
      if (op.nowait) kind += '+nowait';
      if (op.via === 'io_uring') kind += '+uring';
      else if (op.via === 'pvec') kind += '+vec';
    }
    let how: string;
    if (r.signal) how = r.signal;
    else if (r.ret < 0) how = r.errno ?? 'error';
    else if ((op.kind === 'read' || op.kind === 'write') && r.ret < op.length) how = 'short';
    else how = 'ok';
    out.add(`${kind}:${how}`);
  }
  return [...out].sort();
}
