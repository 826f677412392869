/** Fields shared by several ops. */
import { z } from 'zod';
import { Bytes, LayerId, OpId, PositiveBytes } from '../schema/common.ts';

/** Largest single IO a case may issue: keeps buffers and observations bounded. */
export const MAX_IO = 64 * 1024 * 1024;

export const IoLength = PositiveBytes.max(MAX_IO);

/**
 * Where the user buffer of a read or write lives.
 * - heap: ordinary memory, all of it touched before the op.
 * - anon: a fresh anonymous mapping of which only the first `touchedPages`
 *   pages were faulted in (S2); a write sends zeros from the untouched pages.
 * - mmap: a shared mapping of a file layer at `offset` (page aligned); a read
 *   lands in that file, a write sends that file's bytes.
 * `align` places the buffer that many bytes past a page boundary.
 */
export const Buffer = z.discriminatedUnion('placement', [
  z.strictObject({ placement: z.literal('heap'), align: z.number().int().min(0).max(4095).default(0) }),
  z.strictObject({
    placement: z.literal('anon'),
    touchedPages: z.number().int().min(0).max(16384),
    align: z.number().int().min(0).max(4095).default(0),
  }),
  z.strictObject({
    placement: z.literal('mmap'),
    file: LayerId,
    offset: Bytes.refine((n) => n % 4096 === 0, 'a mapping offset must be page aligned'),
    align: z.number().int().min(0).max(4095).default(0),
  }),
]);
export type Buffer = z.infer<typeof Buffer>;

/** How a read or write reaches the kernel. */
export const SubmitVia = z.enum(['psync', 'pvec', 'io_uring']);
export type SubmitVia = z.infer<typeof SubmitVia>;

/** The fields of read and write. */
export const dataIoFields = {
  id: OpId,
  target: LayerId,
  offset: Bytes,
  length: IoLength,
  /** psync: pread/pwrite; pvec: preadv2/pwritev2; io_uring: IORING_OP_READV/WRITEV. */
  via: SubmitVia.default('psync'),
  /** RWF_NOWAIT (pvec, io_uring): the kernel may answer EAGAIN or a short count instead of blocking. */
  nowait: z.boolean().default(false),
  /** Open with O_DIRECT. */
  direct: z.boolean().default(false),
  /** Split the buffer into this many iovecs (pvec and io_uring). */
  vectors: z.number().int().min(1).max(64).default(1),
  buffer: Buffer.default({ placement: 'heap', align: 0 }),
  /** The case author's claim that this op must succeed; checked against the model when validating. */
  mustSucceed: z.boolean().optional(),
};

export const rangeFields = { id: OpId, target: LayerId, offset: Bytes, length: PositiveBytes };
export { OpId, LayerId, Bytes, PositiveBytes };
