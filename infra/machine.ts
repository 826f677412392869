/**
 * Read-only probes of this machine: what the kernel targets need (tools,
 * kernel modules, devices, privileges) and whether it is here. Nothing here
 * changes the machine: no module is loaded (`modprobe -n` is a dry run), no
 * device is opened for IO.
 *
 * Each probe answers ok, missing or unknown (we could not tell, e.g. a
 * kernel without a modules directory), with a detail for people and, when
 * something is missing, how to get it on Debian.
 */
import { execFile } from 'node:child_process';
import { constants, promises as fsp } from 'node:fs';
import { release } from 'node:os';
import { delimiter, join } from 'node:path';

export type CheckStatus = 'ok' | 'missing' | 'unknown';

export interface MachineCheck {
  what: string;
  status: CheckStatus;
  detail?: string;
  /** How to get it on Debian, when missing. */
  fix?: string;
  /** A target works without it (slower or with fewer layer kinds). */
  optional?: boolean;
}

/** Where the probes look; tests point them at a fake tree. */
export interface ProbeEnv {
  /** Prefix for /proc, /sys, /dev, /lib and /usr paths. */
  fsRoot: string;
  /** PATH to search (the sbin directories are always added). */
  path: string;
  uid: number | undefined;
  nodeVersion: string;
  kernelRelease: string;
  /** Run `modprobe -n`; false in tests. */
  allowModprobe: boolean;
}

export function defaultProbeEnv(): ProbeEnv {
  return {
    fsRoot: '/',
    path: process.env.PATH ?? '',
    uid: process.getuid?.(),
    nodeVersion: process.versions.node,
    kernelRelease: release(),
    allowModprobe: true,
  };
}

// Tools for set-up live in sbin, which an ordinary user's PATH often lacks.
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function at(env: ProbeEnv, path: string): string {
  return env.fsRoot === '/' ? path : join(env.fsRoot, path);
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The absolute path of an executable on PATH (plus the sbin directories), or undefined. */
export async function findExecutable(name: string, env: ProbeEnv): Promise<string | undefined> {
  const dirs = [...new Set([...env.path.split(delimiter).filter(Boolean), ...SBIN_DIRS])];
  for (const dir of dirs) {
    const candidate = at(env, join(dir, name));
    try {
      const st = await fsp.stat(candidate);
      if (!st.isFile()) continue;
      await fsp.access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next directory
    }
  }
  return undefined;
}

export async function checkTool(name: string, debianPackage: string, env: ProbeEnv, optional = false): Promise<MachineCheck> {
  const found = await findExecutable(name, env);
  return found
    ? { what: name, status: 'ok', detail: found, optional }
    : { what: name, status: 'missing', detail: 'not on PATH or in sbin', fix: `apt-get install ${debianPackage}`, optional };
}

export async function checkFile(what: string, path: string, debianPackage: string, env: ProbeEnv): Promise<MachineCheck> {
  return (await exists(at(env, path)))
    ? { what, status: 'ok', detail: path }
    : { what, status: 'missing', detail: `${path} not found`, fix: `apt-get install ${debianPackage}` };
}

function versionAtLeast(version: string, min: string): boolean {
  const a = version.replace(/^v/, '').split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export function checkNode(min: string, env: ProbeEnv): MachineCheck {
  const ok = versionAtLeast(env.nodeVersion, min);
  return {
    what: `node >= ${min}`,
    status: ok ? 'ok' : 'missing',
    detail: `v${env.nodeVersion.replace(/^v/, '')}`,
    ...(ok ? {} : { fix: 'install Node.js 20.18 or newer (Debian 12: NodeSource packages or nvm)' }),
  };
}

export function checkRoot(env: ProbeEnv): MachineCheck {
  if (env.uid === undefined) return { what: 'root', status: 'unknown', detail: 'no uid on this platform' };
  return env.uid === 0
    ? { what: 'root', status: 'ok', detail: 'uid 0' }
    : { what: 'root', status: 'missing', detail: `uid ${env.uid}`, fix: 'run as root (sudo): the host target builds loop, dm and md devices' };
}

export async function checkLoopControl(env: ProbeEnv): Promise<MachineCheck> {
  const what = '/dev/loop-control';
  if (await exists(at(env, '/dev/loop-control'))) return { what, status: 'ok', detail: 'present' };
  const mod = await checkKernelModule('loop', env);
  return {
    what,
    status: 'missing',
    detail: mod.status === 'ok' ? `absent, though the loop module is ${mod.detail}` : 'absent',
    fix: 'modprobe loop (package kmod); in a container, pass the host /dev/loop-control in',
  };
}

/** io_uring: the io_uring_disabled sysctl (Linux 6.6+): 0 on, 1 only for root and the io_uring group, 2 off. */
export async function checkIoUring(env: ProbeEnv): Promise<MachineCheck> {
  const what = 'io_uring';
  const text = await readText(at(env, '/proc/sys/kernel/io_uring_disabled'));
  if (text === undefined)
    return { what, status: 'unknown', detail: 'no /proc/sys/kernel/io_uring_disabled (kernel before 6.6, or /proc not mounted); assumed enabled' };
  const v = text.trim();
  if (v === '0') return { what, status: 'ok', detail: 'io_uring_disabled=0' };
  if (v === '1')
    return env.uid === 0
      ? { what, status: 'ok', detail: 'io_uring_disabled=1 (root may use it)' }
      : { what, status: 'missing', detail: 'io_uring_disabled=1 (root or the io_uring group only)', fix: 'run as root or: sysctl kernel.io_uring_disabled=0' };
  return { what, status: 'missing', detail: `io_uring_disabled=${v}`, fix: 'sysctl kernel.io_uring_disabled=0' };
}

function runModprobeDryRun(name: string): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    execFile('modprobe', ['-n', name], { timeout: 5000, env: { ...process.env, PATH: `${process.env.PATH ?? ''}:${SBIN_DIRS.join(':')}` } }, (err) => {
      if (!err) return resolve(true);
      // ENOENT: no modprobe here, so we cannot tell.
      resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : false);
    });
  });
}

