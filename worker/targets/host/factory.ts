/** `host`: refused unless asked for with --allow-host, and only as root. */
import {
  type MachineCheck, checkFile, checkFilesystem, checkIoUring, checkKernelModule, checkLoopControl, checkRoot, checkTool, defaultProbeEnv,
} from '../../../infra/machine.ts';
import type { TargetFactory } from '../target.ts';
import { TargetRefused } from '../target.ts';
import { HostCapabilities } from './capabilities.ts';
import { HostTarget } from './host-target.ts';

export const DEFAULT_HOST_WORK_ROOT = '/var/tmp/blockfarm/host';

/** Tools the host target runs, with the Debian 12 package that has each. */
const HOST_TOOLS: ReadonlyArray<[string, string]> = [
  ['losetup', 'mount'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['e2fsck', 'e2fsprogs'],
  ['mkfs.xfs', 'xfsprogs'],
  ['xfs_repair', 'xfsprogs'],
  ['mkfs.btrfs', 'btrfs-progs'],
  ['btrfs', 'btrfs-progs'],
  ['gcc', 'gcc'],
];

export const hostTargetFactory: TargetFactory = {
  describe: "this machine's own kernel, as root (opt-in with --allow-host: a kernel bug can take the machine down)",
  matches: (name) => name === 'host',
  async create(_name, opts) {
    if (!opts.allowHost)
      throw new TargetRefused("the host target runs cases on this machine's own kernel; pass --allow-host to accept that risk", 2);
    if (!new HostCapabilities().isRoot()) throw new TargetRefused('the host target needs root (loop devices, mkfs, mount)', 3);
    return new HostTarget({
      workRoot: opts.hostWorkRoot ?? DEFAULT_HOST_WORK_ROOT,
      executor: async () => (await import('../../executor/build.ts')).buildExecutor(),
    });
  },
  async requirements(): Promise<MachineCheck[]> {
    const env = defaultProbeEnv();
    const optional = (c: MachineCheck, why: string): MachineCheck => ({ ...c, optional: true, detail: `${c.detail ?? ''}${c.status === 'ok' ? '' : `; ${why}`}` });
    return [
      checkRoot(env),
      await checkLoopControl(env),
      await checkIoUring(env),
      await checkKernelModule('loop', env),
      optional(await checkKernelModule('dm_mod', env), 'dm-* layers are unsupported on the host'),
      optional(await checkKernelModule('md_mod', env), 'md layers are unsupported on the host'),
      await checkFilesystem('ext4', env),
      await checkFilesystem('xfs', env),
      await checkFilesystem('btrfs', env),
      ...(await Promise.all(HOST_TOOLS.map(([t, pkg]) => checkTool(t, pkg, env)))),
      await checkFile('liburing (static, for the executor)', '/usr/lib/x86_64-linux-gnu/liburing.a', 'liburing-dev', env),
      optional(await checkTool('fio', 'fio', env), 'only the benchmark compares against fio'),
    ];
  },
};
