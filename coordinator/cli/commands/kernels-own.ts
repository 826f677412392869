/**
 * Own kernels for the qemu target (infra/kernels/custom.ts, build.ts):
 *
 *   blockfarm kernels add NAME --kernel PATH [--modules DIR] [--config PATH] [--system-map PATH] [--force] [--no-boot-check]
 *   blockfarm kernels build NAME (--source DIR | --debian-source) [--patch FILE...] [--config-fragment FILE...]
 *                           [--base defconfig|tinyconfig|FILE] [--no-fuzz-config] [--debug-info] [--jobs N] [--no-boot-check]
 *   blockfarm kernels remove NAME
 *
 * add copies the kernel into the cache under NAME and, unless told not to,
 * boots it once in the QEMU target (the boot also prepares the VM state the
 * first case restores): a kernel that does not come up is not registered,
 * and the error carries the end of its console. build makes the kernel
 * first (progress on stderr, the log kept), then registers it the same way.
 *
 * Exit: 0 registered, 2 bad input (not a kernel, a bad name or file, a
 * kernel that does not boot, a build that fails on the tree), 3 QEMU missing
 * for the boot check, 4 a tool or this machine failed.
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { type BuildKernelOptions, FUZZ_FRAGMENTS, KernelBuildError, buildKernel } from '../../../infra/kernels/build.ts';
import { KernelAddError, addKernel, kernelNameProblem, removeKernel } from '../../../infra/kernels/custom.ts';
import { ToolMissingError } from '../../../infra/kernels/proc.ts';
import type { FetchedKernel } from '../../../infra/kernels/store.ts';
import type { CliContext, CommandHost } from '../context.ts';

/** Boot the kernel once with the guest image; the reason it did not come up, or undefined. */
export async function bootCheck(kernel: FetchedKernel, progress: (line: string) => void): Promise<{ problem?: string; code?: number; ms?: number }> {
  const { prepareQemu } = await import('../../../worker/targets/qemu/factory.ts');
  const { TargetRefused } = await import('../../../worker/targets/target.ts');
  let prepared;
  try {
    prepared = await prepareQemu({ kernel, progress });
  } catch (err) {
    if (err instanceof TargetRefused) return { problem: err.message, code: err.exitCode };
    throw err;
  }
  const t0 = performance.now();
  progress(`booting ${kernel.info.id} (${prepared.cfg.accel})`);
  try {
    const vm = await prepared.factory.acquire([{ logicalBlockSize: 512, physicalBlockSize: 512 }], [64 << 20], { spare: false });
    await prepared.factory.release(vm);
    return { ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return { problem: `kernel ${kernel.info.id} does not boot: ${(err as Error).message}`, code: EXIT.badInput };
  } finally {
    await prepared.factory.close();
  }
}

async function registerChecked(
  ctx: CliContext,
  cmdName: string,
  kernel: FetchedKernel,
  opts: { bootCheck?: boolean },
): Promise<number> {
  if (opts.bootCheck !== false) {
    const r = await bootCheck(kernel, (line) => ctx.err(`${cmdName}: ${line}`));
    if (r.problem !== undefined) {
      await removeKernel(kernel.info.id);
      ctx.err(`blockfarm ${cmdName}: ${r.problem.replace(/\s+/g, ' ')}`);
      return r.code ?? EXIT.infra;
    }
    ctx.err(`${cmdName}: ${kernel.info.id} boots (${((r.ms ?? 0) / 1000).toFixed(1)} s to a ready guest)`);
  }
  ctx.err(`${cmdName}: registered ${kernel.info.id}${kernel.info.release ? ` (release ${kernel.info.release})` : ''}: use --target qemu:${kernel.info.id}`);
  ctx.out(kernel.dir);
  return EXIT.pass;
}

export interface KernelsAddFlags {
  kernel?: string;
  modules?: string;
  config?: string;
  systemMap?: string;
  force?: boolean;
  bootCheck?: boolean;
}

export async function kernelsAddCommand(name: string, flags: KernelsAddFlags, ctx: CliContext): Promise<number> {
  if (!flags.kernel) {
    ctx.err('blockfarm kernels add: --kernel PATH is required');
    return EXIT.badInput;
  }
  let k: FetchedKernel;
  try {
    k = await addKernel(name, {
      kernel: flags.kernel,
      modules: flags.modules,
      config: flags.config,
      systemMap: flags.systemMap,
      force: flags.force,
      progress: (line) => ctx.err(`kernels add: ${line}`),
    });
  } catch (err) {
    if (err instanceof KernelAddError) {
      ctx.err(`blockfarm kernels add: ${err.message}`);
      return err.badInput ? EXIT.badInput : EXIT.infra;
    }
    if (err instanceof ToolMissingError) {
      ctx.err(`blockfarm kernels add: ${err.message}`);
      return EXIT.infra;
    }
    throw err;
  }
  return registerChecked(ctx, 'kernels add', k, flags);
}

export interface KernelsBuildFlags {
  source?: string;
  debianSource?: boolean;
  patch?: string[];
  configFragment?: string[];
  base?: string;
  debugInfo?: boolean;
  fuzzConfig?: boolean;
  jobs?: string;
  force?: boolean;
  bootCheck?: boolean;
}

export async function kernelsBuildCommand(name: string, flags: KernelsBuildFlags, ctx: CliContext): Promise<number> {
  const problem = kernelNameProblem(name);
  if (problem) {
    ctx.err(`blockfarm kernels build: ${problem}`);
    return EXIT.badInput;
  }
  if (Boolean(flags.source) === Boolean(flags.debianSource)) {
    ctx.err('blockfarm kernels build: give exactly one of --source DIR and --debian-source');
    return EXIT.badInput;
  }
  const jobs = flags.jobs === undefined ? undefined : Number(flags.jobs);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1)) {
    ctx.err(`blockfarm kernels build: --jobs ${flags.jobs}: not a positive integer`);
    return EXIT.badInput;
  }
  const opts: BuildKernelOptions = {
    source: flags.source ? { kind: 'tree', dir: flags.source } : { kind: 'debian' },
    patches: flags.patch ?? [],
    fragments: flags.configFragment ?? [],
    debugInfo: Boolean(flags.debugInfo),
    progress: (line) => ctx.err(`kernels build: ${line}`),
  };
  if (flags.base) opts.base = flags.base;
  // Without the fuzzing configuration: what the QEMU target needs to boot, and the user's fragments.
  if (flags.fuzzConfig === false) opts.farmFragments = [FUZZ_FRAGMENTS[0]!];
  if (jobs !== undefined) opts.jobs = jobs;
  let k: FetchedKernel;
  try {
    const built = await buildKernel(name, opts);
    ctx.err(`kernels build: built in ${(built.ms / 1000).toFixed(0)} s (log: ${built.log})`);
    k = await addKernel(name, { ...built.artifacts, force: true, origin: 'built', source: built.source, progress: (line) => ctx.err(`kernels build: ${line}`) });
  } catch (err) {
    if (err instanceof KernelBuildError || err instanceof KernelAddError) {
      ctx.err(`blockfarm kernels build: ${err.message}`);
      return err.badInput ? EXIT.badInput : EXIT.infra;
    }
    if (err instanceof ToolMissingError) {
      ctx.err(`blockfarm kernels build: ${err.message}`);
      return EXIT.infra;
    }
    throw err;
  }
  return registerChecked(ctx, 'kernels build', k, flags);
}

