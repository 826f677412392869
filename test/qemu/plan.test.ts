/**
 * What the layer set-ups and control ops compile to for a guest (pure, no
 * VM): dm tables with sizes known now or captured at run time, the order
 * of steps and their undos, and the argv of the control ops.
 */
import { describe, expect, it } from 'vitest';
import type { ExecPlan, PlanOp, SetupStep } from '../../worker/executor/protocol.ts';
import { compilePlan } from '../../worker/plan/compile.ts';
import { makeSetupEnv } from '../../worker/plan/env.ts';
import { type Built, type LayerInput, MiB, type OpInput, read, stackCase, write } from '../helpers/cases.ts';

function plan(layers: LayerInput[], program: OpInput[] = [read(1, layers[layers.length - 1]!.id as string, 0, 4096)]): ExecPlan {
  const b: Built = stackCase(layers, program);
  const disks = b.info.layers.filter((l) => l.kind === 'disk').map((l) => l.id);
  const env = makeSetupEnv({ workDir: '/tmp/bf', namePrefix: 'bf1-', seed: b.c.seed, info: b.info, disks: 'virtio', diskDevice: (id) => `/dev/vd${'abcd'[disks.indexOf(id)]}` });
  const r = compilePlan(b.c, b.info, env);
  if (!r.ok) throw new Error(r.unsupported);
  return r.plan;
}

const argvs = (steps: SetupStep[]) => steps.map((s) => s.argv.join(' '));
const ops = (p: ExecPlan): PlanOp[] => p.threads.flat();

describe('dm set-up in a guest', () => {
  it('dm-linear: table from the disk size known now; removed on undo', () => {
    const p = plan([{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'l', kind: 'dm-linear', on: 'd', offset: MiB }]);
    expect(p.setup).toEqual([
      { name: 'dm-linear l', argv: ['dmsetup', 'create', 'bf1-l', '--table', `0 ${15 * 2048} linear /dev/vda 2048`], undo: ['dmsetup', 'remove', '--retry', 'bf1-l'] },
    ]);
  });

  it('dm-integrity sizes itself at run time, and what sits on it uses the captured size', () => {
    const p = plan([
      { id: 'd', kind: 'disk', size: 16 * MiB },
      { id: 'i', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28, mode: 'direct' },
      { id: 'c', kind: 'dm-crypt', on: 'i', integrity: 'gcm' },
      { id: 't', kind: 'dm-linear', on: 'c', offset: 4096 },
    ]);
    const a = argvs(p.setup);
    expect(a[0]).toBe('blkdiscard --force --zeroout --offset 0 --length 4096 /dev/vda');
    expect(a[1]).toBe('dmsetup create bf1-i --table 0 1 integrity /dev/vda 0 28 D 0');
    expect(p.setup[2]).toMatchObject({ argv: ['blockfarm-exec', '--field', '5', 'dmsetup', 'status', 'bf1-i'], capture: 'prov_i' });
    expect(a[3]).toBe('dmsetup reload bf1-i --table 0 ${prov_i} integrity /dev/vda 0 28 D 0');
    expect(a[4]).toBe('dmsetup resume bf1-i');
    expect(a[5]).toMatch(/^dmsetup create bf1-c --table 0 \$\{prov_i\} crypt capi:gcm\(aes\)-random [0-9a-f]{64} 0 \/dev\/mapper\/bf1-i 0 1 integrity:28:aead$/);
    // The top linear's length: the crypt device's size read at run time, minus the offset.
    expect(p.setup[6]).toMatchObject({ argv: ['blockdev', '--getsz', '/dev/mapper/bf1-c'], capture: 'sz_c' });
    expect(p.setup[7]).toMatchObject({ argv: ['blockfarm-exec', '--calc', '${sz_c}', '-', '8'], capture: 'len_t' });
    expect(a[8]).toBe('dmsetup create bf1-t --table 0 ${len_t} linear /dev/mapper/bf1-c 8');
    // Undo in reverse: t, c, then i (only its create step has an undo).
    expect(p.setup.filter((s) => s.undo).map((s) => s.undo!.join(' ')).reverse()).toEqual(['dmsetup remove --retry bf1-t', 'dmsetup remove --retry bf1-c', 'dmsetup remove --retry bf1-i']);
  });

  it('dm-stripe over members of unknown size takes the smallest, in whole chunks', () => {
    const p = plan([
      { id: 'd', kind: 'disk', size: 16 * MiB },
      { id: 'e', kind: 'disk', size: 16 * MiB },
      { id: 'f', kind: 'disk', size: 16 * MiB },
      { id: 'm', kind: 'md', level: 1, members: ['d', 'e'] },
      { id: 's', kind: 'dm-stripe', members: ['m', 'f'], chunk: 65536 },
    ]);
    const calc = p.setup.find((s) => s.capture === 'len_s')!;
    expect(calc.argv).toEqual(['blockfarm-exec', '--calc', '${sz_m}', 'min', String(16 * 2048), '/', '128', '*', '256']);
    expect(argvs(p.setup).at(-1)).toBe('dmsetup create bf1-s --table 0 ${len_s} striped 2 128 /dev/md/bf1-m 0 /dev/vdc 0');
    expect(argvs(p.setup)[0]).toBe('mdadm --create /dev/md/bf1-m --run --level=1 --raid-devices=2 --metadata=1.2 --assume-clean --bitmap=none /dev/vda /dev/vdb');
  });

  it('dm-flakey modes, scsi_debug parameters and its device found at run time', () => {
    const f = plan([{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'x', kind: 'dm-flakey', on: 'd', upSeconds: 0, downSeconds: 5, mode: 'drop-writes' }]);
    expect(argvs(f.setup)).toEqual([`dmsetup create bf1-x --table 0 ${16 * 2048} flakey /dev/vda 0 0 5 1 drop_writes`]);
    const s = plan([{ id: 'sd', kind: 'scsi-debug', size: 64 * MiB, logicalBlockSize: 512, physicalBlockSize: 4096, dif: 1, dix: true }, { id: 'l', kind: 'dm-linear', on: 'sd' }]);
    expect(s.setup[0]).toMatchObject({
      argv: ['modprobe', 'scsi_debug', 'dev_size_mb=64', 'sector_size=512', 'physblk_exp=3', 'dif=1', 'dix=1', 'guard=0', 'num_tgts=1', 'max_luns=1', 'add_host=1'],
      undo: ['modprobe', '-r', 'scsi_debug'],
    });
    expect(s.setup[1]).toMatchObject({ argv: ['blockfarm-exec', '--scsi-debug-dev', '30000'], capture: 'dev_sd' });
    expect(argvs(s.setup)[2]).toBe(`dmsetup create bf1-l --table 0 ${64 * 2048} linear \${dev_sd} 0`);
  });
});

