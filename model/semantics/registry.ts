/** Op kind -> semantics. Adding an op means adding its schema and semantics in its file and one line here. */
import type { Op, OpKind, OpOf } from '../ops/index.ts';
import { writeSemantics } from '../ops/write.ts';
import { readSemantics } from '../ops/read.ts';
import { mmapReadSemantics, mmapWriteSemantics, msyncSemantics } from '../ops/mmap.ts';
import { fallocateSemantics } from '../ops/fallocate.ts';
import { truncateSemantics } from '../ops/truncate.ts';
import { dropCachesSemantics, flushSemantics, fsyncSemantics, syncFileRangeSemantics } from '../ops/sync.ts';
import { discardSemantics } from '../ops/discard.ts';
import { remountSemantics } from '../ops/remount.ts';
import { barrierSemantics, sleepSemantics } from '../ops/barrier.ts';
import {
  corruptSemantics, dmReloadSemantics, dmResumeSemantics, dmSuspendSemantics, loopSetBlockSizeSemantics,
  loopSetDirectIoSemantics, mdFailSemantics, snapshotCreateSemantics, snapshotMergeSemantics, snapshotRemoveSemantics,
} from '../ops/control.ts';
import type { OpSemantics } from './op-semantics.ts';

const SEMANTICS: { [K in OpKind]: OpSemantics<OpOf<K>> } = {
  write: writeSemantics,
  read: readSemantics,
  'mmap-write': mmapWriteSemantics,
  'mmap-read': mmapReadSemantics,
  msync: msyncSemantics,
  fallocate: fallocateSemantics,
  truncate: truncateSemantics,
  fsync: fsyncSemantics,
  'sync-file-range': syncFileRangeSemantics,
  flush: flushSemantics,
  'drop-caches': dropCachesSemantics,
  discard: discardSemantics,
  remount: remountSemantics,
  barrier: barrierSemantics,
  sleep: sleepSemantics,
  'loop-set-direct-io': loopSetDirectIoSemantics,
  'loop-set-block-size': loopSetBlockSizeSemantics,
  'dm-suspend': dmSuspendSemantics,
  'dm-resume': dmResumeSemantics,
  'dm-reload': dmReloadSemantics,
  'snapshot-create': snapshotCreateSemantics,
  'snapshot-remove': snapshotRemoveSemantics,
  'snapshot-merge': snapshotMergeSemantics,
  'md-fail': mdFailSemantics,
  corrupt: corruptSemantics,
};

export function semanticsOf<O extends Op>(op: O): OpSemantics<O> {
  return SEMANTICS[op.kind] as unknown as OpSemantics<O>;
}
