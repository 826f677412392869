/**
 * What a target reports after running a case: per-op results, the final
 * content of every object the model tracks, and the geometry the kernel
 * chose. Data never travels as bytes: a target decodes what it read into runs
 * attributed to a writer (see pattern.ts), which is all the oracle needs.
 */
import { z } from 'zod';
import { LayerId, OpId } from './schema/common.ts';

/** 'error' only in final content: a block that could not be read back. */
export const ObservedSource = z.union([
  z.literal('zero'),
  z.literal('unknown'),
  z.literal('error'),
  z.strictObject({ op: OpId, delta: z.number().int() }),
]);

export const ObservedExtent = z.strictObject({
  /** Relative to the op's offset for reads; absolute for final content. */
  offset: z.number().int().nonnegative(),
  length: z.number().int().positive(),
  src: ObservedSource,
  /** A few raw bytes (hex) of an 'unknown' run, for reports. */
  sample: z.string().max(64).optional(),
});
export type ObservedExtent = z.infer<typeof ObservedExtent>;

/** Error names as in errno(3): 'EINVAL', 'EIO', ... */
export const Errno = z.string().regex(/^E[A-Z0-9]+$/);

export const OpResult = z.strictObject({
  op: OpId,
  /** Bytes transferred for data ops, 0 for others; -1 with errno on failure. */
  ret: z.number().int().min(-1),
  errno: Errno.optional(),
  /** The op died by a signal (SIGBUS on a mapping past EOF). */
  signal: z.enum(['SIGBUS', 'SIGSEGV']).optional(),
  /** Reads: what the returned bytes decode to. */
  data: z.array(ObservedExtent).optional(),
  durationUs: z.number().nonnegative().optional(),
});
export type OpResult = z.infer<typeof OpResult>;

export const ObservedGeometry = z.strictObject({
  size: z.number().int().nonnegative(),
  logicalBlockSize: z.number().int().positive(),
  physicalBlockSize: z.number().int().positive(),
  /** Loop devices: whether direct IO really is on. */
  directIo: z.boolean().optional(),
  /** Files: statx's DIO alignment, 0 when the file cannot do direct IO. */
  dioOffsetAlign: z.number().int().nonnegative().optional(),
});
export type ObservedGeometry = z.infer<typeof ObservedGeometry>;

export const FinalContent = z.strictObject({
  size: z.number().int().nonnegative(),
  /** Runs covering `ranges` (absolute offsets). */
  extents: z.array(ObservedExtent),
  /** The ranges that were read back; the whole object when left out. */
  ranges: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])).optional(),
});
export type FinalContent = z.infer<typeof FinalContent>;

export const Observation = z.strictObject({
  target: z.string(),
  geometry: z.record(LayerId, ObservedGeometry).default({}),
  results: z.array(OpResult),
  final: z.record(LayerId, FinalContent).default({}),
});
export type Observation = z.infer<typeof Observation>;
