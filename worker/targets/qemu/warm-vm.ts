/**
 * When a VM that ran a case may run the next one, and putting it back in
 * the state the model assumes: no device, mount or file of the case left
 * (compared with what the guest showed right after its restore), and the
 * case's disks all zeroes again (BLKZEROOUT over each). Anything unclear
 * means a fresh VM: the caller throws this one away.
 */
import type { ExecEvent, ExecPlan } from '../../executor/protocol.ts';
import type { ExecOutcome } from '../exec-events.ts';
import type { CaseVm } from './states.ts';

/** What a guest shows before any case: its block devices and its mounts. */
export interface GuestBaseline {
  listing: string;
}

/** Block devices, mounts and bound loop devices' backing files: what a guest must show again before it runs another case. */
// Shell builtins only: under TCG every program started costs tens of milliseconds.
const LISTING = [
  'for d in /sys/block/*; do printf "%s\\n" "${d##*/}"; done',
  'echo --',
  'while IFS= read -r l; do printf "%s\\n" "$l"; done < /proc/mounts',
  'echo --',
  'for f in /sys/block/*/loop/backing_file; do [ -r "$f" ] && while IFS= read -r l; do printf "%s\\n" "$l"; done < "$f"; done',
  'true',
].join('; ');

export async function guestBaseline(cvm: CaseVm): Promise<GuestBaseline> {
  const r = await cvm.vm.agent!.exec(['sh', '-c', LISTING]);
  if (r.exit !== 0) throw new Error(`listing the guest's devices and mounts failed (exit ${r.exit})`);
  return { listing: r.out.join('\n') };
}

/** kmsg priority (0 emerg .. 7 debug) at or below which a record makes the VM unfit for another case. */
const WORST_TOLERATED_LEVEL = 4;

/** Every kmsg record is readable and milder than a warning. */
function quietKernel(kmsg: readonly string[]): boolean {
  return kmsg.every((line) => {
    const m = /^(\d+),/.exec(line);
    return m !== null && Number(m[1]) % 8 > WORST_TOLERATED_LEVEL;
  });
}

type Agent = NonNullable<CaseVm['vm']['agent']>;
type AgentResult = Awaited<ReturnType<Agent['exec']>>;

/** Run argv in the guest; its result when it exits 0 within `ms`, else undefined (a non-zero exit, a signal, a lost agent, the time). */
async function execOk(agent: Agent, argv: readonly string[], ms: number, kmsg = false): Promise<AgentResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      agent.exec(argv, '', { kmsg }),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(1, ms)))),
    ]);
    return r && r.exit === 0 && r.signal === 0 ? r : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An undo step that failed only because a check had done it already: a
 * filesystem's `umount` after the fsck check unmounted it first.
 */
function doneByCheck(plan: ExecPlan | undefined, step: number): boolean {
  const undo = plan?.setup[step]?.undo;
  if (!undo || undo[0] !== 'umount') return false;
  return plan.checks.some((c) => c.argv.length === undo.length && c.argv.every((a, i) => a === undo[i]));
}

/**
 * The run ended as the executor's normal end: exit 0, every set-up and undo
 * step done (or done already by a check), no op timed out, every check
 * passed, and no kernel log record at warning level or worse (a kernel that
 * complained may be in a state the next case should not inherit). Whether
 * teardown left anything is checked in the guest afterwards (resetForNextCase).
 */
export function cleanRunOf(events: readonly ExecEvent[], outcome: ExecOutcome, kmsg: readonly string[], plan?: ExecPlan): boolean {
  if (outcome.exit !== 0 || outcome.signal !== 0 || outcome.badLine !== undefined) return false;
  let done = false;
  for (const e of events) {
    if (e.ev === 'timeout') return false;
    if (e.ev === 'setup' && !e.ok) return false;
    if (e.ev === 'undo' && !e.ok && !doneByCheck(plan, e.step)) return false;
    if (e.ev === 'check' && e.exit !== 0) return false;
    if (e.ev === 'done') done = e.ok;
  }
  return done && quietKernel(kmsg);
}

/** Commands whose effects outlive their devices (module parameters, kernel settings). */
const KNOB_COMMANDS = new Set(['modprobe', 'rmmod', 'insmod', 'sysctl', 'sh', 'dash', 'bash', 'tee', 'echo', 'hdparm']);

/**
 * The plan may change kernel state that teardown does not undo: a command
 * that names /sys or /proc, sets a device property with blockdev, loads
 * modules or runs a shell. Such a VM is not reused.
 */
