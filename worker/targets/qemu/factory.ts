/**
 * `qemu` (the newest fetched kernel) and `qemu:<kernel id>`: QEMU VMs booting
 * Debian kernels fetched by `blockfarm kernels fetch` (infra/kernels), with
 * the guest image built from this machine (infra/guest).
 *
 * Environment: BLOCKFARM_QEMU_ACCEL=tcg|kvm (default: probe KVM once),
 * BLOCKFARM_QEMU_BOOT_TIMEOUT_MS (default 180000 under TCG, 60000 under KVM),
 * BLOCKFARM_QEMU_MEM (MiB, default 1024), BLOCKFARM_QEMU_SMP (default 2:
 * races need two vCPUs; under TCG they share one thread, which keeps IO
 * fast).
 */
import path from 'node:path';
import { buildGuestImage, GuestBuildError } from '../../../infra/guest/build.ts';
import { GUEST_TOOLS } from '../../../infra/guest/contents.ts';
import { kernelBuildChecks } from '../../../infra/kernels/build.ts';
import { KernelConfig } from '../../../infra/kernels/config.ts';
import { extraModuleChecks } from '../../../infra/kernels/extra-modules.ts';
import { parseKernelId } from '../../../infra/kernels/id.ts';
import { cacheRoot } from '../../../infra/kernels/paths.ts';
import { type FetchedKernel, KERNEL_NAME_RE, fetchedKernels, loadFetched, newestFetched } from '../../../infra/kernels/store.ts';
import { KernelSymbolizer } from '../../kernel-log/kernel-symbols.ts';
import { type MachineCheck, checkFile, checkTool, defaultProbeEnv, findExecutable } from '../../../infra/machine.ts';
import type { TargetFactory } from '../target.ts';
import { TargetRefused } from '../target.ts';
import { GUEST_APPEND, QEMU_BINARY, chooseAccel, hasSetpriv, kvmCheck, qemuVersion } from './machine.ts';
import { QemuTarget, type QemuTargetOptions } from './qemu-target.ts';
import { type GuestConfig, VmFactory } from './states.ts';

export { GUEST_APPEND };

export interface QemuSetup {
  kernel: FetchedKernel;
  /** Overrides for tests and benchmarks. */
  memMb?: number;
  smp?: number;
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}

/** Resolve 'qemu' / 'qemu:ID' to a fetched kernel, or refuse with the reason. */
export async function kernelFor(name: string, env: NodeJS.ProcessEnv = process.env): Promise<FetchedKernel> {
  if (name === 'qemu') {
    const k = await newestFetched(env);
    if (!k) throw new TargetRefused("no kernel is fetched: run 'blockfarm kernels fetch 6.1.0-56-amd64' (or see 'blockfarm kernels list')", 3);
    return k;
  }
  const id = name.slice('qemu:'.length);
  const debian = parseKernelId(id) !== undefined;
  if (!debian && !KERNEL_NAME_RE.test(id))
    throw new TargetRefused(`target '${name}': '${id}' is neither a Debian kernel id (like 6.1.0-56-amd64) nor a kernel name (letters, digits, . _ + -)`, 2);
  const k = await loadFetched(id, env);
  if (!k && debian) throw new TargetRefused(`kernel ${id} is not fetched: run 'blockfarm kernels fetch ${id}'`, 3);
  if (!k) throw new TargetRefused(`target '${name}': no kernel named '${id}' (register one with 'blockfarm kernels add ${id} --kernel PATH' or 'kernels build'; see 'blockfarm kernels list')`, 2);
  return k;
}

/** What symbolizes this kernel's reports: its System.map (Debian ships one in the image package) and a vmlinux with DWARF (-dbg, or a build with debug info). */
export function symbolizerFor(kernel: FetchedKernel): KernelSymbolizer {
  const debianMap = path.join(kernel.modulesRoot, 'boot', `System.map-${kernel.info.id}`);
  return new KernelSymbolizer({ systemMap: kernel.systemMap ?? debianMap, vmlinux: [kernel.dbgVmlinux, kernel.vmlinux].filter((v): v is string => Boolean(v)) });
}

