/** Unmount and mount a filesystem layer again ('cycle'), or remount it read-only and back. */
import { z } from 'zod';
import { LayerId, OpId } from './common.ts';

export const RemountOp = z.strictObject({
  kind: z.literal('remount'),
  id: OpId,
  target: LayerId,
  mode: z.enum(['cycle', 'ro-rw']).default('cycle'),
});
export type RemountOp = z.infer<typeof RemountOp>;

import { type OpSemantics, allowErrnos, expectOk } from '../semantics/op-semantics.ts';
import { FS_DAMAGE_ERRNOS } from '../semantics/rules.ts';

export const remountSemantics: OpSemantics<RemountOp> = {
  // A remount touches no file's bytes: what was written stays written (unmount syncs).
  objects: () => [],
  expect(op, ctx) {
    const files = ctx.model.info.usersOf(op.target).filter((l) => l.kind === 'file');
    const damaged = files.some((f) => ctx.model.faultsOf(f.id).lenient || ctx.obj(f.id).lenient);
    return damaged ? allowErrnos(expectOk(), FS_DAMAGE_ERRNOS, 'the device under this filesystem injects faults or was damaged') : expectOk();
  },
  apply: () => {},
};
