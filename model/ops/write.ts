/** write: the op's pattern bytes to a block device or file. */
import { z } from 'zod';
import { dataIoFields } from './common.ts';

export const WriteOp = z.strictObject({
  kind: z.literal('write'),
  ...dataIoFields,
  /** RWF_DSYNC (pvec, io_uring) or O_DSYNC (psync). */
  dsync: z.boolean().default(false),
});
export type WriteOp = z.infer<typeof WriteOp>;
