/**
 * The case: a block stack, an IO program and a seed. This is the one schema
 * every part of blockfarm reads and writes (generator, queues, targets,
 * corpus, reports); `case.schema.json` beside it is generated from it.
 */
import { z } from 'zod';
import { Layer } from '../layers/index.ts';
import { Op } from '../ops/index.ts';
import { Seed } from './common.ts';

export const CASE_FORMAT = 'blockfarm-case/1';

export const Thread = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).optional(),
  ops: z.array(Op).max(100_000),
});
export type Thread = z.infer<typeof Thread>;

export const Program = z.strictObject({
  /** Threads start together; barriers order them. One thread is a sequential program. */
  threads: z.array(Thread).min(1).max(8),
});
export type Program = z.infer<typeof Program>;

export const Stack = z.strictObject({
  /** Layers in any order; each names the layers it sits on. */
  layers: z.array(Layer).min(1).max(64),
});
export type Stack = z.infer<typeof Stack>;

export const CaseMeta = z.strictObject({
  /** Where the case came from. */
  origin: z.enum(['seed', 'generated', 'mutated', 'minimized', 'manual']).default('manual'),
  /** Content hash of the case this one was derived from (mutation, minimization). */
  parent: z.string().max(128).optional(),
  /** Free text for people; never read by the farm's logic. */
  notes: z.string().max(4000).optional(),
});

export const Case = z.strictObject({
  format: z.literal(CASE_FORMAT),
  name: z.string().min(1).max(128),
  description: z.string().max(4000).optional(),
  /** Seeds the data pattern of every write: byte = pattern(seed, op id, offset). */
  seed: Seed,
  stack: Stack,
  program: Program,
  meta: CaseMeta.default({ origin: 'manual' }),
});
export type Case = z.infer<typeof Case>;
/** A case as written by people: defaults may be left out. */
export type CaseInput = z.input<typeof Case>;
