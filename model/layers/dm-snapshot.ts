/**
 * dm snapshots (S4): a `dm-snapshot-origin` passes IO through to its device and
 * copies chunks out before they are overwritten; a `dm-snapshot` over that
 * origin shows the origin as it was when the snapshot was made, plus its own
 * writes, keeping both in its COW device.
 */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId, PositiveBytes, isPowerOfTwo } from '../schema/common.ts';
import { MiB, ceilMiB, geometryOf, pow2 } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, type SemanticIssue, identityMap, lowerGeometry } from './kind.ts';
import { dmNeeds } from './dm-linear.ts';
import type { SetupStepSpec } from './kind.ts';
import { dmCreateStep, dmName, dmTable, simpleDmSetup } from './dm-tables.ts';

export const DmSnapshotOriginLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-snapshot-origin'),
  on: LayerId,
});
export type DmSnapshotOriginLayer = z.infer<typeof DmSnapshotOriginLayer>;

export const DmSnapshotLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-snapshot'),
  origin: LayerId,
  cow: LayerId,
  chunk: PositiveBytes.default(4096),
  persistent: z.boolean().default(true),
  /** 'setup': exists before the program starts; 'op': made by a snapshot-create op. */
  createdAt: z.enum(['setup', 'op']).default('setup'),
});
export type DmSnapshotLayer = z.infer<typeof DmSnapshotLayer>;

const snapshotNeeds = { modules: ['dm-mod', 'dm-snapshot'], tools: ['dmsetup'], config: ['BLK_DEV_DM', 'DM_SNAPSHOT'] };

export const dmSnapshotOrigin: LayerKindModule<DmSnapshotOriginLayer> = {
  kind: 'dm-snapshot-origin',
  schema: DmSnapshotOriginLayer,
  role: 'block',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['block'] }],
  check: () => [],
  geometry: (layer, stack) => lowerGeometry(stack, layer.on),
  initialFill: () => 'lower',
  mapUp: (_l, _r, s, e) => identityMap(s, e),
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  needs: () => snapshotNeeds,
};

export const dmSnapshot: LayerKindModule<DmSnapshotLayer> = {
  kind: 'dm-snapshot',
  schema: DmSnapshotLayer,
  role: 'block',
  lower: (layer) => [
    { ref: layer.origin, field: 'origin', roles: ['block'] },
    { ref: layer.cow, field: 'cow', roles: ['block'] },
  ],
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    const origin = stack.layer(layer.origin);
    if (origin && origin.kind !== 'dm-snapshot-origin')
      issues.push({ path: ['origin'], message: `a snapshot's origin must be a dm-snapshot-origin layer (writes to it must copy out first), not ${origin.kind}` });
    if (!isPowerOfTwo(layer.chunk) || layer.chunk < 4096 || layer.chunk > 512 * 1024)
      issues.push({ path: ['chunk'], message: 'the chunk size must be a power of two from 4096 to 524288' });
    if (layer.createdAt === 'op' && stack.usersOf(layer.id).length > 0)
      issues.push({ path: ['createdAt'], message: `'${stack.usersOf(layer.id)[0]!.id}' sits on snapshot '${layer.id}', which does not exist until a snapshot-create op; it must exist at set-up (createdAt 'setup')` });
    const og = stack.geometry(layer.origin);
    const cg = stack.geometry(layer.cow);
    // A COW device that fills up invalidates the snapshot; the model does not guess when.
    if (og && cg && cg.sizeMin < og.sizeMax + 1024 * 1024)
      issues.push({ path: ['cow'], message: `COW device '${layer.cow}' (${cg.sizeMin} bytes) may overflow: it needs the origin's size plus 1 MiB (${og.sizeMax + 1024 * 1024})` });
    return issues;
  },
  geometry: (layer, stack) => lowerGeometry(stack, layer.origin),
  initialFill: () => 'lower',
  mapUp: () => 'unknown',
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  needs: () => snapshotNeeds,
};

export { dmNeeds };

/** Generation: a pass-through origin on a free block layer (snapshots come with dm-snapshot's generator). */
dmSnapshotOrigin.arbitrary = (ctx) => {
  if (!ctx.blocks.length) return undefined;
  return fc.constantFrom(...ctx.blocks).map((on): Layer[] => [{ id: ctx.id, kind: 'dm-snapshot-origin', on: on.id }]);
};

