/**
 * What the farm knows about one kind of layer, kept in one module per kind:
 * its schema, its semantics for the model (geometry, initial content, how a
 * range of a lower device shows up in it, what faults it injects), and what a
 * target needs to build it. Set-up argv and generation hang off the same
 * module as those parts land.
 */
import type { Arbitrary } from 'fast-check';
import type { z } from 'zod';
import type { FileLayer } from './file.ts';
import type { FsLayer, FsType } from './fs.ts';
import type { Layer } from './index.ts';

export type LayerRole = 'block' | 'fs' | 'file';

/** A reference from a layer to one it sits on, with the roles allowed there. */
export interface LowerRef {
  ref: string;
  /** Path of the field inside the layer, for error messages ("on", "members[1]"). */
  field: string;
  roles: LayerRole[];
}

/** Geometry the model can state about a block layer before the kernel builds it. */
export interface GeometryBounds {
  /** Inclusive bounds on the device size in bytes; equal when the model knows it exactly. */
  sizeMin: number;
  sizeMax: number;
  /** Logical block sizes the kernel may pick (one entry when the case fixes it). */
  logicalBlockSizes: number[];
  physicalBlockSize: number;
}

/**
 * Initial content of a fresh block device or file, uniform over its extent.
 * 'scrambled': the lower device's content seen through a transform (plain
 * dm-crypt decrypting what was never encrypted): data below reads as noise,
 * a read that fails below fails here too.
 */
export type InitialFill = 'zero' | 'any' | 'error' | 'lower' | 'scrambled';

/** A fault a layer injects, as the model sees it (all faults are "may happen"). */
export type FaultProfile =
  | { kind: 'none' }
  | { kind: 'error'; reads: boolean; writes: boolean; always: boolean }
  | { kind: 'drop-writes'; always: boolean }
  | { kind: 'corrupt-reads'; always: boolean }
  | { kind: 'bad-blocks'; blockSize: number; blocks: number[] };

export interface Needs {
  modules: string[];
  tools: string[];
  /** Kernel config options (without CONFIG_), for kernels that build everything in. */
  config: string[];
}

export interface SemanticIssue {
  path: (string | number)[];
  message: string;
}

/** Read-only view of the stack that semantic checks and geometry use. */
export interface StackView {
  all(): readonly Layer[];
  layer(id: string): Layer | undefined;
  geometry(id: string): GeometryBounds | undefined;
  /** Layers that sit directly on this one. */
  usersOf(id: string): Layer[];
}

export interface LayerKindModule<L extends Layer = Layer> {
  kind: L['kind'];
  schema: z.ZodType<L>;
  role: LayerRole;
  lower(layer: L): LowerRef[];
  /** Checks beyond shape; paths are relative to the layer. */
  check(layer: L, stack: StackView): SemanticIssue[];
  /** Only for block layers (and files, whose "size" is their initial size). */
  geometry?(layer: L, stack: StackView): GeometryBounds;
  initialFill(layer: L, stack: StackView): InitialFill;
  /**
   * Where bytes [start, end) of the lower layer `ref` appear in this layer, or
   * 'unknown' when the kernel decides the placement (filesystems, integrity
   * interleaving, md data offsets).
   */
  mapUp(layer: L, ref: string, start: number, end: number): Array<[number, number]> | 'unknown';
  fault(layer: L): FaultProfile;
  /** True when this layer checks data and turns corruption below into errors. */
  verifiesData(layer: L): boolean;
  /**
   * True when zeroing the disks under this layer, with the layer still set up,
   * gives it exactly what a fresh set-up gives: the same content and no other
   * state a program of data ops can change (no metadata on the disks, no
   * journal, no timers, nothing written at set-up). Only stacks made of such
   * layers are kept for the next program (model/stack-reuse.ts). Absent: false.
   */
  resetsWithDisks?(layer: L): boolean;
  needs(layer: L): Needs;
  /** The argv steps that build this layer; absent where no target can build it yet. */
  setup?(layer: L, env: SetupEnv, stack: StackView): LayerSetup;
  /**
   * Generation: a layer of this kind on layers the stack already has, with the
   * helper layers it cannot stand without (the dm-integrity under authenticated
   * dm-crypt, a snapshot's COW disk), helpers first and the new layer last.
   * Undefined when nothing in the stack can carry one. The generator
   * (coordinator/generate) composes stacks from these and validates each step.
   */
  arbitrary?(ctx: LayerGenContext): Arbitrary<Layer[]> | undefined;
}

/** What a layer kind's generator sees of the stack built so far. */
export interface LayerGenContext {
  /** The id the new layer takes; helper layers take ids that start with it. */
  id: string;
  stack: StackView;
  /** Block layers that can take one more user: nothing sits on them (snapshots of an origin aside), not read-only. */
  blocks: readonly Layer[];
  /** Every filesystem (one takes any number of files). */
  filesystems: readonly FsLayer[];
  /** Files nothing sits on. */
  files: readonly FileLayer[];
  /** Layer kinds the target can build; helpers must be among them too. */
  kinds: ReadonlySet<string>;
  /** Filesystem types the target can make. */
  fsTypes: readonly FsType[];
  /** Bounds of a new disk's size in bytes (whole MiB). */
  diskSize: { min: number; max: number };
  /** What the caller wants the new layer for, when it knows: a loop's backing file, a file the program works on. */
  purpose?: 'backing' | 'data';
}

export const noNeeds: Needs = { modules: [], tools: [], config: [] };

export function identityMap(start: number, end: number): Array<[number, number]> {
  return [[start, end]];
}

const EMPTY: GeometryBounds = { sizeMin: 0, sizeMax: 0, logicalBlockSizes: [512], physicalBlockSize: 512 };

/** Geometry of a lower layer, or an empty device when the reference is broken (reported elsewhere). */
export function lowerGeometry(stack: StackView, id: string): GeometryBounds {
  return stack.geometry(id) ?? EMPTY;
}

/** Same geometry, other size bounds. */
export function resized(g: GeometryBounds, sizeMin: number, sizeMax: number, lbs?: number[]): GeometryBounds {
  return { ...g, sizeMin, sizeMax, logicalBlockSizes: lbs ?? g.logicalBlockSizes };
}

export function roundDown(n: number, unit: number): number {
  return n - (n % unit);
}

/**
 * Where and how a target realises a stack. Set-up functions only build argv
 * arrays from this (pure); the executor runs them. `${name}` in an argv
 * element is a value an earlier step captured (see worker/executor/protocol.ts).
 */
export interface SetupEnv {
  /** Directory of this run: backing files, images and mount points live below it. */
  workDir: string;
  /** Prefix of the names this run gives dm and md devices, unique per run. */
  namePrefix: string;
  /** Disks: sparse files behind loop devices (host), or the VM's virtio disks (guest). */
  disks: 'loop-file' | 'virtio';
  /** Guest only: the device node of each disk layer. */
  diskDevice?(id: string): string;
  /** The device node (or a ${capture}) of a block layer. */
  devicePath(id: string): string;
  mountPoint(fsId: string): string;
  filePath(fileId: string): string;
  /** Deterministic key material (hex) for dm-crypt, from the case seed. */
  keyHex(layerId: string, bytes: number): string;
}

export interface SetupStepSpec {
  name: string;
  argv: string[];
  capture?: string;
  undo?: string[];
  stdin?: string;
  timeoutMs?: number;
}

/** Set-up of one layer, and the checks to run on it after the program (fsck). */
export interface LayerSetup {
  steps: SetupStepSpec[];
  checks?: Array<{ name: string; argv: string[]; timeoutMs?: number }>;
}
