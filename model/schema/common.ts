/**
 * Building blocks shared by every part of the case schema.
 *
 * Units: every size and offset in a case is in bytes (integers). Sector-based
 * kernel interfaces (dm tables, md chunks) are converted at set-up time, so a
 * case never mixes units.
 */
import { z } from 'zod';

export const MAX_BYTES = 2 ** 50; // 1 PiB: far beyond any stack we build, well inside 2^53.

/** A layer id: short, lower-case, safe as a file name and a dm/md device suffix. */
export const LayerId = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'a layer id is 1-32 chars of a-z, 0-9, _ or -, starting with a letter');
export type LayerId = z.infer<typeof LayerId>;

export const Bytes = z.number().int().nonnegative().max(MAX_BYTES);
export const PositiveBytes = z.number().int().positive().max(MAX_BYTES);

/** Logical/physical block sizes the block layer accepts for our devices. */
export const BlockSize = z.union([z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096)]);
export type BlockSize = z.infer<typeof BlockSize>;

/** Op ids are stable across minimization: dropping op 7 never renumbers op 8. */
/** Ids above 2^30 are reserved for the plan-only ops a target adds (worker/plan/compile.ts). */
export const OpId = z.number().int().positive().max(2 ** 30 - 1);
export type OpId = z.infer<typeof OpId>;

export const Seed = z.number().int().nonnegative().max(2 ** 32 - 1);

export const SECTOR = 512;
export const PAGE = 4096;

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
