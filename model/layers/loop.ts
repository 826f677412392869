/** A loop device over a file or a block device, with direct IO and a logical block size (S1). */
import fc from 'fast-check';
import { z } from 'zod';
import { BlockSize, Bytes, LayerId, PositiveBytes, SECTOR } from '../schema/common.ts';
import { MiB, blocksAtLeast, geometryOf } from './generate.ts';
import type { Layer } from './index.ts';
import type { GeometryBounds, LayerKindModule, SemanticIssue } from './kind.ts';

export const LoopLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('loop'),
  on: LayerId,
  directIo: z.boolean().default(false),
  /** Left out: the kernel picks (512 on older kernels, the backing file's DIO alignment on newer ones). */
  logicalBlockSize: BlockSize.optional(),
  offset: Bytes.default(0),
  sizeLimit: PositiveBytes.optional(),
  readOnly: z.boolean().default(false),
});
export type LoopLayer = z.infer<typeof LoopLayer>;

export const loop: LayerKindModule<LoopLayer> = {
  kind: 'loop',
  schema: LoopLayer,
  role: 'block',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['file', 'block'] }],
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    if (layer.offset % SECTOR !== 0) issues.push({ path: ['offset'], message: 'the loop offset must be a multiple of 512' });
    const g = stack.geometry(layer.on);
    if (g) {
      const room = g.sizeMin - layer.offset;
      const lbs = layer.logicalBlockSize ?? 4096;
      if (room < lbs) issues.push({ path: ['on'], message: `'${layer.on}' is too small for a loop device at offset ${layer.offset}` });
      else if (layer.sizeLimit === undefined && room % lbs !== 0)
        issues.push({ path: ['on'], message: `the space after the offset (${room} bytes) is not a multiple of ${lbs}, so the last block would be cut` });
    }
    if (layer.sizeLimit !== undefined && layer.sizeLimit % (layer.logicalBlockSize ?? 4096) !== 0)
      issues.push({ path: ['sizeLimit'], message: 'the size limit must be a multiple of the logical block size' });
    return issues;
  },
  geometry(layer, stack): GeometryBounds {
    const g = stack.geometry(layer.on);
    const below = g ?? { sizeMin: 0, sizeMax: 0, logicalBlockSizes: [512], physicalBlockSize: 512 };
    const cap = (n: number) => {
      let s = Math.max(0, n - layer.offset);
      if (layer.sizeLimit !== undefined) s = Math.min(s, layer.sizeLimit);
      return s - (s % SECTOR);
    };
    const lower = stack.layer(layer.on);
    // The block size a kernel may pick when the case leaves it out: 512, or what the backing
    // store wants for direct IO (its logical block size, or for a file the fs block size).
    let picks: number[] = [512];
    if (layer.logicalBlockSize !== undefined) picks = [layer.logicalBlockSize];
    else if (lower?.kind === 'file') {
      const fsLayer = stack.layer(lower.on);
      const fsBlock = fsLayer?.kind === 'fs' ? fsLayer.blockSize : 4096;
      const dev = fsLayer?.kind === 'fs' ? stack.geometry(fsLayer.on) : undefined;
      picks = [...new Set([512, ...(dev?.logicalBlockSizes ?? []), fsBlock])];
    } else picks = [...new Set([512, ...below.logicalBlockSizes])];
    return {
      sizeMin: cap(below.sizeMin),
      sizeMax: cap(below.sizeMax),
      logicalBlockSizes: picks.sort((a, b) => a - b),
      physicalBlockSize: Math.max(layer.logicalBlockSize ?? 512, below.physicalBlockSize > 4096 ? 4096 : below.physicalBlockSize),
    };
  },
  initialFill: () => 'lower',
  mapUp(layer, _ref, start, end) {
    const s = Math.max(0, start - layer.offset);
    let e = end - layer.offset;
    if (layer.sizeLimit !== undefined) e = Math.min(e, layer.sizeLimit);
    return e > s ? [[s, e]] : [];
  },
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  needs: () => ({ modules: ['loop'], tools: ['losetup'], config: ['BLK_DEV_LOOP'] }),
};

loop.setup = (layer, env, stack) => {
  const lower = stack.layer(layer.on);
  const backing = lower?.kind === 'file' ? env.filePath(layer.on) : env.devicePath(layer.on);
  const argv = ['losetup', '--find', '--show'];
  if (layer.directIo) argv.push('--direct-io=on');
  if (layer.logicalBlockSize !== undefined) argv.push('--sector-size', String(layer.logicalBlockSize));
  if (layer.offset) argv.push('--offset', String(layer.offset));
  if (layer.sizeLimit !== undefined) argv.push('--sizelimit', String(layer.sizeLimit));
  if (layer.readOnly) argv.push('--read-only');
  argv.push(backing);
  return { steps: [{ name: `loop ${layer.id}`, argv, capture: `dev_${layer.id}`, undo: ['losetup', '-d', `\${dev_${layer.id}}`] }] };
};

/**
 * Generation: a loop device over a free file (mostly) or block layer, direct
 * IO on more often than not, a logical block size left to the kernel or set to
 * any legal size: the mismatches of S1 come from here.
 */
loop.arbitrary = (ctx) => {
  const files = ctx.files.filter((f) => f.size >= MiB && f.size % 4096 === 0).map((f) => ({ id: f.id, size: f.size }));
  const blocks = blocksAtLeast(ctx, MiB).map((b) => ({ id: b.id, size: geometryOf(ctx, b.id).sizeMin }));
  const candidates = [...files, ...files, ...files, ...blocks];
  if (!candidates.length) return undefined;
  return fc
    .record({
      on: fc.constantFrom(...candidates),
      lbs: fc.constantFrom<BlockSize | undefined>(undefined, undefined, 512, 512, 512, 1024, 2048, 4096, 4096),
      directIo: fc.integer({ min: 0, max: 9 }).map((n) => n < 6),
      offset: fc.constantFrom(0, 0, 0, 0, 0, 0, 4096, MiB),
      limit: fc.integer({ min: 0, max: 9 }),
      readOnly: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
    })
    .map(({ on, lbs, directIo, offset, limit, readOnly }): Layer[] => {
      const unit = lbs ?? 4096;
      const at = offset + unit <= on.size ? offset : 0;
      const room = on.size - at;
      // A size limit now and then; always when the room is not whole blocks.
      const cut = room % unit !== 0 || (limit === 0 && room >= 2 * MiB);
      const sizeLimit = cut ? Math.max(unit, room - (room % unit) - (limit === 0 ? MiB : 0)) : undefined;
      return [{ id: ctx.id, kind: 'loop', on: on.id, directIo, ...(lbs !== undefined ? { logicalBlockSize: lbs } : {}), offset: at, ...(sizeLimit !== undefined ? { sizeLimit } : {}), readOnly }];
    });
};
