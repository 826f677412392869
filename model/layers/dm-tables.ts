/**
 * Device-mapper tables and the argv steps that build dm devices, shared by
 * the dm layer kinds' set-up functions and by the compiled control ops
 * (dm-reload needs the same table again; snapshot-create builds the
 * snapshot's table). Pure: strings and argv arrays only.
 *
 * Sizes in tables are 512-byte sectors. Where the model knows a lower
 * device's size exactly (a disk, a dm-linear with a length) it is written
 * in; where the kernel decides it (dm-integrity's provided sectors, md's
 * data offset) a set-up step reads it at run time (`blockdev --getsz`, or
 * `dmsetup status`) into a ${capture}, and `blockfarm-exec --calc` does the
 * arithmetic (worker/executor/helpers.c). Capture names are fixed per layer
 * id (sz_<id>: a device's size; len_<id>: a table's length; prov_<id>:
 * dm-integrity's provided sectors), so a later op finds them again.
 */
import { CRYPT_CIPHER, CRYPT_TAG_SIZE } from './dm-crypt.ts';
import type { DmCryptLayer } from './dm-crypt.ts';
import type { DmDustLayer } from './dm-dust.ts';
import type { DmFlakeyLayer } from './dm-flakey.ts';
import type { DmIntegrityLayer } from './dm-integrity.ts';
import type { DmLinearLayer } from './dm-linear.ts';
import type { DmSnapshotLayer, DmSnapshotOriginLayer } from './dm-snapshot.ts';
import type { DmStripeLayer } from './dm-stripe.ts';
import type { SetupEnv, SetupStepSpec, StackView } from './kind.ts';

export const SECTOR = 512;

export type DmLayer = DmLinearLayer | DmStripeLayer | DmCryptLayer | DmIntegrityLayer | DmFlakeyLayer | DmDustLayer | DmSnapshotOriginLayer | DmSnapshotLayer;

/** A number of sectors: a literal, or a ${capture} that steps produce at run time. */
export interface Sectors {
  value: string;
  steps: SetupStepSpec[];
}

export function dmName(env: SetupEnv, id: string): string {
  return `${env.namePrefix}${id}`;
}

/** `blockfarm-exec --calc ...` captured under `capture`. */
export function calcStep(name: string, capture: string, tokens: string[]): SetupStepSpec {
  return { name, argv: ['blockfarm-exec', '--calc', ...tokens], capture };
}

/** The size of block layer `id` in sectors: exact from the model, or read with blockdev --getsz. */
export function sectorsOf(id: string, env: SetupEnv, stack: StackView): Sectors {
  const g = stack.geometry(id);
  if (g && g.sizeMin === g.sizeMax && g.sizeMin % SECTOR === 0) return { value: String(g.sizeMin / SECTOR), steps: [] };
  return {
    value: `\${sz_${id}}`,
    steps: [{ name: `size of ${id}`, argv: ['blockdev', '--getsz', env.devicePath(id)], capture: `sz_${id}` }],
  };
}

/** Round `s` down to a multiple of `unit` sectors, at run time when it is not a literal. */
function roundDownSectors(s: Sectors, unit: number, capture: string, name: string): Sectors {
  if (unit <= 1) return s;
  if (/^\d+$/.test(s.value)) return { value: String(Number(s.value) - (Number(s.value) % unit)), steps: s.steps };
  return { value: `\${${capture}}`, steps: [...s.steps, calcStep(name, capture, [s.value, '/', String(unit), '*', String(unit)])] };
}

/** What a dm layer's table is, and the steps that must run before it can be written. */
export interface DmTable {
  /** Steps that capture what the table refers to. */
  steps: SetupStepSpec[];
  /** The table's length in sectors (literal or ${capture}). */
  length: string;
  table: string;
}

function linearTable(l: DmLinearLayer, env: SetupEnv, stack: StackView): DmTable {
  const off = l.offset / SECTOR;
  if (l.length !== undefined) return { steps: [], length: String(l.length / SECTOR), table: `0 ${l.length / SECTOR} linear ${env.devicePath(l.on)} ${off}` };
  const below = sectorsOf(l.on, env, stack);
  let len: Sectors = below;
  if (off > 0) {
    len = /^\d+$/.test(below.value)
      ? { value: String(Number(below.value) - off), steps: below.steps }
      : { value: `\${len_${l.id}}`, steps: [...below.steps, calcStep(`length of ${l.id}`, `len_${l.id}`, [below.value, '-', String(off)])] };
  }
  return { steps: len.steps, length: len.value, table: `0 ${len.value} linear ${env.devicePath(l.on)} ${off}` };
}

