/**
 * What a generator is asked for: which layer kinds and filesystem types the
 * target can build, how big programs may get, and how often each recipe
 * (one per scenario of SCENARIOS.md, plus fully random cases) is used.
 * Options are validated once and frozen (normalizeOptions).
 */
import { FS_FACTS, LAYER_KINDS, type LayerKind } from '../../model/index.ts';
import type { FsType } from '../../model/layers/fs.ts';

export const RECIPES = ['S1', 'S2', 'S3', 'S4', 'S5', 'random'] as const;
export type Recipe = (typeof RECIPES)[number];

export interface Supports {
  layerKinds: readonly LayerKind[];
  /** @defaultValue ext4, xfs, btrfs */
  fsTypes?: readonly FsType[];
}

export interface GenerateOptions {
  /** What the target can build. @defaultValue SUPPORTS.all */
  supports?: Supports;
  /** Most ops in a case (barriers included). @defaultValue 60 */
  maxOps?: number;
  /** Most threads in a case. @defaultValue 4 */
  maxThreads?: number;
  /**
   * Relative weight of each recipe. A recipe the target cannot build (S3
   * without dm-integrity/scsi-debug, S4 without dm) is dropped and its weight
   * goes to the others. @defaultValue S1..S5: 1 each, random: 1.5
   */
  weights?: Partial<Record<Recipe, number>>;
  /** Share of data ops whose offset, length or buffer is deliberately misaligned. @defaultValue 0.15 */
  misaligned?: number;
  /** Bounds of a disk's size in bytes. @defaultValue 64 MiB to 512 MiB */
  diskSize?: { min: number; max: number };
}

const MiB = 1024 * 1024;
const ALL_KINDS = Object.keys(LAYER_KINDS) as LayerKind[];

/** What each kind of target can build. */
export const SUPPORTS = {
  /** The machine's own kernel: files, filesystems and loop devices (md and dm stay inside VMs). */
  host: { layerKinds: ['disk', 'fs', 'file', 'loop'], fsTypes: ['ext4', 'xfs', 'btrfs'] },
  /** QEMU guests: every layer kind. */
  qemu: { layerKinds: ALL_KINDS, fsTypes: ['ext4', 'xfs', 'btrfs'] },
  /** Everything the model knows (the model target). */
  all: { layerKinds: ALL_KINDS, fsTypes: Object.keys(FS_FACTS) as FsType[] },
} as const satisfies Record<string, Supports>;
export type TargetKinds = keyof typeof SUPPORTS;

export const DEFAULT_WEIGHTS: Readonly<Record<Recipe, number>> = { S1: 1, S2: 1, S3: 1, S4: 1, S5: 1, random: 1.5 };

export interface Normalized {
  kinds: ReadonlySet<LayerKind>;
  fsTypes: readonly FsType[];
  maxOps: number;
  maxThreads: number;
  weights: Readonly<Record<Recipe, number>>;
  misaligned: number;
  diskSize: { min: number; max: number };
}

export class GenerateOptionsError extends Error {
  constructor(message: string) {
    super(`generate options: ${message}`);
    this.name = 'GenerateOptionsError';
  }
}

/** Recipes a target with these kinds can build at all. */
export function recipeBuildable(r: Recipe, kinds: ReadonlySet<LayerKind>, fsTypes: readonly FsType[]): boolean {
  const has = (k: LayerKind) => kinds.has(k);
  switch (r) {
    case 'S1':
      return has('disk') && has('loop');
    case 'S2':
    case 'S5':
      return has('disk') && has('fs') && has('file') && fsTypes.length > 0;
    case 'S3':
      return (has('disk') && has('dm-integrity') && has('dm-crypt')) || (has('scsi-debug') && (has('dm-linear') || has('dm-crypt')));
    case 'S4':
      return has('disk') && (has('dm-linear') || (has('dm-snapshot-origin') && has('dm-snapshot')));
    case 'random':
      return has('disk');
  }
}

export function normalizeOptions(o: GenerateOptions = {}): Normalized {
  const supports = o.supports ?? SUPPORTS.all;
  for (const k of supports.layerKinds) if (!(k in LAYER_KINDS)) throw new GenerateOptionsError(`unknown layer kind '${k}'`);
  const kinds = new Set<LayerKind>(supports.layerKinds);
  if (!kinds.has('disk')) throw new GenerateOptionsError("every target must build 'disk' layers");
  const fsTypes = [...(supports.fsTypes ?? ['ext4', 'xfs', 'btrfs'])];
  for (const t of fsTypes) if (!(t in FS_FACTS)) throw new GenerateOptionsError(`unknown filesystem type '${t}'`);
  const maxOps = o.maxOps ?? 60;
  const maxThreads = o.maxThreads ?? 4;
  if (!Number.isInteger(maxOps) || maxOps < 8) throw new GenerateOptionsError(`maxOps must be an integer of at least 8, not ${maxOps}`);
  if (!Number.isInteger(maxThreads) || maxThreads < 1 || maxThreads > 8) throw new GenerateOptionsError(`maxThreads must be 1 to 8, not ${maxThreads}`);
  const misaligned = o.misaligned ?? 0.15;
  if (!(misaligned >= 0 && misaligned <= 1)) throw new GenerateOptionsError(`misaligned must be in [0, 1], not ${misaligned}`);
  const diskSize = o.diskSize ?? { min: 64 * MiB, max: 512 * MiB };
  if (!(diskSize.min >= 8 * MiB && diskSize.max >= diskSize.min)) throw new GenerateOptionsError('diskSize needs 8 MiB <= min <= max');
  const weights = { ...DEFAULT_WEIGHTS, ...o.weights };
  for (const r of RECIPES) {
    if (!(weights[r] >= 0)) throw new GenerateOptionsError(`weight of ${r} must be >= 0`);
    if (!recipeBuildable(r, kinds, fsTypes)) weights[r] = 0;
  }
  if (RECIPES.every((r) => weights[r] === 0)) throw new GenerateOptionsError('no recipe has a positive weight on this target');
  return Object.freeze({ kinds, fsTypes, maxOps, maxThreads, weights: Object.freeze(weights), misaligned, diskSize });
}
