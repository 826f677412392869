/**
 * The op generators, one file per model/ops file, and the generic choice of
 * an op for a target: which kinds apply to files and to block devices, and
 * how often. Control-plane ops need the whole program's layout (which thread
 * suspends what, when a snapshot exists) and are placed by the program
 * builder, not drawn here.
 */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import type { OpDraft, OpEnv } from './common.ts';
import { genFallocate } from './fallocate.ts';
import { genMmapRead, genMmapWrite, genMsync } from './mmap.ts';
import { genRead } from './read.ts';
import { genDropCaches, genFlush, genFsync, genSyncFileRange } from './sync.ts';
import { genTruncate } from './truncate.ts';
import { genWrite } from './write.ts';
import { genDiscard } from './discard.ts';
import { genSleep } from './barrier.ts';

export type { OpDraft, OpEnv, OpInput, DraftOf, DataShapeHints } from './common.ts';
export * from './write.ts';
export * from './read.ts';
export * from './mmap.ts';
export * from './fallocate.ts';
export * from './truncate.ts';
export * from './sync.ts';
export * from './discard.ts';
export * from './remount.ts';
export * from './barrier.ts';
export * from './control.ts';

type Maker = (d: Draw, t: IoTarget, env: OpEnv) => OpDraft;

const FILE_OPS: ReadonlyArray<readonly [number, Maker]> = [
  [5, (d, t, env) => genWrite(d, t, env)],
  [4, (d, t, env) => genRead(d, t, env)],
  [2, (d, t) => genMmapWrite(d, t)],
  [1, (d, t) => genMmapRead(d, t)],
  [0.7, (d, t) => genMsync(d, t)],
  [2, (d, t) => genFallocate(d, t)],
  [0.8, (d, t) => genTruncate(d, t)],
  [1.5, (d, t) => genFsync(d, t)],
  [0.8, (d, t) => genSyncFileRange(d, t)],
  [0.4, () => genDropCaches()],
  [0.2, (d) => genSleep(d)],
];

const BLOCK_OPS: ReadonlyArray<readonly [number, Maker]> = [
  [5, (d, t, env) => genWrite(d, t, env)],
  [4, (d, t, env) => genRead(d, t, env)],
  [0.8, (d, t) => genFsync(d, t)],
  [0.8, (_d, t) => genFlush(t)],
  [0.8, (d, t) => genDiscard(d, t)],
  [0.8, (d, t) => genFallocate(d, t)],
  [0.3, () => genDropCaches()],
  [0.2, (d) => genSleep(d)],
];

/** Any data-plane op that applies to the target. */
export function genOpFor(d: Draw, t: IoTarget, env: OpEnv): OpDraft {
  return d.weighted(t.kind === 'file' ? FILE_OPS : BLOCK_OPS)(d, t, env);
}
