/** Generator for `write` (model/ops/write.ts): any shape dataShape draws, RWF_DSYNC now and then. */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import { type DataShapeHints, type DraftOf, type OpEnv, dataShape } from './common.ts';

export function genWrite(d: Draw, t: IoTarget, env: OpEnv, hints: DataShapeHints & { dsync?: boolean } = {}): DraftOf<'write'> {
  const { dsync, ...rest } = hints;
  return { kind: 'write', target: t.id, ...dataShape(d, t, env, true, rest), dsync: dsync ?? d.chance(0.1) };
}
