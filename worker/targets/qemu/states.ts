/**
 * Prepared guest states and the VMs made from them.
 *
 * A VM's device set is fixed by the state it was saved in, so states are
 * keyed by kernel, guest image, VM shape and the disks' geometry: one
 * virtio disk per slot, each with its logical/physical block size (a case's
 * disks fill the slots in order; at least DISK_SLOTS slots, the spare ones
 * repeat the first geometry, so the common cases share the three states
 * 512/512, 512/4096 and 4096/4096). A state is made once by a cold boot
 * (kernel, agent, every module loaded), saved by migrating to a file, and
 * kept under <cache>/qemu/states/ for later processes.
 *
 * A VM for a case is a fresh QEMU started paused with `-incoming defer`,
 * fed the state file, given new sparse disk files, its disks resized to the
 * case's sizes (block_resize; the guest sees the capacity change), then
 * continued. Restoring can happen ahead of time (a spare VM waits paused),
 * so a case only pays for resize + cont + the agent's first answer. A cold
 * boot with the case's own disk sizes is the fallback when a state cannot
 * be made or restored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import path from 'node:path';
import type { GuestImage } from '../../../infra/guest/build.ts';
import { markInUse, processAlive, removeUnlessUsed } from '../../../infra/guest/in-use.ts';
import type { FetchedKernel } from '../../../infra/kernels/store.ts';
import type { AgentInfo } from './agent-channel.ts';
import { type Accel, Vm, type VmDisk, VmError } from './vm.ts';

export interface DiskGeometry {
  logicalBlockSize: number;
  physicalBlockSize: number;
}

export const DISK_SLOTS = 4;
/** Size of a slot's disk in a saved state (cases resize their own). */
export const BASE_DISK_BYTES = 1 << 30;

export interface GuestConfig {
  kernel: FetchedKernel;
  image: GuestImage;
  accel: Accel;
  memMb: number;
  smp: number;
  append: string;
  qemuVersion: string;
  wrapper: readonly string[];
  /** Where states and VM directories live. */
  root: string;
  /** The agent's first answer after a cold boot (modules load first). */
  bootTimeoutMs: number;
  /** The agent's first answer after a restore. */
  restoreTimeoutMs: number;
}

/** Which file of the kernel QEMU boots: the ELF vmlinux (PVH, fast), or the bzImage (some kernels only boot that way). */
export type KernelImage = 'vmlinux' | 'bzImage';

export interface PreparedState {
  key: string;
  /** The kernel file the saved guest was booted from (a restore must name the same). */
  kernelImage?: KernelImage;
  /** The guest's RAM at the save, mapped copy-on-write by every VM restored from it (the state file then holds only device state). */
  ramFile?: string;
  dir: string;
  stateFile: string;
  slots: DiskGeometry[];
  /** Guest device name of each slot ('vda', ...). */
  devices: string[];
  /** Cold boot to a ready agent, when the state was made. */
  bootMs: number;
}

/** A running VM ready for one case. */
export interface CaseVm {
  vm: Vm;
  dir: string;
  /** Guest device node of each slot ('/dev/vda', ...). */
  devices: string[];
  /** How it got ready and how long that took from the request. */
  how: 'spare' | 'restore' | 'cold-boot';
  /** The state key of its slots' geometry (a VM is only ever reused for cases of the same key). */
  key: string;
  readyMs: number;
}

export function slotsFor(disks: readonly DiskGeometry[]): DiskGeometry[] {
  const first = disks[0] ?? { logicalBlockSize: 512, physicalBlockSize: 512 };
  const out = disks.map((d) => ({ logicalBlockSize: d.logicalBlockSize, physicalBlockSize: d.physicalBlockSize }));
  while (out.length < DISK_SLOTS) out.push({ ...first });
  return out;
}

const serialOf = (i: number) => `bf-slot${i}`;

/** Set a VM's scheduling priority (raising it back needs root, which the farm's workers are). */
function renice(vm: Vm, nice: number): void {
  if (vm.pid === undefined) return;
  try {
    setPriority(vm.pid, nice);
  } catch {
    // not allowed: it keeps its priority
  }
}

/** Map slots to guest device names from the agent's INFO, or undefined when some are missing. */
function devicesOf(info: AgentInfo, n: number): string[] | undefined {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = info.disks.find((x) => x.serial === serialOf(i));
    if (!d) return undefined;
    out.push(d.name);
  }
  return out;
}

export class VmFactory {
  private readonly states = new Map<string, Promise<PreparedState>>();
  private readonly spares = new Map<string, Promise<{ vm: Vm; dir: string; files: string[] } | undefined>>();
  private readonly live = new Set<Vm>();
  private seq = 0;
  readonly runDir: string;

