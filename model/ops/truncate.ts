/** ftruncate(2) of a file layer. */
import { z } from 'zod';
import { Bytes, LayerId, OpId } from './common.ts';

export const TruncateOp = z.strictObject({ kind: z.literal('truncate'), id: OpId, target: LayerId, size: Bytes });
export type TruncateOp = z.infer<typeof TruncateOp>;

import { type OpSemantics, allowErrnos, expectOk } from '../semantics/op-semantics.ts';
import { FS_DAMAGE_ERRNOS, isLenient } from '../semantics/rules.ts';

export const truncateSemantics: OpSemantics<TruncateOp> = {
  objects: (op) => [op.target],
  // Truncate holds the inode lock, as writes do: racing them, it runs before or after each
  // (per byte joining would accept the larger size with the smaller size's zeroes).
  shifts: (op) => op.target,
  expect: (op, ctx) => (isLenient(ctx, op.target) ? allowErrnos(expectOk(), FS_DAMAGE_ERRNOS, 'the device under this filesystem injects faults or was damaged') : expectOk()),
  apply(op, result, ctx) {
    if (result.ret < 0) return;
    // Shrinking drops the bytes past the new EOF; growing exposes zeroes.
    ctx.dropTail(op.target);
    ctx.clearFrom(op.target, op.size);
    ctx.resize(op.target, { kind: 'set', v: op.size });
  },
};
