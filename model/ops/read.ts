/** read: from a block device or file into the op's buffer. */
import { z } from 'zod';
import { dataIoFields } from './common.ts';

export const ReadOp = z.strictObject({ kind: z.literal('read'), ...dataIoFields });
export type ReadOp = z.infer<typeof ReadOp>;

import { landInBuffer, pinObserved, readExpectation } from '../semantics/data-io.ts';
import type { OpSemantics } from '../semantics/op-semantics.ts';

export const readSemantics: OpSemantics<ReadOp> = {
  objects: (op) => (op.buffer.placement === 'mmap' ? [op.target, op.buffer.file] : [op.target]),
  expect: (op, ctx) => readExpectation(op, ctx),
  apply(op, result, ctx) {
    landInBuffer(op, result, ctx);
    pinObserved(op.target, op.offset, result, ctx);
  },
};