/** Everything a QEMU target needs, prepared: executor, guest image, accelerator, VM factory. */
export async function prepareQemu(s: QemuSetup): Promise<{ cfg: GuestConfig; factory: VmFactory; accelDetail: string }> {
  const env = s.env ?? process.env;
  const version = await qemuVersion();
  if (!version) throw new TargetRefused(`${QEMU_BINARY} is not installed: apt-get install qemu-system-x86`, 3);
  const { buildExecutor } = await import('../../executor/build.ts');
  const executor = await buildExecutor();
  let image;
  try {
    image = await buildGuestImage(s.kernel, { executor, env, progress: s.progress });
  } catch (err) {
    if (err instanceof GuestBuildError) throw new TargetRefused(err.message, 3);
    throw err;
  }
  const { accel, detail } = await chooseAccel(s.kernel.vmlinux, env);
  const tcg = accel === 'tcg';
  const cfg: GuestConfig = {
    kernel: s.kernel,
    image,
    accel,
    memMb: s.memMb ?? Number(env.BLOCKFARM_QEMU_MEM ?? 1024),
    smp: s.smp ?? Number(env.BLOCKFARM_QEMU_SMP ?? 2),
    append: GUEST_APPEND,
    qemuVersion: version,
    wrapper: (await hasSetpriv()) ? ['setpriv', '--pdeathsig', 'KILL', '--'] : [],
    root: path.join(cacheRoot(env), 'qemu'),
    bootTimeoutMs: Number(env.BLOCKFARM_QEMU_BOOT_TIMEOUT_MS) || (tcg ? 180_000 : 60_000),
    restoreTimeoutMs: tcg ? 30_000 : 10_000,
  };
  return { cfg, factory: new VmFactory(cfg), accelDetail: detail };
}

export async function createQemuTarget(name: string, extra: Partial<QemuTargetOptions> & { env?: NodeJS.ProcessEnv; memMb?: number; smp?: number } = {}): Promise<QemuTarget> {
  const kernel = await kernelFor(name, extra.env);
  const { cfg, factory } = await prepareQemu({ kernel, env: extra.env, memMb: extra.memMb, smp: extra.smp });
  // Own kernels are judged by their config (Debian ones by their module tree, as before).
  const own = (kernel.info.origin ?? 'debian') !== 'debian';
  const kernelConfig = own && kernel.hasConfig ? await KernelConfig.load(kernel.config).catch(() => undefined) : undefined;
  return new QemuTarget({ kernelConfig, symbolizer: symbolizerFor(kernel), ...extra, kernel, image: cfg.image, factory });
}

export const qemuTargetFactory: TargetFactory = {
  describe: 'QEMU VMs booting fetched Debian kernels (qemu = the newest fetched; TCG, or KVM where it works)',
  matches: (name) => name === 'qemu' || name.startsWith('qemu:'),
  create: (name) => createQemuTarget(name),
  async requirements(): Promise<MachineCheck[]> {
    const env = defaultProbeEnv();
    const kernels = await fetchedKernels();
    const kernelCheck: MachineCheck = kernels.length
      ? { what: 'fetched kernels', status: 'ok', detail: kernels.map((k) => k.info.id).join(', ') }
      : { what: 'fetched kernels', status: 'missing', detail: 'none in the cache', fix: 'blockfarm kernels fetch 6.1.0-56-amd64 (or infra/setup.sh)' };
    const toolPkg: Record<string, string> = {
      dmsetup: 'dmsetup', cryptsetup: 'cryptsetup-bin', integritysetup: 'cryptsetup-bin', mdadm: 'mdadm', dash: 'dash',
      'mkfs.gfs2': 'gfs2-utils', 'fsck.gfs2': 'gfs2-utils', 'mkfs.xfs': 'xfsprogs', xfs_repair: 'xfsprogs', 'mkfs.btrfs': 'btrfs-progs', modprobe: 'kmod',
    };
    const guestTools = await Promise.all(
      GUEST_TOOLS.filter((t) => toolPkg[t]).map((t) => checkTool(t, toolPkg[t]!, env)),
    );
    const setpriv = (await findExecutable('setpriv', env))
      ? { what: 'setpriv --pdeathsig', status: 'ok' as const, detail: 'QEMU dies with its parent' }
      : { what: 'setpriv --pdeathsig', status: 'missing' as const, optional: true, detail: 'a killed worker could leave QEMU running', fix: 'apt-get install util-linux' };
    return [
      await checkTool(QEMU_BINARY, 'qemu-system-x86', env),
      kernelCheck,
      await checkTool('apt-get', 'apt', env),
      await checkTool('dpkg-deb', 'dpkg', env),
      await checkTool('depmod', 'kmod', env),
      await checkTool('xz', 'xz-utils', env),
      await checkTool('gcc', 'gcc', env),
      await checkFile('liburing (static, for the executor)', '/usr/lib/x86_64-linux-gnu/liburing.a', 'liburing-dev', env),
      ...guestTools,
      setpriv,
      await kvmCheck(),
      // Debian's kernels lack dm-dust; each fetch builds it from linux-source-6.1 against the kernel's headers.
      ...(await extraModuleChecks(env)),
      ...(await kernelBuildChecks(env)),
    ];
  },
};
