/** ftruncate(2) of a file layer. */
import { z } from 'zod';
import { Bytes, LayerId, OpId } from './common.ts';

export const TruncateOp = z.strictObject({ kind: z.literal('truncate'), id: OpId, target: LayerId, size: Bytes });
export type TruncateOp = z.infer<typeof TruncateOp>;
