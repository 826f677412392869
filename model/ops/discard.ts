/** BLKDISCARD / BLKZEROOUT / BLKSECDISCARD on a block device. */
import { z } from 'zod';
import { rangeFields } from './common.ts';

export const DiscardOp = z.strictObject({
  kind: z.literal('discard'),
  ...rangeFields,
  mode: z.enum(['discard', 'zeroout', 'secure']).default('discard'),
});
export type DiscardOp = z.infer<typeof DiscardOp>;

import { type OpSemantics, allowErrnos, expectError, expectOk } from '../semantics/op-semantics.ts';
import { IO_ERRNOS, clearBadBlocks, snapshotsCowMayFail } from '../semantics/rules.ts';

export const discardSemantics: OpSemantics<DiscardOp> = {
  objects: (op) => [op.target],
  expect(op, ctx) {
    const end = op.offset + op.length;
    const sizes = ctx.view.sizes(op.target);
    const lbs = ctx.view.lbs(op.target);
    // The ioctls take 512-byte units and stay inside the device. BLKDISCARD and BLKSECDISCARD
    // check that the device supports the operation before they look at the range (block/ioctl.c),
    // so a device without it answers EOPNOTSUPP to every range.
    const discards = op.mode !== 'zeroout';
    const unsupported = discards ? ['EOPNOTSUPP'] : [];
    if (op.offset % 512 !== 0 || op.length % 512 !== 0) return expectError(['EINVAL', ...unsupported], `${op.mode} ranges are in 512-byte units`);
    if (sizes.every((s) => end > s)) return expectError(['EINVAL', ...unsupported], `${op.mode} past the end of the device is EINVAL`);
    const misaligned = lbs.map((l) => op.offset % l !== 0 || op.length % l !== 0);
    if (misaligned.every(Boolean)) return expectError(['EINVAL', ...unsupported], `${op.mode} must be aligned to the logical block size`);
    let e = expectOk();
    if (misaligned.some(Boolean) || sizes.some((s) => end > s)) e = allowErrnos(e, ['EINVAL'], 'alignment or size depends on a race');
    // Discard is advisory and optional; zeroout falls back to writing zeroes, so it must work.
    if (discards) e = allowErrnos(e, ['EOPNOTSUPP'], `the device may not support ${op.mode}`);
    if (ctx.model.faultsOf(op.target).writeErrors) e = allowErrnos(e, IO_ERRNOS, 'a dm-flakey layer below fails writes');
    if (snapshotsCowMayFail(ctx, op.target, op.offset, end).length) e = allowErrnos(e, IO_ERRNOS, 'dm-snapshot must copy a chunk the op touches, and its old content may not read');
    return e;
  },
  apply(op, result, ctx) {
    if (result.ret < 0) return;
    const end = op.offset + op.length;
    if (op.mode === 'zeroout') {
      // Written zeroes (or write-zeroes) go through dm-dust like writes and clear its bad blocks.
      ctx.write(op.target, op.offset, end, ctx.table.zero);
      clearBadBlocks(ctx, op.target, op.offset, end, false);
      return;
    }
    // After a discard a device may return the old data, zeroes or anything else. It may also
    // still fail where it failed before: dm-dust passes a discard down whole and clears only the
    // bad block its first sector is in (dust_map_write).
    ctx.writeMaybe(op.target, op.offset, end, ctx.table.any);
  },
};
