/**
 * When a target may keep a case's block stack set up and run the next
 * case's program on it instead of building the stack again.
 *
 * Safe means the next program meets exactly what the model assumes for a
 * fresh stack. That holds when (1) every layer is one whose content and
 * state a reset restores: zeroing the disks under it with it still set up
 * (the layer modules' resetsWithDisks: disks, dm-linear, dm-stripe, plain
 * unwiped dm-crypt), and (2) the program only moves data: no op rebuilds,
 * suspends, resizes or reconfigures a layer, none touches files or
 * filesystems, so after it the stack is still the one its set-up built.
 * Whether two cases build the same stack is for the target to decide from
 * their compiled set-up steps (same commands, tables and keys).
 */
import type { Case } from './schema/case.ts';
import { layerModule } from './layers/index.ts';
import type { OpKind } from './ops/index.ts';
import type { StackInfo } from './stack.ts';

/** Ops that read, write, flush or discard data and change nothing about how the stack is built. */
const DATA_OPS: ReadonlySet<OpKind> = new Set<OpKind>([
  'write', 'read', 'mmap-write', 'mmap-read', 'msync', 'fsync', 'sync-file-range', 'flush', 'drop-caches', 'discard',
  'barrier', 'sleep', 'corrupt',
]);

/** Why this case's stack may not be kept for another program, or undefined when it may. */
export function stackReuseRefusal(c: Case, info: StackInfo): string | undefined {
  for (const l of info.layers) {
    const m = layerModule(l);
    if (!m.resetsWithDisks?.(l)) return `${l.kind} layer '${l.id}' keeps state that zeroing its disks does not reset`;
  }
  for (const t of c.program.threads)
    for (const op of t.ops) if (!DATA_OPS.has(op.kind)) return `op ${op.id} (${op.kind}) changes the stack`;
  return undefined;
}

export function stackReusable(c: Case, info: StackInfo): boolean {
  return stackReuseRefusal(c, info) === undefined;
}