function stripeTable(l: DmStripeLayer, env: SetupEnv, stack: StackView): DmTable {
  const chunk = l.chunk / SECTOR;
  const sizes = l.members.map((m) => sectorsOf(m, env, stack));
  const steps = sizes.flatMap((s) => s.steps);
  let length: string;
  if (sizes.every((s) => /^\d+$/.test(s.value))) {
    const min = Math.min(...sizes.map((s) => Number(s.value)));
    length = String(l.members.length * (min - (min % chunk)));
  } else {
    const tokens = [sizes[0]!.value];
    for (const s of sizes.slice(1)) tokens.push('min', s.value);
    tokens.push('/', String(chunk), '*', String(chunk * l.members.length));
    steps.push(calcStep(`length of ${l.id}`, `len_${l.id}`, tokens));
    length = `\${len_${l.id}}`;
  }
  const devs = l.members.map((m) => `${env.devicePath(m)} 0`).join(' ');
  return { steps, length, table: `0 ${length} striped ${l.members.length} ${chunk} ${devs}` };
}

/** Length of a layer that maps its whole lower device, rounded down to `unit` sectors. */
function wholeLength(id: string, on: string, unit: number, env: SetupEnv, stack: StackView): Sectors {
  if (stack.layer(on)?.kind === 'dm-integrity') {
    // dm-integrity's size is its provided sectors, captured when it was made.
    return roundDownSectors({ value: `\${prov_${on}}`, steps: [] }, unit, `len_${id}`, `length of ${id}`);
  }
  return roundDownSectors(sectorsOf(on, env, stack), unit, `len_${id}`, `length of ${id}`);
}

function cryptTable(l: DmCryptLayer, env: SetupEnv, stack: StackView): DmTable {
  const spec = CRYPT_CIPHER[l.integrity];
  const len = wholeLength(l.id, l.on, l.sectorSize / SECTOR, env, stack);
  const opts: string[] = [];
  if (l.integrity !== 'none') opts.push(`integrity:${CRYPT_TAG_SIZE[l.integrity]}:${spec.integrityArg ?? 'aead'}`);
  if (l.sectorSize !== SECTOR) opts.push(`sector_size:${l.sectorSize}`);
  const optText = opts.length ? ` ${opts.length} ${opts.join(' ')}` : '';
  return {
    steps: len.steps,
    length: len.value,
    table: `0 ${len.value} crypt ${spec.cipher} ${env.keyHex(l.id, spec.keyBytes)} 0 ${env.devicePath(l.on)} 0${optText}`,
  };
}

const INTEGRITY_MODE = { journal: 'J', direct: 'D', bitmap: 'B' } as const;

/** The dm-integrity table for a given length (the real one uses the provided sectors). */
export function integrityTable(l: DmIntegrityLayer, env: SetupEnv, length: string): string {
  const opts: string[] = [];
  if (l.internalHash !== 'none') opts.push(`internal_hash:${l.internalHash}`);
  if (l.sectorSize !== SECTOR) opts.push(`block_size:${l.sectorSize}`);
  return `0 ${length} integrity ${env.devicePath(l.on)} 0 ${l.tagSize} ${INTEGRITY_MODE[l.mode]} ${opts.length}${opts.length ? ` ${opts.join(' ')}` : ''}`;
}

function flakeyTable(l: DmFlakeyLayer, env: SetupEnv, stack: StackView): DmTable {
  const len = sectorsOf(l.on, env, stack);
  const features: Record<DmFlakeyLayer['mode'], string> = {
    error: '',
    'drop-writes': ' 1 drop_writes',
    'error-writes': ' 1 error_writes',
    // Replace byte 32 of every read bio while down.
    'corrupt-reads': ' 5 corrupt_bio_byte 32 r 255 0',
  };
  return { steps: len.steps, length: len.value, table: `0 ${len.value} flakey ${env.devicePath(l.on)} 0 ${l.upSeconds} ${l.downSeconds}${features[l.mode]}` };
}

function dustTable(l: DmDustLayer, env: SetupEnv, stack: StackView): DmTable {
  const len = sectorsOf(l.on, env, stack);
  return { steps: len.steps, length: len.value, table: `0 ${len.value} dust ${env.devicePath(l.on)} 0 ${l.blockSize}` };
}

function originTable(l: DmSnapshotOriginLayer, env: SetupEnv, stack: StackView): DmTable {
  const len = sectorsOf(l.on, env, stack);
  return { steps: len.steps, length: len.value, table: `0 ${len.value} snapshot-origin ${env.devicePath(l.on)}` };
}

/** The device a snapshot's origin layer sits on: snapshot tables name the real origin device. */
function realOrigin(l: DmSnapshotLayer, stack: StackView): string {
  const o = stack.layer(l.origin);
  return o?.kind === 'dm-snapshot-origin' ? o.on : l.origin;
}