describe('control ops in a guest', () => {
  const snap = (createdAt: 'setup' | 'op'): LayerInput[] => [
    { id: 'd', kind: 'disk', size: 16 * MiB },
    { id: 'cow', kind: 'disk', size: 24 * MiB },
    { id: 'o', kind: 'dm-snapshot-origin', on: 'd' },
    { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'cow', createdAt },
  ];

  it('a snapshot made at set-up is created with its origin suspended', () => {
    expect(argvs(plan(snap('setup')).setup)).toEqual([
      `dmsetup create bf1-o --table 0 ${16 * 2048} snapshot-origin /dev/vda`,
      'blkdiscard --force --zeroout --offset 0 --length 4096 /dev/vdb',
      'dmsetup suspend bf1-o',
      `dmsetup create bf1-s --table 0 ${16 * 2048} snapshot /dev/vda /dev/vdb P 8`,
      'dmsetup resume bf1-o',
    ]);
  });

  it('snapshot create, remove and merge; a snapshot made by an op is removed on undo only if still there', () => {
    const p = plan(snap('op'), [write(1, 'o', 0, 4096), { kind: 'snapshot-create', id: 2, target: 's' }, { kind: 'snapshot-merge', id: 3, target: 's' }]);
    expect(p.setup.at(-1)).toMatchObject({ argv: ['true'], undo: ['blockfarm-exec', '--if-exists', '/dev/mapper/bf1-s', 'dmsetup', 'remove', '--retry', 'bf1-s'] });
    const [, create, merge] = ops(p) as Array<Extract<PlanOp, { kind: 'exec' }>>;
    const q = plan(snap('op'), [{ kind: 'snapshot-create', id: 1, target: 's' }, { kind: 'snapshot-remove', id: 2, target: 's' }]);
    const remove = ops(q)[1];
    expect(create!.argvs.map((a) => a.join(' '))).toEqual(['dmsetup suspend bf1-o', `dmsetup create bf1-s --table 0 ${16 * 2048} snapshot /dev/vda /dev/vdb P 8`, 'dmsetup resume bf1-o']);
    expect(merge!.argvs.map((a) => a.join(' '))).toEqual([
      'dmsetup suspend bf1-s',
      'dmsetup suspend bf1-o',
      `dmsetup reload bf1-o --table 0 ${16 * 2048} snapshot-merge /dev/vda /dev/vdb P 8`,
      'dmsetup resume bf1-o',
      'dmsetup remove --retry bf1-s',
    ]);
    expect(merge!.closePrefix).toBe('/dev/mapper/bf1-s');
    expect(remove).toMatchObject({ argvs: [['dmsetup', 'remove', '--retry', 'bf1-s']], closePrefix: '/dev/mapper/bf1-s' });
  });

  it('suspend (with and without flush), resume, reload as same, linear and snapshot-origin; md-fail', () => {
    const p = plan([{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'l', kind: 'dm-linear', on: 'd' }], [
      { kind: 'dm-suspend', id: 1, target: 'l', noflush: true },
      { kind: 'dm-reload', id: 2, target: 'l', as: 'snapshot-origin' },
      { kind: 'dm-reload', id: 3, target: 'l', as: 'linear' },
      { kind: 'dm-reload', id: 4, target: 'l' },
      { kind: 'dm-resume', id: 5, target: 'l' },
      { kind: 'dm-suspend', id: 6, target: 'l' },
      { kind: 'dm-resume', id: 7, target: 'l' },
    ]);
    expect(ops(p).map((o) => (o.kind === 'exec' ? o.argvs.map((a) => a.join(' ')).join(' && ') : o.kind))).toEqual([
      'dmsetup suspend --noflush bf1-l',
      `dmsetup reload bf1-l --table 0 ${16 * 2048} snapshot-origin /dev/vda`,
      `dmsetup reload bf1-l --table 0 ${16 * 2048} linear /dev/vda 0`,
      `dmsetup reload bf1-l --table 0 ${16 * 2048} linear /dev/vda 0`,
      'dmsetup resume bf1-l',
      'dmsetup suspend bf1-l',
      'dmsetup resume bf1-l',
    ]);
    const m = plan([{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'e', kind: 'disk', size: 16 * MiB }, { id: 'm', kind: 'md', level: 1, members: ['d', 'e'] }], [
      { kind: 'md-fail', id: 1, target: 'm', member: 1 },
    ]);
    expect(ops(m)[0]).toMatchObject({ kind: 'exec', argvs: [['mdadm', '/dev/md/bf1-m', '--fail', '/dev/vdb']] });
  });
});
