/** BLKDISCARD / BLKZEROOUT / BLKSECDISCARD on a block device. */
import { z } from 'zod';
import { rangeFields } from './common.ts';

export const DiscardOp = z.strictObject({
  kind: z.literal('discard'),
  ...rangeFields,
  mode: z.enum(['discard', 'zeroout', 'secure']).default('discard'),
});
export type DiscardOp = z.infer<typeof DiscardOp>;