/**
 * Generation: a snapshot of an origin the stack has (or of a fresh origin put
 * on a free block layer), its COW a free block layer big enough or a fresh
 * disk; made at set-up or by a snapshot-create op in the program (S4).
 */
dmSnapshot.arbitrary = (ctx) => {
  const origins = ctx.stack.all().filter((l) => l.kind === 'dm-snapshot-origin');
  const bases = ctx.kinds.has('dm-snapshot-origin') ? ctx.blocks.filter((b) => b.kind !== 'dm-snapshot-origin') : [];
  const choices = [...origins.map((o) => ({ origin: o.id, base: undefined as string | undefined })), ...bases.map((b) => ({ origin: `${ctx.id}-origin`, base: b.id as string | undefined }))];
  if (!choices.length) return undefined;
  return fc
    .record({
      pick: fc.constantFrom(...choices),
      chunk: fc.oneof(fc.constant(4096), pow2(12, 19)),
      persistent: fc.integer({ min: 0, max: 3 }).map((n) => n > 0),
      createdAt: fc.constantFrom<'setup' | 'op'>('setup', 'op', 'op'),
      cowPick: fc.nat(),
    })
    .map(({ pick, chunk, persistent, createdAt, cowPick }): Layer[] => {
      const out: Layer[] = [];
      if (pick.base !== undefined) out.push({ id: pick.origin, kind: 'dm-snapshot-origin', on: pick.base });
      const originSize = geometryOf(ctx, pick.base ?? pick.origin).sizeMax;
      const need = originSize + MiB;
      const used = new Set([pick.origin, pick.base]);
      const cows = ctx.blocks.filter((b) => !used.has(b.id) && b.kind !== 'dm-snapshot-origin' && geometryOf(ctx, b.id).sizeMin >= need);
      let cow: string;
      if (cows.length && cowPick % 3 === 0) cow = cows[cowPick % cows.length]!.id;
      else {
        cow = `${ctx.id}-cow`;
        out.push({ id: cow, kind: 'disk', size: ceilMiB(need), logicalBlockSize: 512 });
      }
      out.push({ id: ctx.id, kind: 'dm-snapshot', origin: pick.origin, cow, chunk, persistent, createdAt });
      return out;
    });
};

dmSnapshotOrigin.setup = (layer, env, stack) => simpleDmSetup(layer, env, stack);

/**
 * A snapshot made at set-up is created while its origin is suspended, as a
 * snapshot-create op does; one made by an op only gets its COW header
 * cleared here, and an undo that removes it if the program left it there.
 */
dmSnapshot.setup = (layer, env, stack) => {
  const name = dmName(env, layer.id);
  const clearCow: SetupStepSpec = { name: `clear the COW header of ${layer.id}`, argv: ['blkdiscard', '--force', '--zeroout', '--offset', '0', '--length', String(layer.chunk), env.devicePath(layer.cow)] };
  const t = dmTable(layer, env, stack);
  if (layer.createdAt === 'setup') {
    // The origin splits writes at the snapshots' chunk size, which it learns when resumed: resume it
    // once the snapshot exists, or a write spanning chunks is copied out for its first chunk only.
    const origin = dmName(env, layer.origin);
    return {
      steps: [
        ...t.steps,
        clearCow,
        // Undone in reverse: the snapshot goes, then the origin is surely running again (a no-op when it is).
        { name: `suspend ${layer.origin} for ${layer.id}`, argv: ['dmsetup', 'suspend', origin], undo: ['dmsetup', 'resume', origin] },
        dmCreateStep(layer, env, t.table),
        { name: `resume ${layer.origin} for ${layer.id}`, argv: ['dmsetup', 'resume', origin] },
      ],
    };
  }
  return {
    steps: [
      ...t.steps,
      clearCow,
      { name: `dm-snapshot ${layer.id} (made by an op)`, argv: ['true'], undo: ['blockfarm-exec', '--if-exists', `/dev/mapper/${name}`, 'dmsetup', 'remove', '--retry', name] },
    ],
  };
};
