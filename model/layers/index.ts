/** The registry of layer kinds: the union schema and one module per kind. */
import { z } from 'zod';
import { DiskLayer, disk } from './disk.ts';
import { ScsiDebugLayer, scsiDebug } from './scsi-debug.ts';
import { FsLayer, fs } from './fs.ts';
import { FileLayer, file } from './file.ts';
import { LoopLayer, loop } from './loop.ts';
import { MdLayer, md } from './md.ts';
import { DmLinearLayer, dmLinear } from './dm-linear.ts';
import { DmStripeLayer, dmStripe } from './dm-stripe.ts';
import { DmCryptLayer, dmCrypt } from './dm-crypt.ts';
import { DmIntegrityLayer, dmIntegrity } from './dm-integrity.ts';
import { DmFlakeyLayer, dmFlakey } from './dm-flakey.ts';
import { DmDustLayer, dmDust } from './dm-dust.ts';
import { DmSnapshotLayer, DmSnapshotOriginLayer, dmSnapshot, dmSnapshotOrigin } from './dm-snapshot.ts';
import type { LayerKindModule } from './kind.ts';

export const Layer = z.discriminatedUnion('kind', [
  DiskLayer,
  ScsiDebugLayer,
  FsLayer,
  FileLayer,
  LoopLayer,
  MdLayer,
  DmLinearLayer,
  DmStripeLayer,
  DmCryptLayer,
  DmIntegrityLayer,
  DmFlakeyLayer,
  DmDustLayer,
  DmSnapshotOriginLayer,
  DmSnapshotLayer,
]);
export type Layer = z.infer<typeof Layer>;
export type LayerKind = Layer['kind'];
export type LayerOf<K extends LayerKind> = Extract<Layer, { kind: K }>;

const modules = [
  disk, scsiDebug, fs, file, loop, md, dmLinear, dmStripe, dmCrypt, dmIntegrity, dmFlakey, dmDust, dmSnapshotOrigin, dmSnapshot,
] as const;

export const LAYER_KINDS: { [K in LayerKind]: LayerKindModule<LayerOf<K>> } = Object.fromEntries(
  modules.map((m) => [m.kind, m]),
) as never;

export function layerModule<L extends Layer>(layer: L): LayerKindModule<L> {
  return LAYER_KINDS[layer.kind as LayerKind] as unknown as LayerKindModule<L>;
}

export const DM_KINDS: ReadonlySet<LayerKind> = new Set([
  'dm-linear', 'dm-stripe', 'dm-crypt', 'dm-integrity', 'dm-flakey', 'dm-dust', 'dm-snapshot-origin', 'dm-snapshot',
]);

export * from './kind.ts';
export { FS_FACTS, type FsType, type FallocateMode, type Support } from './fs.ts';
export { CRYPT_CIPHER, CRYPT_TAG_SIZE } from './dm-crypt.ts';
