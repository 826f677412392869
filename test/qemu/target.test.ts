/**
 * The qemu target end to end on a real kernel: registration and
 * requirements, a case per fresh VM restored from a saved state (and no
 * state left over from the previous case), fault injection the model is not
 * told about caught as a divergence, crash and hang detection, and a VM that
 * does not come up reported as an infrastructure error, never a finding.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../infra/guest/build.ts';
import { writeCpio } from '../../infra/guest/cpio.ts';
import type { ExecPlan, PlanOp } from '../../worker/executor/protocol.ts';
import { runCase } from '../../worker/run-case.ts';
import { factoryFor } from '../../worker/targets/registry.ts';
import { createQemuTarget, kernelFor, prepareQemu } from '../../worker/targets/qemu/factory.ts';
import type { QemuTarget, QemuTargetOptions } from '../../worker/targets/qemu/qemu-target.ts';
import { QemuTarget as QemuTargetClass } from '../../worker/targets/qemu/qemu-target.ts';
import { VmFactory } from '../../worker/targets/qemu/states.ts';
import { TargetRefused } from '../../worker/targets/target.ts';
import { type LayerInput, MiB, diskCase, read, stackCase, write } from '../helpers/cases.ts';
import { loadSeedCases } from '../../corpus/seeds.ts';
import { validateCase } from '../../model/index.ts';
import { checkSeedOutcome, testKernel } from './helpers.ts';

const targets: QemuTarget[] = [];
const temps: string[] = [];

async function target(opts: Partial<QemuTargetOptions> = {}): Promise<QemuTarget> {
  const k = await testKernel();
  const t = await createQemuTarget(`qemu:${k.info.id}`, opts);
  targets.push(t);
  return t;
}

afterAll(async () => {
  for (const t of targets) await t.close();
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

beforeAll(async () => {
  await testKernel();
}, 300_000);

/** An exec op prepended to the first thread (a test-only plan hook). */
function prepend(plan: ExecPlan, op: PlanOp): ExecPlan {
  return { ...plan, threads: [[op, ...(plan.threads[0] ?? [])], ...plan.threads.slice(1)] };
}

