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