export async function kernelsRemoveCommand(name: string, ctx: CliContext): Promise<number> {
  if (!(await removeKernel(name))) {
    ctx.err(`blockfarm kernels remove: no own kernel named '${name}' (fetched Debian kernels are not removed here)`);
    return EXIT.badInput;
  }
  ctx.err(`kernels remove: removed ${name}`);
  return EXIT.pass;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerOwnKernels(kernels: Command, host: CommandHost): void {
  kernels
    .command('add')
    .description('register your own x86-64 kernel (bzImage, or ELF vmlinux with the PVH note) for --target qemu:NAME')
    .argument('<name>', 'the name it gets (letters, digits, . _ + -)')
    .option('--kernel <path>', 'the kernel: arch/x86/boot/bzImage, or a vmlinux built with CONFIG_PVH')
    .option('--modules <dir>', 'its module tree: lib/modules/<release>, or a root holding it (default: none, everything built in)')
    .option('--config <path>', 'its .config: cases needing an option it lacks are unsupported, with the option named')
    .option('--system-map <path>', 'its System.map, for symbolized reports')
    .option('--force', 'replace a kernel already registered under this name')
    .option('--no-boot-check', 'register without booting it once')
    .addHelpText('after', '\nExit codes: 0 registered, 2 not a kernel / bad file / does not boot, 3 QEMU missing, 4 a tool failed.')
    .action(async (name: string, opts: KernelsAddFlags, cmd: Command) => {
      host.setExitCode(await kernelsAddCommand(name, opts, host.context(cmd)));
    });
  kernels
    .command('build')
    .description('build a fuzzing kernel (KASAN, KCOV, lockdep, the block stack built in) from a tree or Debian\'s linux-source-6.1, and register it')
    .argument('<name>', 'the name it gets')
    .option('--source <dir>', 'a kernel source tree (built out of tree; never modified unless --patch)')
    .option('--debian-source', "Debian's linux-source-6.1 package (installed with apt-get when missing)")
    .option('--patch <file>', 'a patch to apply (-p1) before building; repeatable', collect)
    .option('--config-fragment <file>', 'config lines merged last; repeatable', collect)
    .option('--base <config>', 'the base configuration: defconfig (default) or tinyconfig, on which the farm fragments are merged')
    .option('--debug-info', 'build with DWARF (file:line in reports; much slower and larger)')
    .option('--no-fuzz-config', 'leave out infra/kernels/configs/fuzz.config (KASAN, lockdep, the block stack): only what booting in the QEMU target needs, plus your fragments')
    .option('--jobs <n>', 'make -j (default: the number of CPUs)')
    .option('--no-boot-check', 'register without booting it once')
    .addHelpText('after', '\nExit codes: 0 built and registered, 2 bad input or the tree does not build, 3 QEMU missing, 4 a tool or this machine failed.')
    .action(async (name: string, opts: KernelsBuildFlags, cmd: Command) => {
      host.setExitCode(await kernelsBuildCommand(name, opts, host.context(cmd)));
    });
  kernels
    .command('remove')
    .description('remove an own kernel (added or built) from the cache')
    .argument('<name>')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      host.setExitCode(await kernelsRemoveCommand(name, host.context(cmd)));
    });
}
