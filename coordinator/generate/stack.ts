/**
 * Stacks, built a step at a time: each step asks a layer kind's module for a
 * layer on what the stack already has (LayerKindModule.arbitrary) and keeps it
 * only if the stack still validates and the target can build every layer.
 * Recipes use the same builder with narrowed candidates; random stacks let
 * any supported kind grow on anything that takes it.
 */
import { LAYER_KINDS, type Layer, type LayerKind, type StackInfo, analyzeStack } from '../../model/index.ts';
import type { FileLayer } from '../../model/layers/file.ts';
import type { FsLayer } from '../../model/layers/fs.ts';
import type { LayerGenContext } from '../../model/layers/kind.ts';
import type { Draw } from './draw.ts';
import type { Normalized } from './options.ts';

const PREFIX: Record<LayerKind, string> = {
  disk: 'd',
  'scsi-debug': 'sd',
  fs: 'fs',
  file: 'f',
  loop: 'lo',
  md: 'md',
  'dm-linear': 'lin',
  'dm-stripe': 'stripe',
  'dm-crypt': 'crypt',
  'dm-integrity': 'integ',
  'dm-flakey': 'flakey',
  'dm-dust': 'dust',
  'dm-snapshot-origin': 'origin',
  'dm-snapshot': 'snap',
};

export interface GrowOptions {
  purpose?: 'backing' | 'data';
  /** Narrow the candidates the kind's generator may build on. */
  blocks?: (l: Layer) => boolean;
  filesystems?: (l: FsLayer) => boolean;
  files?: (l: FileLayer) => boolean;
  /** Change the drawn layer (a recipe's preference) before it is checked. */
  adjust?: (l: Layer) => Layer;
  /** Keep what was drawn only if this holds (helpers included); grow() then retries a few times. */
  accept?: (layers: readonly Layer[]) => boolean;
}

export class StackBuilder {
  readonly layers: Layer[] = [];
  private analysis: StackInfo = analyzeStack({ layers: [] }).info;
  private readonly counters = new Map<string, number>();
  /** Steps refused because the result did not validate (a generator bug if it happens often). */
  rejected = 0;

  constructor(
    readonly d: Draw,
    readonly o: Normalized,
  ) {}

  get info(): StackInfo {
    return this.analysis;
  }

  supports(kind: LayerKind): boolean {
    return this.o.kinds.has(kind);
  }

  /** A fresh id for a layer of this kind: d0, d1, fs0, lo0, ... */
  newId(kind: LayerKind): string {
    const prefix = PREFIX[kind];
    for (;;) {
      const n = this.counters.get(prefix) ?? 0;
      this.counters.set(prefix, n + 1);
      const id = `${prefix}${n}`;
      if (!this.layers.some((l) => l.id === id || l.id.startsWith(`${id}-`))) return id;
    }
  }

  /** Block layers that can take one more user. */
  freeBlocks(): Layer[] {
    return this.layers.filter((l) => {
      if (LAYER_KINDS[l.kind].role !== 'block') return false;
      if (l.kind === 'loop' && l.readOnly) return false;
      // Made by an op: it does not exist when the layers above it are set up.
      if (l.kind === 'dm-snapshot' && l.createdAt === 'op') return false;
      return this.analysis.usersOf(l.id).every((u) => u.kind === 'dm-snapshot' && u.origin === l.id);
    });
  }

  freeFiles(): FileLayer[] {
    return this.layers.filter((l): l is FileLayer => l.kind === 'file' && this.analysis.usersOf(l.id).length === 0);
  }

  filesystems(): FsLayer[] {
    return this.layers.filter((l): l is FsLayer => l.kind === 'fs');
  }

  context(id: string, g: GrowOptions = {}): LayerGenContext {
    return {
      id,
      stack: this.analysis,
      blocks: this.freeBlocks().filter(g.blocks ?? (() => true)),
      filesystems: this.filesystems().filter(g.filesystems ?? (() => true)),
      files: this.freeFiles().filter(g.files ?? (() => true)),
      kinds: this.o.kinds,
      fsTypes: this.o.fsTypes,
      diskSize: this.o.diskSize,
      ...(g.purpose ? { purpose: g.purpose } : {}),
    };
  }

  /** Adds the layers if every kind is supported and the stack still validates. */
  push(layers: readonly Layer[]): boolean {
    if (layers.some((l) => !this.o.kinds.has(l.kind))) return false;
    const next = [...this.layers, ...layers];
    const { info, issues } = analyzeStack({ layers: next });
    if (issues.length) {
      this.rejected++;
      return false;
    }
    this.layers.push(...layers);
    this.analysis = info;
    return true;
  }

  /** One layer of this kind from its module's generator, on what the stack has; undefined when none fits. */
  grow(kind: LayerKind, g: GrowOptions = {}): Layer | undefined {
    if (!this.o.kinds.has(kind)) return undefined;
    const hook = LAYER_KINDS[kind].arbitrary;
    if (!hook) return undefined;
    const id = this.newId(kind);
    const arb = hook(this.context(id, g));
    if (!arb) return undefined;
    for (let attempt = 0; attempt < (g.accept ? 6 : 1); attempt++) {
      let drawn = this.d.from(arb);
      if (g.adjust) drawn = drawn.map((l) => (l.id === id ? g.adjust!(l) : l));
      if (g.accept && !g.accept(drawn)) continue;
      return this.push(drawn) ? drawn[drawn.length - 1] : undefined;
    }
    return undefined;
  }

  /** Try kinds in turn (each drawn by weight) until one grows. */
  growAny(weights: ReadonlyArray<readonly [number, LayerKind]>, g: GrowOptions = {}, attempts = 4): Layer | undefined {
    const live = weights.filter(([, k]) => this.o.kinds.has(k));
    for (let i = 0; i < attempts && live.length; i++) {
      const l = this.grow(this.d.weighted(live), g);
      if (l) return l;
    }
    return undefined;
  }
}