function snapshotTable(l: DmSnapshotLayer, env: SetupEnv, stack: StackView, target: 'snapshot' | 'snapshot-merge' = 'snapshot'): DmTable {
  const real = realOrigin(l, stack);
  const len = sectorsOf(real, env, stack);
  return {
    steps: len.steps,
    length: len.value,
    table: `0 ${len.value} ${target} ${env.devicePath(real)} ${env.devicePath(l.cow)} ${l.persistent ? 'P' : 'N'} ${l.chunk / SECTOR}`,
  };
}

/** The table of any dm layer (dm-integrity: with its provided sectors, which its set-up captures). */
export function dmTable(l: DmLayer, env: SetupEnv, stack: StackView): DmTable {
  switch (l.kind) {
    case 'dm-linear': return linearTable(l, env, stack);
    case 'dm-stripe': return stripeTable(l, env, stack);
    case 'dm-crypt': return cryptTable(l, env, stack);
    case 'dm-integrity': return { steps: [], length: `\${prov_${l.id}}`, table: integrityTable(l, env, `\${prov_${l.id}}`) };
    case 'dm-flakey': return flakeyTable(l, env, stack);
    case 'dm-dust': return dustTable(l, env, stack);
    case 'dm-snapshot-origin': return originTable(l, env, stack);
    case 'dm-snapshot': return snapshotTable(l, env, stack);
  }
}

/** `dmsetup create NAME --table TABLE`, undone by `dmsetup remove`. */
export function dmCreateStep(l: DmLayer, env: SetupEnv, table: string): SetupStepSpec {
  const name = dmName(env, l.id);
  return { name: `${l.kind} ${l.id}`, argv: ['dmsetup', 'create', name, '--table', table], undo: ['dmsetup', 'remove', '--retry', name] };
}

/** Set-up of the dm layers whose device is one `dmsetup create` of their table. */
export function simpleDmSetup(l: DmLayer, env: SetupEnv, stack: StackView): { steps: SetupStepSpec[] } {
  const t = dmTable(l, env, stack);
  return { steps: [...t.steps, dmCreateStep(l, env, t.table)] };
}

/** Write zeroes over a whole device (BLKZEROOUT), e.g. to initialise dm-integrity tags or dm-crypt sectors. */
export function wipeStep(id: string, env: SetupEnv): SetupStepSpec {
  return { name: `wipe ${id}`, argv: ['blkdiscard', '--force', '--zeroout', env.devicePath(id)], timeoutMs: 900_000 };
}

// ---------------------------------------------------------------- control ops

/** argv lists that load a new table into a live dm device (active at the next resume). */
export function reloadArgvs(l: DmLayer, as: 'same' | 'linear' | 'snapshot-origin', env: SetupEnv, stack: StackView): string[][] {
  const name = dmName(env, l.id);
  const t = dmTable(l, env, stack);
  let table = t.table;
  if (as !== 'same') {
    const lower = 'on' in l ? l.on : undefined;
    if (!lower) throw new Error(`${l.kind} '${l.id}' has no single lower device to pass through to`);
    table = as === 'linear' ? `0 ${t.length} linear ${env.devicePath(lower)} 0` : `0 ${t.length} snapshot-origin ${env.devicePath(lower)}`;
  }
  return [['dmsetup', 'reload', name, '--table', table]];
}

/** Taking a snapshot of a live origin: suspend the origin (flushing it), create the snapshot, resume. */
export function snapshotCreateArgvs(l: DmSnapshotLayer, env: SetupEnv, stack: StackView): string[][] {
  const t = snapshotTable(l, env, stack);
  const origin = dmName(env, l.origin);
  return [
    ['dmsetup', 'suspend', origin],
    ['dmsetup', 'create', dmName(env, l.id), '--table', t.table],
    ['dmsetup', 'resume', origin],
  ];
}

export function snapshotRemoveArgvs(l: DmSnapshotLayer, env: SetupEnv): string[][] {
  return [['dmsetup', 'remove', '--retry', dmName(env, l.id)]];
}

/**
 * Merging a snapshot back (Documentation/admin-guide/device-mapper/snapshot.rst):
 * with the snapshot suspended, the origin's table becomes snapshot-merge over
 * the same COW; resuming the origin hands the snapshot's exceptions over to
 * it, the old snapshot device is removed, and the merge runs in the
 * background while the origin already reads as the snapshot did.
 */
export function snapshotMergeArgvs(l: DmSnapshotLayer, env: SetupEnv, stack: StackView): string[][] {
  const origin = dmName(env, l.origin);
  const snap = dmName(env, l.id);
  const t = snapshotTable(l, env, stack, 'snapshot-merge');
  return [
    ['dmsetup', 'suspend', snap],
    ['dmsetup', 'suspend', origin],
    ['dmsetup', 'reload', origin, '--table', t.table],
    ['dmsetup', 'resume', origin],
    ['dmsetup', 'remove', '--retry', snap],
  ];
}
