/**
 * The guest image and a VM booted from it: what the image holds, the agent's
 * line protocol end to end (ping, info, runs with stdin, stdout, stderr,
 * exit codes and the kernel log), a host that reconnects, and a VM saved to
 * a file and restored into a fresh QEMU with resized disks.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestImage, GUEST_TOOLS, type GuestImage } from '../../infra/guest/index.ts';
import { writeCpio } from '../../infra/guest/cpio.ts';
import { markInUse, removeUnlessUsed, usedByOthers } from '../../infra/guest/in-use.ts';
import { runTool } from '../../infra/kernels/proc.ts';
import type { FetchedKernel } from '../../infra/kernels/index.ts';
import { buildExecutor } from '../../worker/executor/build.ts';
import { AgentChannel } from '../../worker/targets/qemu/agent-channel.ts';
import { GUEST_APPEND } from '../../worker/targets/qemu/machine.ts';
import { Vm, type VmDisk } from '../../worker/targets/qemu/vm.ts';
import { testKernel } from './helpers.ts';

let kernel: FetchedKernel;
let image: GuestImage;
const temps: string[] = [];
const vms: Vm[] = [];

beforeAll(async () => {
  kernel = await testKernel();
  image = await buildGuestImage(kernel, { executor: await buildExecutor() });
}, 300_000);

afterAll(async () => {
  for (const vm of vms) await vm.kill();
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

async function temp(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'blockfarm-guest-'));
  temps.push(d);
  return d;
}

async function disks(dir: string, specs: Array<[number, number, number]>): Promise<VmDisk[]> {
  const out: VmDisk[] = [];
  for (const [i, [size, lbs, pbs]] of specs.entries()) {
    const file = path.join(dir, `d${i}.img`);
    await writeFile(file, '');
    await truncate(file, size);
    out.push({ file, serial: `test-${i}`, logicalBlockSize: lbs, physicalBlockSize: pbs });
  }
  return out;
}

async function boot(dir: string, d: VmDisk[], incoming = false): Promise<Vm> {
  const vm = await Vm.start({
    kernel: kernel.vmlinux, initramfs: image.initramfs, append: GUEST_APPEND, memMb: 1024, smp: 2, accel: 'tcg', disks: d, dir, incoming,
    wrapper: ['setpriv', '--pdeathsig', 'KILL', '--'],
  });
  vms.push(vm);
  return vm;
}

describe('the cpio writer', () => {
  it('writes an archive cpio itself lists, with links and modes', async () => {
    const d = await temp();
    await writeFile(path.join(d, 'src'), 'hello\n');
    await writeCpio(path.join(d, 'a.cpio'), [
      { type: 'dir', path: 'usr' },
      { type: 'dir', path: 'usr/bin' },
      { type: 'file', path: 'usr/bin/x', source: path.join(d, 'src'), mode: 0o755 },
      { type: 'data', path: 'usr/y', data: Buffer.from('abc'), mode: 0o600 },
      { type: 'symlink', path: 'bin', target: 'usr/bin' },
    ]);
    const r = await runTool('sh', ['-c', `cpio -itv < '${path.join(d, 'a.cpio')}'`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^-rwxr-xr-x .* usr\/bin\/x$/m);
    expect(r.stdout).toMatch(/^-rw------- .* usr\/y$/m);
    expect(r.stdout).toMatch(/^lrwxrwxrwx .* bin -> usr\/bin$/m);
  });
});

describe('cached images and states in use', () => {
  it('are not pruned while a live process uses them; a dead user counts for nothing', async () => {
    const d = await temp();
    const used = path.join(d, 'image-a');
    await mkdir(path.join(used, '.users'), { recursive: true });
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise((r) => other.once('exit', r));
    await writeFile(path.join(used, '.users', String(other.pid)), '');
    expect(await usedByOthers(used)).toBe(true);
    expect(await removeUnlessUsed(used)).toBe(false);
    await access(used);
    // This process's own marker does not keep it from pruning.
    const mine = path.join(d, 'image-b');
    await markInUse(mine);
    expect(await usedByOthers(mine)).toBe(false);
    other.kill('SIGKILL');
    await exited;
    expect(await usedByOthers(used)).toBe(false);
    expect(await removeUnlessUsed(used)).toBe(true);
    await expect(access(used)).rejects.toThrow();
    // A new marker drops the dead ones.
    await writeFile(path.join(mine, '.users', String(other.pid)), '');
    await markInUse(mine);
    expect(await readdir(path.join(mine, '.users'))).toEqual([String(process.pid)]);
  });
});

describe('the guest image', () => {
  it('is cached: a second build with the same inputs is the same image', async () => {
    const again = await buildGuestImage(kernel, { executor: await buildExecutor() });
    expect(again.initramfs).toBe(image.initramfs);
    expect(again.key).toBe(image.key);
  });

  it('holds the agent as /init, the executor, dash as /bin/sh, the tools and a depmod-ed module subset', async () => {
    const r = await runTool('sh', ['-c', `cpio -it < '${image.initramfs}'`], { maxBuffer: 256 << 20 });
    const names = new Set(r.stdout.split('\n'));
    for (const n of ['init', 'usr/bin/blockfarm-exec', 'usr/bin/sh', 'usr/bin/dash', 'usr/sbin/dmsetup', 'usr/sbin/mdadm', 'usr/sbin/integritysetup', 'usr/sbin/mkfs.gfs2', 'etc/blockfarm/modules'])
      expect(names, n).toContain(n);
    expect(names).toContain(`usr/lib/modules/${kernel.info.id}/modules.dep.bin`);
    expect(names).not.toContain('usr/bin/busybox');
    const m = image.manifest;
    for (const mod of ['dm_crypt', 'dm_integrity', 'dm_snapshot', 'dm_flakey', 'raid0', 'raid1', 'scsi_debug', 'ext4', 'xfs', 'btrfs', 'gfs2', 'loop', 'virtio_console'])
      expect(m.modules.inImage, mod).toContain(mod);
    expect(m.tools).toEqual([...GUEST_TOOLS]);
    // Debian's 6.1 kernels are built without CONFIG_DM_DUST; the fetch builds it out of tree into updates/, and the image has it.
    const config = await readFile(kernel.config, 'utf8');
    if (!/^CONFIG_DM_DUST=[ym]$/m.test(config)) {
      expect(kernel.info.extraModules?.map((r) => r.module)).toEqual(['dm-dust']);
      expect(names).toContain(`usr/lib/modules/${kernel.info.id}/updates/dm-dust.ko`);
    }
    expect(m.modules.inImage).toContain('dm_dust');
    expect(m.modules.preload).toContain('dm_dust');
    expect(m.modules.missing).not.toContain('dm_dust');
  });
});

describe('a VM', () => {
  it('boots the vmlinux (PVH), and its agent answers: ping, info, runs, kernel log', async () => {
    const dir = await temp();
    const vm = await boot(dir, await disks(dir, [[64 << 20, 512, 512], [32 << 20, 4096, 4096]]));
    const agent = await vm.connectAgent(180_000);
    const info = await agent.info();
    expect(info.release).toBe(kernel.info.id);
    expect(info.disks.map((d) => [d.serial, d.sectors, d.lbs, d.pbs]).sort()).toEqual([
      ['test-0', (64 << 20) / 512, 512, 512],
      ['test-1', (32 << 20) / 512, 4096, 4096],
    ]);
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) rtts.push(await agent.ping(2000));
    rtts.sort((a, b) => a - b);
    expect(rtts[10]).toBeLessThan(20);

    // stdin in, stdout and stderr out, exit code; /bin/sh is dash and runs the real tools
    const r = await agent.exec(['sh', '-c', 'read x; echo "got $x"; readlink /proc/$$/exe; losetup --version; echo oops >&2; exit 7'], 'hello\n');
    expect(r.exit).toBe(7);
    expect(r.out[0]).toBe('got hello');
    expect(r.out[1]).toBe('/usr/bin/dash');
    expect(r.out[2]).toMatch(/^losetup from util-linux/);
    expect(r.err).toEqual(['oops']);

    // the modules were loaded at boot
    const mods = await agent.exec(['cat', '/proc/modules']);
    for (const m of ['dm_crypt', 'dm_integrity', 'dm_dust', 'raid1', 'ext4', 'btrfs', 'xfs', 'loop']) expect(mods.out.join('\n')).toMatch(new RegExp(`^${m} `, 'm'));
    // An out-of-tree, unsigned module taints the kernel (O = 4096, E = 8192) from boot on; it stays usable.
    if (kernel.info.extraModules?.length) expect(Number((await agent.exec(['cat', '/proc/sys/kernel/tainted'])).out[0]) & 0x3000).toBe(0x3000);

    // a run's kernel log records come back with it, in kmsg format
    const k = await agent.exec(['sh', '-c', 'echo "<4>blockfarm-test: marker" > /dev/kmsg'], '', { kmsg: true });
    expect(k.kmsg.filter((l) => /^\d+,\d+,\d+,[^;]*;blockfarm-test: marker$/.test(l)), JSON.stringify(k.kmsg)).toHaveLength(1);

    // a program that does not exist: exit 127 with the reason
    const missing = await agent.exec(['no-such-tool']);
    expect(missing.exit).toBe(127);
    expect(missing.err.join(' ')).toMatch(/cannot run no-such-tool/);

    // a host that goes away and comes back finds the agent again
    agent.close();
    const again = await AgentChannel.connect(path.join(dir, 'agent.sock'));
    await again.ping(20_000);
    again.close();
    await vm.kill();
  }, 300_000);

  it('saved to a file and restored into a fresh QEMU, continues with new, resized disks', async () => {
    const dir = await temp();
    const vm = await boot(dir, await disks(dir, [[1 << 30, 512, 4096]]));
    const agent = await vm.connectAgent(180_000);
    const pid = (await agent.exec(['sh', '-c', 'echo $PPID'])).out[0];
    agent.close();
    await vm.save(path.join(dir, 'state.mig'));
    await vm.kill();

    const dir2 = await temp();
    const t0 = performance.now();
    const vm2 = await boot(dir2, await disks(dir2, [[1 << 30, 512, 4096]]), true);
    await vm2.restore(path.join(dir, 'state.mig'));
    await vm2.resizeDisk(0, 48 << 20);
    await vm2.cont();
    const a2 = await vm2.connectAgent(30_000);
    let info = await a2.info();
    while (info.disks[0]!.sectors !== (48 << 20) / 512) info = await a2.info();
    const readyMs = performance.now() - t0;
    expect(readyMs).toBeLessThan(5000);
    expect(info.disks[0]).toMatchObject({ lbs: 512, pbs: 4096 });
    // the same guest answers: the agent (PID 1) is the shell's parent, as before
    expect((await a2.exec(['sh', '-c', 'echo $PPID'])).out[0]).toBe(pid);
    await vm2.kill();
  }, 300_000);
});
