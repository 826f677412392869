/**
 * Shared mappings of a file: stores through a mapping (faulting pages in,
 * page_mkwrite), loads through it, and msync. The executor keeps one shared
 * mapping per file and thread, so msync acts on what earlier mmap ops dirtied.
 */
import { z } from 'zod';
import { Bytes, IoLength, LayerId, OpId } from './common.ts';

export const MmapWriteOp = z.strictObject({ kind: z.literal('mmap-write'), id: OpId, target: LayerId, offset: Bytes, length: IoLength });
export type MmapWriteOp = z.infer<typeof MmapWriteOp>;

export const MmapReadOp = z.strictObject({ kind: z.literal('mmap-read'), id: OpId, target: LayerId, offset: Bytes, length: IoLength });
export type MmapReadOp = z.infer<typeof MmapReadOp>;

export const MsyncOp = z.strictObject({
  kind: z.literal('msync'),
  id: OpId,
  target: LayerId,
  mode: z.enum(['sync', 'async', 'invalidate']).default('sync'),
});
export type MsyncOp = z.infer<typeof MsyncOp>;
