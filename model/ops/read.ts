/** read: from a block device or file into the op's buffer. */
import { z } from 'zod';
import { dataIoFields } from './common.ts';

export const ReadOp = z.strictObject({ kind: z.literal('read'), ...dataIoFields });
export type ReadOp = z.infer<typeof ReadOp>;