describe('the qemu target', () => {
  it('is registered as qemu and qemu:ID, and reports what it needs', async () => {
    const k = await testKernel();
    expect(factoryFor('qemu')).toBeDefined();
    expect(factoryFor(`qemu:${k.info.id}`)).toBe(factoryFor('qemu'));
    const checks = await factoryFor('qemu')!.requirements();
    const byWhat = new Map(checks.map((c) => [c.what, c]));
    expect(byWhat.get('qemu-system-x86_64')?.status).toBe('ok');
    expect(byWhat.get('fetched kernels')?.detail).toContain(k.info.id);
    await expect(kernelFor('qemu:latest')).rejects.toThrow(TargetRefused);
    await expect(kernelFor('qemu:6.1.0-1-amd64')).rejects.toThrow(/not fetched: run 'blockfarm kernels fetch 6\.1\.0-1-amd64'/);
    expect((await kernelFor('qemu')).info.id).toBe((await kernelFor(`qemu:${k.info.id}`)).info.id);
  });

  it('runs each case in a fresh VM restored from a saved state when VMs are not reused: nothing of the previous case is left', async () => {
    const leftovers: string[][] = [];
    const t = await target({
      maxCasesPerVm: 1,
      vmHookForTests: async (cvm) => {
        // What the guest holds before the case runs, then a marker file of this case.
        const r = await cvm.vm.agent!.exec(['sh', '-c', `dmsetup ls; losetup -a; grep -c " /tmp/bf" /proc/mounts; ls -A /tmp; touch /tmp/marker-${leftovers.length}`]);
        leftovers.push(r.out);
      },
    });
    // Case 1 leaves data on its disk, a loop device, a mount and files; case 2 reads the disk.
    const first = stackCase(
      [
        { id: 'd', kind: 'disk', size: 64 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f', size: 4 * MiB },
        { id: 'g', kind: 'file', on: 'fs', name: 'g' },
        { id: 'l', kind: 'loop', on: 'f' },
      ],
      [write(1, 'l', 0, 65536), write(2, 'g', 1 * MiB, 8192)],
    );
    const o1 = await runCase(t, first.c, first.info);
    expect(o1.kind, JSON.stringify(o1)).toBe('pass');
    expect(t.lastStats?.how).toMatch(/^(spare|restore)$/);
    const firstPid = t.lastStats?.vmPid;
    const second = diskCase([read(1, 'd', 0, 2 * MiB)], { size: 64 * MiB });
    const o2 = await runCase(t, second.c, second.info);
    expect(o2.kind, JSON.stringify(o2)).toBe('pass'); // all zeros: the model's fresh disk
    expect(['spare', 'restore']).toContain(t.lastStats?.how);
    expect(t.lastStats!.readyMs).toBeLessThan(5000);
    expect(t.lastStats?.vmPid).not.toBe(firstPid);
    expect(t.vmsUsed).toBe(2);
    // Both VMs start from the saved state: none of case 1's devices, mounts, directories or marker file.
    expect(leftovers).toEqual([
      ['No devices found', '0'],
      ['No devices found', '0'],
    ]);
  }, 300_000);

  it('reuses the VM after a clean case: the next case sees zeroed disks and no device, mount or file of the previous one; the cap ends it', async () => {
    const leftovers: string[][] = [];
    const t = await target({
      maxCasesPerVm: 3,
      vmHookForTests: async (cvm) => {
        const r = await cvm.vm.agent!.exec(['sh', '-c', 'dmsetup ls; losetup -a; grep -c " /tmp/bf" /proc/mounts; ls -A /tmp']);
        leftovers.push(r.out);
      },
    });
    // Case 1 writes a pattern over both disks (directly and through an ext4 file on a loop device), leaving devices and mounts to tear down.
    const first = stackCase(
      [
        { id: 'd', kind: 'disk', size: 64 * MiB },
        { id: 'e', kind: 'disk', size: 16 * MiB },
        { id: 'lin', kind: 'dm-linear', on: 'e' },
        { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f', size: 4 * MiB },
        { id: 'l', kind: 'loop', on: 'f' },
      ],
      [write(1, 'l', 0, 65536), write(2, 'lin', 0, 2 * MiB, { direct: true }), write(3, 'lin', 8 * MiB, 1 * MiB)],
    );
    const o1 = await runCase(t, first.c, first.info);
    expect(o1.kind, JSON.stringify(o1).slice(0, 500)).toBe('pass');
    const pid = t.lastStats?.vmPid;
    expect(t.lastStats?.caseInVm).toBe(1);
    // Case 2, same geometry, other sizes: reads both disks where case 1 wrote; the model says zeroes.
    const second = stackCase(
      [{ id: 'd', kind: 'disk', size: 32 * MiB }, { id: 'e', kind: 'disk', size: 16 * MiB }],
      [read(1, 'd', 0, 2 * MiB), read(2, 'e', 0, 2 * MiB)], // the final read-back covers both disks whole
    );
    const o2 = await runCase(t, second.c, second.info);
    expect(o2.kind, JSON.stringify(o2).slice(0, 500)).toBe('pass');
    expect(t.lastStats).toMatchObject({ how: 'reused', vmPid: pid, caseInVm: 2 });
    const o3 = await runCase(t, first.c, first.info);
    expect(o3.kind, JSON.stringify(o3).slice(0, 500)).toBe('pass');
    expect(t.lastStats).toMatchObject({ how: 'reused', vmPid: pid, caseInVm: 3 });
    // The cap (3): a fresh VM.
    const o4 = await runCase(t, second.c, second.info);
    expect(o4.kind, JSON.stringify(o4).slice(0, 500)).toBe('pass');
    expect(t.lastStats?.how).toMatch(/^(spare|restore)$/);
    expect(t.lastStats?.vmPid).not.toBe(pid);
    expect(t.vmsUsed).toBe(2);
    expect(leftovers).toEqual([['No devices found', '0'], ['No devices found', '0'], ['No devices found', '0'], ['No devices found', '0']]);
  }, 300_000);

  it('runs the next program on the same stack when that is safe: disks zeroed and caches emptied between; another stack tears it down', async () => {
    const seen: string[][] = [];
    const t = await target({
      maxCasesPerVm: 8,
      vmHookForTests: async (cvm) => {
        const r = await cvm.vm.agent!.exec(['dmsetup', 'ls']);
        // Names without their run prefix (bfN-), sorted; 'No devices found' when none.
        seen.push(r.out.filter((l) => l.startsWith('bf')).map((l) => l.split(/\s/)[0]!.replace(/^bf\d+-/, '')).sort());
      },
    });
    const layers: LayerInput[] = [
      { id: 'd', kind: 'disk', size: 16 * MiB },
      { id: 'e', kind: 'disk', size: 16 * MiB },
      { id: 'lin', kind: 'dm-linear', on: 'd', offset: MiB },
      { id: 'c', kind: 'dm-crypt', on: 'e' },
    ];
    // Program 1 leaves data everywhere and the page cache of 'lin' full of it (buffered writes and a read).
    const p1 = stackCase(layers, [write(1, 'lin', 0, 2 * MiB), write(2, 'lin', 4 * MiB, 256 * 1024, { direct: true }), write(3, 'c', 0, MiB), read(4, 'lin', 0, 2 * MiB)]);
    // Program 2, same stack: buffered reads where program 1 wrote; the model says zeroes on 'lin' (a stale cache or an unzeroed disk diverges).
    const p2 = stackCase(layers, [read(11, 'lin', 0, 2 * MiB), read(12, 'lin', 4 * MiB, 256 * 1024, { direct: true }), write(13, 'lin', 8 * MiB, 64 * 1024), read(14, 'c', 0, MiB)]);
    for (const [i, b] of [p1, p2, p2, p1].entries()) {
      const o = await runCase(t, b.c, b.info);
      expect(o.kind, `program ${i + 1}: ${JSON.stringify(o).slice(0, 600)}`).toBe('pass');
      expect(t.lastStats, `program ${i + 1}; VMs not kept because: ${t.discarded.join("; ")}`).toMatchObject({ caseInVm: i + 1, stackReused: i > 0 });
    }
    expect(t.stacksReused).toBe(3);
    // A plain disk case: the kept stack is torn down first, and the VM checked as after any case.
    const plain = stackCase(layers.slice(0, 2), [read(1, 'd', 0, 2 * MiB), read(2, 'e', 0, MiB)]);
    const o = await runCase(t, plain.c, plain.info);
    expect(o.kind, JSON.stringify(o).slice(0, 600)).toBe('pass');
    expect(t.lastStats).toMatchObject({ caseInVm: 5, stackReused: false, how: 'reused' });
    // Before program 1 nothing stands; before 2-4 the stack does (nothing was set up again); before the plain case it is gone.
    expect(seen).toEqual([[], ['c', 'lin'], ['c', 'lin'], ['c', 'lin'], []]);
    // A stack the model cannot promise a reset for (wiped crypt: zeroes written at set-up) is built afresh each time.
    const wiped = stackCase([{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'c', kind: 'dm-crypt', on: 'd', wipe: true }], [read(1, 'c', 0, MiB)]);
    for (let i = 0; i < 2; i++) {
      const w = await runCase(t, wiped.c, wiped.info);
      expect(w.kind, JSON.stringify(w).slice(0, 600)).toBe('pass');
      expect(t.lastStats?.stackReused).toBe(false);
    }
  }, 300_000);

  it('a divergence with a kernel log finding (S1 on 6.1: I/O errors on the loop device) ends the VM: the next case gets a fresh one', async () => {
    const k = await testKernel();
    const seed = loadSeedCases().find((s) => s.file.includes('s1-loop-dio-ext4-lbs512'))!;
    const v = validateCase(seed.caseJson);
    if (!v.ok) throw new Error('seed invalid');
    const t = await target({ maxCasesPerVm: 8 });
    const o = await runCase(t, v.value, v.info);
    checkSeedOutcome('s1-loop-dio-ext4-lbs512', v.value, k.info.id, o);
    const pid = t.lastStats?.vmPid;
    // Same geometry (one 4096-byte-sector disk).
    const next = stackCase([{ id: 'd', kind: 'disk', size: 16 * MiB, logicalBlockSize: 4096 }], [write(1, 'd', 0, 8192, { direct: true }), read(2, 'd', 0, 8192, { direct: true })]);
    const o2 = await runCase(t, next.c, next.info);
    expect(o2.kind, JSON.stringify(o2).slice(0, 500)).toBe('pass');
    if (o.kind === 'divergence' && o.divergences.some((d) => d.class === 'kernel-log')) {
      expect(t.lastStats?.how).toMatch(/^(spare|restore)$/);
      expect(t.lastStats?.vmPid).not.toBe(pid);
    } else {
      // A kernel without S1's bug: the seed passes cleanly and its VM runs the next case.
      expect(t.lastStats).toMatchObject({ how: 'reused', vmPid: pid, caseInVm: 2 });
    }
  }, 300_000);

  it('catches a fault the model is not told about: a dm-linear swapped for dm-flakey dropping writes', async () => {
    const b = stackCase(
      [{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'lin', kind: 'dm-linear', on: 'd' }],
      [write(1, 'lin', 0, 8192, { direct: true }), { kind: 'drop-caches', id: 2 }, read(3, 'lin', 0, 8192, { direct: true })],
    );
    const honest = await target();
    expect((await runCase(honest, b.c, b.info)).kind).toBe('pass');
    const lying = await target({
      planHookForTests: (plan) => ({
        ...plan,
        setup: plan.setup.map((s) =>
          s.argv[0] === 'dmsetup' && s.argv[1] === 'create'
            ? { ...s, argv: s.argv.map((a) => a.replace(/ linear (\S+) 0$/, ' flakey $1 0 0 60 1 drop_writes')) }
            : s,
        ),
      }),
    });
    const o = await runCase(lying, b.c, b.info);
    expect(o.kind, JSON.stringify(o)).toBe('divergence');
    if (o.kind !== 'divergence') return;
    expect(o.divergences.some((d) => d.op === 3 && d.class === 'wrong-data')).toBe(true);
  }, 300_000);

  it('a guest that panics mid-case is a crash with the console log, and the next case gets a new VM', async () => {
    let cases = 0;
    const t = await target({
      // A test-only op that panics the guest, in the first case only.
      planHookForTests: (plan) => (cases++ === 0 ? prepend(plan, { id: 900, kind: 'exec', argvs: [['sh', '-c', 'echo c > /proc/sysrq-trigger']] }) : plan),
    });
    const b = diskCase([write(1, 'd', 0, 4096), read(2, 'd', 0, 4096)]);
    const o = await runCase(t, b.c, b.info);
    expect(o.kind, JSON.stringify(o).slice(0, 500)).toBe('crash');
    if (o.kind !== 'crash') return;
    expect(o.title).toBe('kernel panic: sysrq triggered crash');
    expect(o.log).toMatch(/Kernel panic - not syncing: sysrq triggered crash/);
    expect(o.log).toMatch(/Call Trace:/);
    const crashedPid = t.lastStats?.vmPid;
    // The same target goes on with a VM of its own.
    const next = await runCase(t, b.c, b.info);
    expect(next.kind, JSON.stringify(next).slice(0, 500)).toBe('pass');
    expect(t.lastStats?.how).toMatch(/^(spare|restore)$/);
    expect(t.lastStats?.vmPid).not.toBe(crashedPid);
    expect(t.vmsUsed).toBe(2);
  }, 300_000);

  it('a task the kernel reports hung is a hang with that report; the next case gets a new VM', async () => {
    // Lower the kernel's hung-task limit to 2 s, suspend the device, write to its page cache and fsync: the fsync waits
    // for writeback in D state. (A direct write would not do: submit_bio_wait wakes up every half hung-task period.)
    let cases = 0;
    const t = await target({
      opTimeoutMs: 120_000,
      planHookForTests: (plan) => {
        if (cases++ > 0) return plan;
        const dev = plan.setup.find((s) => s.argv[1] === 'create')!.argv[2]!;
        return prepend(plan, { id: 900, kind: 'exec', argvs: [['sh', '-c', 'echo 2 > /proc/sys/kernel/hung_task_timeout_secs'], ['dmsetup', 'suspend', dev]] });
      },
    });
    const b = stackCase([{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'lin', kind: 'dm-linear', on: 'd' }], [write(1, 'lin', 0, 4096), { kind: 'fsync', id: 2, target: 'lin' }]);
    const t0 = performance.now();
    const o = await runCase(t, b.c, b.info);
    expect(o.kind, JSON.stringify(o).slice(0, 500)).toBe('hang');
    if (o.kind !== 'hang') return;
    expect(o.title).toMatch(/^INFO: task hung/);
    expect(o.log).toMatch(/INFO: task blockfarm-exec:\d+ blocked for more than 2 seconds\./);
    // The console's report ended the case, long before the executor's own op timeout.
    expect(performance.now() - t0).toBeLessThan(90_000);
    const hungPid = t.lastStats?.vmPid;
    const next = await runCase(t, b.c, b.info);
    expect(next.kind, JSON.stringify(next).slice(0, 500)).toBe('pass');
    expect(t.lastStats?.how).toMatch(/^(spare|restore)$/);
    expect(t.lastStats?.vmPid).not.toBe(hungPid);
  }, 300_000);

  it('an op that never completes is a hang (executor op timeout), with the blocked tasks', async () => {
    // Suspend the device, then write to it: the write waits in the kernel until resumed, which never happens.
    const t = await target({
      opTimeoutMs: 4000,
      hangGraceMs: 4000,
      planHookForTests: (plan) => {
        const dev = plan.setup.find((s) => s.argv[1] === 'create')!.argv[2]!;
        return prepend(plan, { id: 900, kind: 'exec', argvs: [['dmsetup', 'suspend', dev]] });
      },
    });
    const b = stackCase([{ id: 'd', kind: 'disk', size: 16 * MiB }, { id: 'lin', kind: 'dm-linear', on: 'd' }], [write(1, 'lin', 0, 4096, { direct: true })]);
    const o = await runCase(t, b.c, b.info);
    expect(o.kind, JSON.stringify(o).slice(0, 500)).toBe('hang');
    if (o.kind !== 'hang') return;
    expect(o.title).toMatch(/^hang: op 1 did not complete/);
    expect(o.log).toMatch(/blockfarm-exec/); // sysrq-w lists the blocked executor thread
  }, 300_000);

  it('an agent that stops answering mid-case is a hang, and the next case gets a new VM', async () => {
    let cases = 0;
    const t = await target({ agentSilenceMs: 3000, pingEveryMs: 500, vmHookForTests: (cvm) => (cases++ === 0 ? cvm.vm.agent!.stall() : undefined) });
    const b = diskCase([write(1, 'd', 0, 4096)]);
    const o = await runCase(t, b.c, b.info);
    expect(o.kind).toBe('hang');
    if (o.kind === 'hang') expect(o.title).toMatch(/the guest agent stopped answering/);
    expect((await runCase(t, b.c, b.info)).kind).toBe('pass');
  }, 300_000);

  it('gives each case virtio disks of its own logical/physical sector sizes, from a state kept per geometry', async () => {
    const k = await testKernel();
    const { cfg, factory } = await prepareQemu({ kernel: k });
    const seen: string[] = [];
    const t = new QemuTargetClass({
      kernel: k, image: cfg.image, factory,
      vmHookForTests: async (cvm) => {
        const info = await cvm.vm.agent!.info();
        const bySlot = cvm.devices.map((dev) => info.disks.find((d) => `/dev/${d.name}` === dev)!);
        seen.push(bySlot.map((d) => `${d.lbs}/${d.pbs}:${d.sectors * 512}`).join(' '));
      },
    });
    targets.push(t);
    const disk = (id: string, lbs: 512 | 4096, pbs: 512 | 4096, size = 16 * MiB) => ({ id, kind: 'disk' as const, size, logicalBlockSize: lbs, physicalBlockSize: pbs });
    for (const layers of [
      [disk('d', 512, 4096)],
      [disk('d', 4096, 4096, 32 * MiB)],
      [disk('d', 512, 512), disk('e', 4096, 4096, 8 * MiB)],
    ]) {
      const b = stackCase(layers, [write(1, 'd', 0, 8192, { direct: true }), read(2, 'd', 0, 8192, { direct: true })]);
      const o = await runCase(t, b.c, b.info);
      expect(o.kind, JSON.stringify(o).slice(0, 500)).toBe('pass');
    }
    // Spare slots repeat the first disk's geometry; sizes are the case's.
    expect(seen.map((s) => s.split(' ').slice(0, 2).join(' '))).toEqual([
      `512/4096:${16 * MiB} 512/4096:${1 << 30}`,
      `4096/4096:${32 * MiB} 4096/4096:${1 << 30}`,
      `512/512:${16 * MiB} 4096/4096:${8 * MiB}`,
    ]);
    const states = await Promise.all([
      factory.state([{ logicalBlockSize: 512, physicalBlockSize: 4096 }]),
      factory.state([{ logicalBlockSize: 4096, physicalBlockSize: 4096 }]),
      factory.state([{ logicalBlockSize: 512, physicalBlockSize: 512 }, { logicalBlockSize: 4096, physicalBlockSize: 4096 }]),
    ]);
    expect(new Set(states.map((s) => s.key)).size).toBe(3);
    for (const s of states) expect(path.basename(s.dir)).toContain(`${k.info.id}-${cfg.image.key}-${s.key}`);
  }, 300_000);

  it('boots the bzImage when the vmlinux does not boot and restores from that state; a state that does not restore falls back to a cold boot', async () => {
    const k = await testKernel();
    const { cfg } = await prepareQemu({ kernel: k });
    const dir = await mkdtemp(path.join(tmpdir(), 'blockfarm-qemu-bz-'));
    temps.push(dir);
    await writeFile(path.join(dir, 'not-a-kernel'), Buffer.alloc(4096, 0x5a));
    const factory = new VmFactory({ ...cfg, root: dir, kernel: { ...k, vmlinux: path.join(dir, 'not-a-kernel') } });
    // A fresh VM per case: the second case must restore (and fall back), not run in the first case's VM.
    const t = new QemuTargetClass({ kernel: k, image: cfg.image, factory, spare: false, maxCasesPerVm: 1 });
    targets.push(t);
    const b = diskCase([write(1, 'd', 0, 4096), read(2, 'd', 0, 4096)]);
    const o = await runCase(t, b.c, b.info);
    expect(o.kind, JSON.stringify(o).slice(0, 500)).toBe('pass');
    expect(t.lastStats?.how).toBe('restore');
    const state = await factory.state([{ logicalBlockSize: 512, physicalBlockSize: 512 }]);
    expect(state.kernelImage).toBe('bzImage');
    // A state that no longer restores: the case still runs, on a cold-booted VM.
    await writeFile(state.stateFile, 'not a migration stream');
    const again = await runCase(t, b.c, b.info);
    expect(again.kind, JSON.stringify(again).slice(0, 500)).toBe('pass');
    expect(t.lastStats?.how).toBe('cold-boot');
  }, 300_000);

  it('a VM that does not boot, or whose agent never answers, is an infrastructure error', async () => {
    const k = await testKernel();
    const { cfg } = await prepareQemu({ kernel: k });
    const dir = await mkdtemp(path.join(tmpdir(), 'blockfarm-qemu-bad-'));
    temps.push(dir);
    const b = diskCase([write(1, 'd', 0, 4096)]);

    // Not a kernel at all (neither file QEMU could boot; two files, so that both are tried).
    const garbage = [path.join(dir, 'not-a-vmlinux'), path.join(dir, 'not-a-bzimage')];
    for (const g of garbage) await writeFile(g, Buffer.alloc(4096, 0x5a));
    const badKernel = new VmFactory({ ...cfg, root: path.join(dir, 'a'), kernel: { ...k, vmlinux: garbage[0]!, bzImage: garbage[1]! } });
    const t1 = new QemuTargetClass({ kernel: k, image: cfg.image, factory: badKernel });
    targets.push(t1);
    const o1 = await runCase(t1, b.c, b.info);
    expect(o1.kind).toBe('infra-error');
    if (o1.kind === 'infra-error') expect(o1.message).toMatch(/vmlinux: QEMU .*bzImage: QEMU/);

    // A guest whose init never serves the port (an image with the agent but no virtio modules).
    const lonely = path.join(dir, 'lonely.cpio');
    await writeCpio(lonely, [{ type: 'file', path: 'init', source: await buildAgent(), mode: 0o755 }]);
    const silent = new VmFactory({ ...cfg, root: path.join(dir, 'b'), bootTimeoutMs: 8000, image: { ...cfg.image, initramfs: lonely } });
    const t2 = new QemuTargetClass({ kernel: k, image: cfg.image, factory: silent });
    targets.push(t2);
    const o2 = await runCase(t2, b.c, b.info);
    expect(o2.kind).toBe('infra-error');
    if (o2.kind === 'infra-error') expect(o2.message).toMatch(/did not answer/);
    expect(badKernel.livePids()).toEqual([]);
    expect(silent.livePids()).toEqual([]);
  }, 300_000);
});