/** Other traces a module leaves when it is built in or loaded, for kernels that hide it from /sys/module. */
const MODULE_TRACES: Record<string, { file: string; contains?: string }> = {
  dm_mod: { file: '/proc/misc', contains: 'device-mapper' },
  md_mod: { file: '/proc/mdstat' },
  loop: { file: '/dev/loop-control' },
};

/** Kernel config option of a module, for the "how to get it" hint. */
const MODULE_CONFIG: Record<string, string> = { dm_mod: 'BLK_DEV_DM', md_mod: 'BLK_DEV_MD', loop: 'BLK_DEV_LOOP' };

/**
 * A kernel module: loaded or built in (/sys/module/NAME, or a trace such as
 * device-mapper in /proc/misc), built in per modules.builtin, or loadable per
 * `modprobe -n`. Without a /lib/modules directory for the running kernel
 * (common in containers) nothing can be loaded, so absent means missing.
 */
export async function checkKernelModule(name: string, env: ProbeEnv, optional = false): Promise<MachineCheck> {
  const what = `kernel module ${name}`;
  const sys = at(env, `/sys/module/${name}`);
  if (await exists(sys))
    return { what, status: 'ok', detail: (await exists(join(sys, 'initstate'))) ? 'loaded' : 'built in', optional };
  const trace = MODULE_TRACES[name];
  if (trace) {
    const text = trace.contains === undefined ? ((await exists(at(env, trace.file))) ? '' : undefined) : await readText(at(env, trace.file));
    if (text !== undefined && (trace.contains === undefined || text.includes(trace.contains)))
      return { what, status: 'ok', detail: `present (${trace.file}${trace.contains ? ` lists ${trace.contains}` : ''})`, optional };
  }
  const config = MODULE_CONFIG[name];
  const kernelFix = `a kernel with CONFIG_${config ?? name.toUpperCase()}=y or =m and its modules (linux-image-${env.kernelRelease})`;
  const modDir = at(env, `/lib/modules/${env.kernelRelease}`);
  if (!(await exists(modDir)))
    return { what, status: 'missing', detail: `not loaded or built in, and no ${modDir} to load it from`, fix: kernelFix, optional };
  const builtin = await readText(join(modDir, 'modules.builtin'));
  const file = name.replace(/_/g, '[-_]');
  if (builtin !== undefined && new RegExp(`/${file}\\.ko$`, 'm').test(builtin)) return { what, status: 'ok', detail: 'built in', optional };
  if (env.allowModprobe && env.fsRoot === '/') {
    const loadable = await runModprobeDryRun(name);
    if (loadable) return { what, status: 'ok', detail: `not loaded; loadable (modprobe ${name})`, optional };
    if (loadable === false) return { what, status: 'missing', detail: `modprobe -n ${name} fails`, fix: kernelFix, optional };
  }
  return { what, status: 'unknown', detail: `not loaded or built in; no modprobe to ask whether ${modDir} has it`, fix: 'apt-get install kmod', optional };
}

/** A filesystem type the kernel can mount now (/proc/filesystems) or after loading its module. */
export async function checkFilesystem(type: string, env: ProbeEnv): Promise<MachineCheck> {
  const what = `kernel fs ${type}`;
  const text = await readText(at(env, '/proc/filesystems'));
  if (text?.split('\n').some((l) => l.split(/\s+/).includes(type))) return { what, status: 'ok', detail: 'in /proc/filesystems' };
  const mod = await checkKernelModule(type, env);
  return { ...mod, what };
}

/** KVM: /dev/kvm present and writable. Whether QEMU can really use it shows only when a VM boots. */
export async function checkKvm(env: ProbeEnv): Promise<MachineCheck> {
  const what = 'KVM (/dev/kvm)';
  const dev = at(env, '/dev/kvm');
  if (!(await exists(dev)))
    return { what, status: 'missing', optional: true, detail: 'absent: QEMU falls back to TCG (much slower)', fix: 'enable virtualization (modprobe kvm_intel or kvm_amd; nested virtualization in a VM)' };
  try {
    await fsp.access(dev, constants.R_OK | constants.W_OK);
    return { what, status: 'ok', optional: true, detail: 'present and writable; usability is confirmed at the first VM boot' };
  } catch {
    return { what, status: 'missing', optional: true, detail: 'present but not writable by this user', fix: 'add the user to the kvm group' };
  }
}
