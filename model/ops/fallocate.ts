/** fallocate(2) in every mode, on files and (zero/punch) on block devices. */
import { z } from 'zod';
import { rangeFields } from './common.ts';

export const FallocateMode = z.enum([
  'allocate', // 0
  'keep-size', // FALLOC_FL_KEEP_SIZE
  'punch-hole', // PUNCH_HOLE | KEEP_SIZE
  'zero-range', // ZERO_RANGE
  'zero-range-keep-size', // ZERO_RANGE | KEEP_SIZE
  'collapse-range', // COLLAPSE_RANGE
  'insert-range', // INSERT_RANGE
  'unshare-range', // UNSHARE_RANGE
]);

export const FallocateOp = z.strictObject({ kind: z.literal('fallocate'), ...rangeFields, mode: FallocateMode });
export type FallocateOp = z.infer<typeof FallocateOp>;
