/** Generator for `read` (model/ops/read.ts): any shape dataShape draws. */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import { type DataShapeHints, type DraftOf, type OpEnv, dataShape } from './common.ts';

export function genRead(d: Draw, t: IoTarget, env: OpEnv, hints: DataShapeHints = {}): DraftOf<'read'> {
  return { kind: 'read', target: t.id, ...dataShape(d, t, env, false, hints) };
}