  constructor(readonly cfg: GuestConfig) {
    this.runDir = path.join(cfg.root, 'run', `${process.pid}-${randomBytes(3).toString('hex')}`);
    void pruneRunDirs(path.join(cfg.root, 'run'));
  }

  keyOf(slots: readonly DiskGeometry[]): string {
    const c = this.cfg;
    return createHash('sha256')
      .update(JSON.stringify({ v: 2, kernel: c.kernel.info.id, deb: c.kernel.info.debSha256, image: c.image.key, accel: c.accel, mem: c.memMb, smp: c.smp, append: c.append, qemu: c.qemuVersion, slots, base: BASE_DISK_BYTES }))
      .digest('hex')
      .slice(0, 16);
  }

  private async newDir(tag: string): Promise<string> {
    const dir = path.join(this.runDir, `${tag}-${++this.seq}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  private async diskFiles(dir: string, slots: readonly DiskGeometry[], sizes: readonly number[]): Promise<VmDisk[]> {
    const disks: VmDisk[] = [];
    for (let i = 0; i < slots.length; i++) {
      const file = path.join(dir, `disk${i}.img`);
      await writeFile(file, '');
      await truncate(file, sizes[i] ?? BASE_DISK_BYTES);
      disks.push({ file, serial: serialOf(i), ...slots[i]! });
    }
    return disks;
  }

  private vmOptions(dir: string, disks: VmDisk[], incoming: boolean, image: KernelImage, ramFile?: { path: string; shared: boolean }) {
    const c = this.cfg;
    const kernel = image === 'bzImage' ? c.kernel.bzImage : c.kernel.vmlinux;
    return { kernel, initramfs: c.image.initramfs, append: c.append, memMb: c.memMb, smp: c.smp, accel: c.accel, disks, dir, incoming, wrapper: c.wrapper, ramFile };
  }

  /** The files to try booting, in order: the one that worked last, else vmlinux then the bzImage. */
  private bootOrder(): KernelImage[] {
    const forced = process.env.BLOCKFARM_QEMU_BOOT;
    if (forced === 'bzimage') return ['bzImage'];
    if (forced === 'vmlinux') return ['vmlinux'];
    // An own kernel given only as a bzImage: both names are the same file.
    if (this.cfg.kernel.vmlinux === this.cfg.kernel.bzImage) return ['bzImage'];
    return this.bootImage === 'bzImage' ? ['bzImage', 'vmlinux'] : ['vmlinux', 'bzImage'];
  }

  private bootImage?: KernelImage;

  private track(vm: Vm): Vm {
    this.live.add(vm);
    void vm.exited.then(() => this.live.delete(vm));
    return vm;
  }

  /**
   * Boot a VM from the kernel (its vmlinux directly, falling back to the
   * bzImage); resolves when its agent answers and every slot's disk is visible.
   */
  async coldBoot(
    slots: readonly DiskGeometry[],
    sizes: readonly number[],
    tag = 'boot',
    ramFile?: string,
  ): Promise<{ vm: Vm; dir: string; devices: string[]; bootMs: number; image: KernelImage }> {
    const errors: string[] = [];
    for (const image of this.bootOrder()) {
      try {
        const b = await this.bootOnce(slots, sizes, tag, image, ramFile);
        this.bootImage = image;
        return b;
      } catch (err) {
        errors.push(`${image}: ${(err as Error).message}`);
      }
    }
    throw new VmError(errors.join('; '));
  }

  private async bootOnce(
    slots: readonly DiskGeometry[],
    sizes: readonly number[],
    tag: string,
    image: KernelImage,
    ramFile?: string,
  ): Promise<{ vm: Vm; dir: string; devices: string[]; bootMs: number; image: KernelImage }> {
    const dir = await this.newDir(tag);
    const t0 = performance.now();
    let vm: Vm;
    try {
      if (ramFile) await rm(ramFile, { force: true });
      vm = this.track(await Vm.start(this.vmOptions(dir, await this.diskFiles(dir, slots, sizes), false, image, ramFile ? { path: ramFile, shared: true } : undefined)));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    try {
      const agent = await vm.connectAgent(this.cfg.bootTimeoutMs);
      let info = await agent.info();
      for (let i = 0; i < 200 && !devicesOf(info, slots.length); i++) {
        await new Promise((r) => setTimeout(r, 20));
        info = await agent.info();
      }
      const devices = devicesOf(info, slots.length);
      if (!devices) throw new VmError(`the guest shows disks ${JSON.stringify(info.disks.map((d) => d.serial))}, not the ${slots.length} slots`);
      return { vm, dir, devices, bootMs: Math.round(performance.now() - t0), image };
    } catch (err) {
      await vm.kill();
      await rm(dir, { recursive: true, force: true });
      const tail = vm.console.text().trim().split('\n').slice(-5).join(' | ');
      throw new VmError(`the guest did not come up: ${(err as Error).message}${tail ? `; console: ${tail}` : ''}`);
    }
  }

  /** The saved state for disks of these geometries (padded to the slots), made now by a cold boot when there is none. */
  state(geoms: readonly DiskGeometry[]): Promise<PreparedState> {
    const slots = slotsFor(geoms);
    const key = this.keyOf(slots);
    let p = this.states.get(key);
    if (!p) {
      p = this.loadOrMake(key, slots);
      this.states.set(key, p);
      p.catch(() => this.states.delete(key));
    }
    return p;
  }

  private async loadState(dir: string, key: string): Promise<PreparedState | undefined> {
    try {
      const s = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as PreparedState;
      if (s.key === key) return { ...s, dir, stateFile: path.join(dir, 'state.mig'), ramFile: s.ramFile ? path.join(dir, 'ram') : undefined };
    } catch {
      // none, or broken
    }
    return undefined;
  }

  private async loadOrMake(key: string, slots: readonly DiskGeometry[]): Promise<PreparedState> {
    const statesDir = path.join(this.cfg.root, 'states');
    const prefix = `${this.cfg.kernel.info.id}-${this.cfg.image.key}-`;
    const dir = path.join(statesDir, `${prefix}${key}`);
    const have = await this.loadState(dir, key);
    if (have) {
      await markInUse(dir);
      return have;
    }
    // States of this kernel made from older guest images are of no use any more, unless a live
    // process still restores VMs from one. So are half-made ones of processes that are gone.
    for (const name of await readdir(statesDir).catch(() => [] as string[])) {
      const tmpOf = /\.tmp-(\d+)-/.exec(name);
      if (tmpOf) {
        if (!processAlive(Number(tmpOf[1]))) await rm(path.join(statesDir, name), { recursive: true, force: true });
      } else if (name.startsWith(`${this.cfg.kernel.info.id}-`) && !name.startsWith(prefix)) await removeUnlessUsed(path.join(statesDir, name));
    }
    // The guest's RAM goes to a file it shares; the state file then holds the devices only.
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
    await mkdir(tmp, { recursive: true });
    try {
      const booted = await this.coldBoot(slots, [], 'state', path.join(tmp, 'ram'));
      try {
        // Save with the host disconnected: a restored guest then simply waits for its new host.
        booted.vm.agent?.close();
        await new Promise((r) => setTimeout(r, 50));
        await booted.vm.save(path.join(tmp, 'state.mig'), 120_000, true);
      } finally {
        // Nothing may run on that RAM any more.
        await booted.vm.kill();
        await rm(booted.dir, { recursive: true, force: true });
      }
      const meta: PreparedState = { key, kernelImage: booted.image, ramFile: 'ram', dir, stateFile: 'state.mig', slots: [...slots], devices: booted.devices, bootMs: booted.bootMs };
      await writeFile(path.join(tmp, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
      const s: PreparedState = { ...meta, stateFile: path.join(dir, 'state.mig'), ramFile: path.join(dir, 'ram') };
      await mkdir(path.dirname(dir), { recursive: true });
      try {
        await rename(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        // Another process saved the same state meanwhile: keep theirs (it may be in use), unless it is broken.
        const theirs = await this.loadState(dir, key);
        if (theirs) {
          await markInUse(dir);
          return theirs;
        }
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir);
      }
      await markInUse(dir);
      return s;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * A paused VM with the state loaded and fresh disks, waiting for a case.
   * A spare restores at low priority (nice 10), so on a busy machine it
   * yields to the VM running a case; acquire() gives it normal priority.
   */
  private async restoreSpare(state: PreparedState, background = false): Promise<{ vm: Vm; dir: string; files: string[] }> {
    const dir = await this.newDir('vm');
    const disks = await this.diskFiles(dir, state.slots, []);
    const ram = state.ramFile ? { path: state.ramFile, shared: false } : undefined;
    const vm = this.track(await Vm.start(this.vmOptions(dir, disks, true, state.kernelImage ?? 'vmlinux', ram)));
    if (background) renice(vm, 10);
    try {
      await vm.restore(state.stateFile, 60_000, Boolean(state.ramFile));
    } catch (err) {
      await vm.kill();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return { vm, dir, files: disks.map((d) => d.file) };
  }

  /** Start restoring the next VM for disks of these geometries in the background. */
  prepareSpare(geoms: readonly DiskGeometry[]): void {
    const slots = slotsFor(geoms);
    const key = this.keyOf(slots);
    if (this.spares.has(key)) return;
    const p = this.state(slots)
      .then((s) => this.restoreSpare(s, true))
      .catch(() => undefined);
    this.spares.set(key, p);
  }

  /**
   * A running VM for a case with disks of these geometries and sizes: a
   * spare if one is ready, else a restore, else a cold boot. Throws VmError
   * when none of them gives an answering agent.
   */
  async acquire(geoms: readonly DiskGeometry[], sizes: readonly number[], opts: { spare?: boolean } = {}): Promise<CaseVm> {
    const t0 = performance.now();
    const slots = slotsFor(geoms);
    const key = this.keyOf(slots);
    let restoreError: string | undefined;
    // A state that cannot be made means a guest that does not boot: booting once more would not help.
    const state = await this.state(slots).catch((err: Error) => {
      throw new VmError(`no VM: ${err.message}`);
    });
    try {
      const spare = await this.spares.get(key);
      this.spares.delete(key);
      const how = spare ? ('spare' as const) : ('restore' as const);
      const got = spare && !spare.vm.hasExited ? spare : await this.restoreSpare(state);
      renice(got.vm, 0);
      if (opts.spare !== false) this.prepareSpare(slots);
      try {
        for (let i = 0; i < sizes.length; i++) if (sizes[i] !== BASE_DISK_BYTES) await got.vm.resizeDisk(i, sizes[i]!);
        await got.vm.cont();
        await got.vm.connectAgent(this.cfg.restoreTimeoutMs);
        await this.awaitDiskSizes(got.vm, state.devices, sizes);
        return { vm: got.vm, dir: got.dir, devices: state.devices.map((d) => `/dev/${d}`), how, key, readyMs: Math.round(performance.now() - t0) };
      } catch (err) {
        await got.vm.kill();
        await rm(got.dir, { recursive: true, force: true });
        throw err;
      }
    } catch (err) {
      restoreError = (err as Error).message;
    }
    // Fallback: boot with the case's own disk sizes.
    try {
      const b = await this.coldBoot(slots, sizes, 'cold');
      return { vm: b.vm, dir: b.dir, devices: b.devices.map((d) => `/dev/${d}`), how: 'cold-boot', key, readyMs: Math.round(performance.now() - t0) };
    } catch (err) {
      throw new VmError(`no VM: restoring failed (${restoreError}), and so did a cold boot (${(err as Error).message})`);
    }
  }

  /**
   * Give a running VM's slots new sizes (block_resize of the slots whose size
   * differs from `current`) and wait until the guest sees them: a VM kept
   * for the next case.
   */
  async resizeRunning(c: CaseVm, current: readonly number[], sizes: readonly number[]): Promise<void> {
    for (let i = 0; i < sizes.length; i++) if (sizes[i] !== (current[i] ?? BASE_DISK_BYTES)) await c.vm.resizeDisk(i, sizes[i]!);
    await this.awaitDiskSizes(c.vm, c.devices.map((d) => d.replace(/^\/dev\//, '')), sizes);
  }

  /** The guest learns of new capacities asynchronously: wait until its INFO shows them. */
  private async awaitDiskSizes(vm: Vm, devices: readonly string[], sizes: readonly number[]): Promise<void> {
    const agent = vm.agent;
    if (!agent || agent.isClosed) throw new VmError('no agent connection');
    for (let tries = 0; ; tries++) {
      const info = await agent.info();
      const ok = sizes.every((sz, i) => info.disks.find((d) => d.name === devices[i])?.sectors === sz / 512);
      if (ok) return;
      if (tries > 500) throw new VmError(`the guest did not see its disks resized: ${JSON.stringify(info.disks)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Kill a case's VM and remove its directory. */
  async release(c: { vm: Vm; dir: string }): Promise<void> {
    await c.vm.kill();
    await rm(c.dir, { recursive: true, force: true });
  }

  /** Kill every VM this factory started (spares too) and remove their directories. */
  async close(): Promise<void> {
    const spares = [...this.spares.values()];
    this.spares.clear();
    for (const s of spares) {
      const v = await s;
      if (v) await v.vm.kill();
    }
    for (const vm of [...this.live]) await vm.kill();
    await rm(this.runDir, { recursive: true, force: true });
  }

  /** PIDs of the QEMU processes alive now (tests check that none are left). */
  livePids(): number[] {
    return [...this.live].map((v) => v.pid).filter((p): p is number => p !== undefined);
  }
}

/** Remove VM directories left by processes that are gone (named <pid>-<random>). */
async function pruneRunDirs(runRoot: string): Promise<void> {
  for (const name of await readdir(runRoot).catch(() => [] as string[])) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (!processAlive(pid)) await rm(path.join(runRoot, name), { recursive: true, force: true }).catch(() => undefined);
  }
}
