/**
 * How this machine runs QEMU: the binary and its version, whether KVM really
 * works (probed once by booting the kernel under -accel kvm and watching
 * for its banner; here /dev/kvm exists but guests hang, so TCG it is), and
 * the parent-death wrapper that makes sure no QEMU outlives the process that
 * started it.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import path from 'node:path';
import { cacheRoot } from '../../../infra/kernels/paths.ts';
import { runTool } from '../../../infra/kernels/proc.ts';
import { type MachineCheck, checkKvm, defaultProbeEnv } from '../../../infra/machine.ts';
import type { Accel } from './vm.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';

/** Kernel command line: serial console with warnings (kmsg has everything), panic reboots (and -no-reboot exits). */
export const GUEST_APPEND = [
  'console=ttyS0',
  'loglevel=5',
  'panic=-1',
  'mitigations=off',
  'sysctl.kernel.hung_task_timeout_secs=60',
  'sysctl.kernel.hung_task_warnings=-1',
].join(' ');

let versionP: Promise<string | undefined> | undefined;

/** "QEMU emulator version 7.2.x (Debian ...)", or undefined when QEMU is missing. */
export function qemuVersion(): Promise<string | undefined> {
  versionP ??= runTool(QEMU_BINARY, ['--version']).then(
    (r) => (r.code === 0 ? r.stdout.split('\n')[0]!.trim() : undefined),
    () => undefined,
  );
  return versionP;
}

let setprivP: Promise<boolean> | undefined;

/** setpriv --pdeathsig (util-linux): QEMU gets SIGKILL when the process that started it dies. */
export function hasSetpriv(): Promise<boolean> {
  setprivP ??= access('/usr/bin/setpriv').then(
    () => true,
    () => false,
  );
  return setprivP;
}

interface KvmProbe {
  hostKernel: string;
  qemu: string;
  works: boolean;
  detail: string;
}

/**
 * Whether -accel kvm boots this kernel: it must print its banner on the
 * console within a few seconds. The answer is cached per host kernel and
 * QEMU version. BLOCKFARM_QEMU_ACCEL=tcg|kvm skips the probe.
 */
export async function chooseAccel(vmlinux: string, env: NodeJS.ProcessEnv = process.env): Promise<{ accel: Accel; detail: string }> {
  const forced = env.BLOCKFARM_QEMU_ACCEL;
  if (forced === 'tcg' || forced === 'kvm') return { accel: forced, detail: `BLOCKFARM_QEMU_ACCEL=${forced}` };
  const qemu = (await qemuVersion()) ?? 'unknown';
  const file = path.join(cacheRoot(env), 'qemu', 'kvm-probe.json');
  try {
    const p = JSON.parse(await readFile(file, 'utf8')) as KvmProbe;
    if (p.hostKernel === release() && p.qemu === qemu) return { accel: p.works ? 'kvm' : 'tcg', detail: `${p.detail} (cached)` };
  } catch {
    // probe now
  }
  const probe = await probeKvm(vmlinux, qemu);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(probe, null, 2)}\n`);
  return { accel: probe.works ? 'kvm' : 'tcg', detail: probe.detail };
}

async function probeKvm(vmlinux: string, qemu: string): Promise<KvmProbe> {
  const base = { hostKernel: release(), qemu };
  try {
    await access('/dev/kvm');
  } catch {
    return { ...base, works: false, detail: 'no /dev/kvm: TCG' };
  }
  const args = ['-accel', 'kvm', '-cpu', 'host', '-machine', 'q35', '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', vmlinux, '-append', 'console=ttyS0 panic=-1', '-serial', 'stdio'];
  return new Promise((resolve) => {
    const child = spawn(QEMU_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let done = false;
    const finish = (works: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
      resolve({ ...base, works, detail });
    };
    const timer = setTimeout(() => finish(false, '/dev/kvm is there but a KVM guest printed nothing in 8 s: TCG'), 8000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/Linux version/.test(out)) finish(true, 'KVM works');
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => finish(false, `cannot run ${QEMU_BINARY}: ${e.message}`));
    child.on('exit', () => finish(false, `a KVM guest did not start: ${err.trim().split('\n').pop() ?? 'no message'}: TCG`));
  });
}

/** KVM as doctor reports it: the cached probe's answer when there is one, else whether /dev/kvm is there. */
export async function kvmCheck(env: NodeJS.ProcessEnv = process.env): Promise<MachineCheck> {
  try {
    const p = JSON.parse(await readFile(path.join(cacheRoot(env), 'qemu', 'kvm-probe.json'), 'utf8')) as KvmProbe;
    if (p.hostKernel === release())
      return { what: 'KVM (probed by booting a guest)', status: p.works ? 'ok' : 'missing', optional: true, detail: p.detail, ...(p.works ? {} : { fix: 'none needed: TCG works, only slower' }) };
  } catch {
    // not probed yet
  }
  return checkKvm(defaultProbeEnv());
}