export function planTouchesKnobs(plan: ExecPlan): boolean {
  const argvs: string[][] = [];
  for (const s of plan.setup) {
    argvs.push(s.argv);
    if (s.undo) argvs.push(s.undo);
  }
  for (const c of plan.checks) argvs.push(c.argv);
  for (const t of plan.threads) for (const op of t) if (op.kind === 'exec') argvs.push(...op.argvs);
  return argvs.some((argv) => {
    const cmd = (argv[0] ?? '').split('/').pop()!;
    if (KNOB_COMMANDS.has(cmd)) return true;
    if (cmd === 'blockdev' && argv.some((a) => a.startsWith('--set'))) return true;
    return argv.some((a) => a.includes('/sys/') || a.includes('/proc/'));
  });
}

export interface ResetOptions {
  /** The guest directory the case's mount points and files live under (removed). */
  workDir: string;
  /** Device nodes of the disks the case used (zeroed). */
  disks: readonly string[];
  timeoutMs: number;
}

/**
 * Put a VM back for another case: check in the guest that it holds the same
 * block devices and mounts as after its restore, then remove the work
 * directory and zero the case's disks (blockfarm-exec --zero-devices). False
 * when any of it fails or the kernel logs a warning meanwhile.
 */
export async function resetForNextCase(cvm: CaseVm, baseline: GuestBaseline, o: ResetOptions): Promise<boolean> {
  const agent = cvm.vm.agent;
  if (!agent || agent.isClosed || cvm.vm.hasExited) return false;
  const script = [
    `[ "$(${LISTING})" = "$1" ] || exit 10`,
    'shift',
    `[ ! -e "$0" ] || rm -rf -- "$0" || exit 11`,
    `[ ! -e "$0" ] || exit 11`,
    '[ $# = 0 ] || blockfarm-exec --zero-devices "$@" || exit 12',
  ].join('\n');
  const r = await execOk(agent, ['sh', '-c', script, o.workDir, baseline.listing, ...o.disks.flatMap((d) => ['--zero', d])], o.timeoutMs, true);
  return r !== undefined && quietKernel(r.kmsg);
}

/**
 * A case's block stack left standing in a kept VM for the next program that
 * builds the identical stack (model/stack-reuse.ts says which stacks and
 * programs allow it; the key says which cases build the same one).
 */
export interface KeptStack {
  /** The stack's compiled set-up (argv, tables, keys) with disk sizes and geometry: equal keys build equal stacks. */
  key: string;
  /** The device name prefix its set-up used (the next program is compiled with it). */
  namePrefix: string;
  /** Its set-up steps as compiled, whose undo argvs tear it down (in reverse). */
  setup: ExecPlan['setup'];
  /** Its block devices above the disks (their page caches are emptied at a reset). */
  devices: string[];
  /** What the guest showed with the stack standing after the first reset: it must show it again before each program. */
  listing?: string;
  /** Programs run on it so far. */
  programs: number;
}

/**
 * Put a kept stack back to what a fresh set-up gives: remove the work
 * directory, write back and drop every page cache of the stack (devices and
 * disks), zero the disks beneath it, drop the caches again (one
 * blockfarm-exec --zero-devices), and check the guest shows the same devices and mounts as
 * after the stack's first reset. Returns the listing, or undefined when any
 * of it fails or the kernel logs a warning meanwhile.
 */
export async function resetKeptStack(cvm: CaseVm, stack: KeptStack, o: ResetOptions): Promise<string | undefined> {
  const agent = cvm.vm.agent;
  if (!agent || agent.isClosed || cvm.vm.hasExited) return undefined;
  const script = [
    'work=$1; expect=$2; shift 2',
    '[ ! -e "$work" ] || rm -rf -- "$work" || exit 11',
    '[ ! -e "$work" ] || exit 11',
    'blockfarm-exec --zero-devices "$@" || exit 12',
    `now=$(${LISTING})`,
    '[ -z "$expect" ] || [ "$now" = "$expect" ] || exit 10',
    'printf %s "$now"',
  ].join('\n');
  const args = [...stack.devices.flatMap((d) => ['--flush', d]), ...o.disks.flatMap((d) => ['--zero', d])];
  const r = await execOk(agent, ['sh', '-c', script, 'reset', o.workDir, stack.listing ?? '', ...args], o.timeoutMs, true);
  return r && quietKernel(r.kmsg) ? r.out.join('\n') : undefined;
}

/** Run a kept stack's undo steps, last set-up step first; false when one fails (the VM is then thrown away). */
export async function tearDownKeptStack(cvm: CaseVm, stack: KeptStack, timeoutMs: number): Promise<boolean> {
  const agent = cvm.vm.agent;
  if (!agent || agent.isClosed || cvm.vm.hasExited) return false;
  const deadline = Date.now() + timeoutMs;
  for (const step of [...stack.setup].reverse())
    if (step.undo && !(await execOk(agent, step.undo, deadline - Date.now()))) return false;
  return true;
}
