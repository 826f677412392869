/** A named rendezvous: every thread that names the barrier waits there until all have arrived. */
import { z } from 'zod';
import { OpId } from './common.ts';

export const BarrierOp = z.strictObject({
  kind: z.literal('barrier'),
  id: OpId,
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/),
});
export type BarrierOp = z.infer<typeof BarrierOp>;

/** Sleep a while (to move past dm-flakey intervals, or to widen a race window). */
export const SleepOp = z.strictObject({ kind: z.literal('sleep'), id: OpId, ms: z.number().int().min(0).max(10_000) });
export type SleepOp = z.infer<typeof SleepOp>;

import { type OpSemantics, expectOk } from '../semantics/op-semantics.ts';

export const barrierSemantics: OpSemantics<BarrierOp> = { objects: () => [], expect: () => expectOk(), apply: () => {} };
export const sleepSemantics: OpSemantics<SleepOp> = { objects: () => [], expect: () => expectOk(), apply: () => {} };
