/**
 * When a VM may run another case (worker/targets/qemu/warm-vm.ts): only
 * after the executor's normal end with every undo step done and a quiet
 * kernel log, and never after a plan that changes kernel settings. The VM
 * side (zeroed disks, no leftovers, fresh VMs after crashes) is in
 * target.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ExecEvent, ExecPlan } from '../../worker/executor/protocol.ts';
import { cleanRunOf, planTouchesKnobs } from '../../worker/targets/qemu/warm-vm.ts';

const normal: ExecEvent[] = [
  { ev: 'setup', step: 0, name: 'dm lin', ok: true, ms: 3 },
  { ev: 'result', op: 1, thread: 0, ret: 4096, us: 10 },
  { ev: 'undo', step: 0, name: 'dm lin', ok: true, exit: 0 },
  { ev: 'done', ok: true },
];
const exit0 = { exit: 0, signal: 0, stderr: [] as string[] };

describe('a run after which the VM may be reused', () => {
  it('is the executor ending normally with every undo done and no kernel warning', () => {
    expect(cleanRunOf(normal, exit0, ['6,301,5200,-;EXT4-fs (vda): mounted filesystem'])).toBe(true);
  });

  it('is not one with a kernel record at warning level or worse, or an unreadable one', () => {
    expect(cleanRunOf(normal, exit0, ['4,302,5300,-;some warning'])).toBe(false);
    expect(cleanRunOf(normal, exit0, ['3,303,5400,-;I/O error, dev loop0, sector 1 op 0x1:(WRITE)'])).toBe(false);
    expect(cleanRunOf(normal, exit0, ['garbage'])).toBe(false);
  });

  it('is not one whose undo failed, that timed out, was cut short, or failed a check', () => {
    expect(cleanRunOf(normal.map((e) => (e.ev === 'undo' ? { ...e, ok: false, exit: 1 } : e)), exit0, [])).toBe(false);
    expect(cleanRunOf([{ ev: 'timeout', op: 1, thread: 0, ms: 4000 }, ...normal], exit0, [])).toBe(false);
    expect(cleanRunOf(normal, { ...exit0, exit: 5 }, [])).toBe(false);
    expect(cleanRunOf(normal, { ...exit0, badLine: 'x' }, [])).toBe(false);
    expect(cleanRunOf(normal.filter((e) => e.ev !== 'done'), exit0, [])).toBe(false);
    expect(cleanRunOf([...normal.slice(0, 3), { ev: 'check', name: 'fsck', exit: 4, output: '', ms: 1 }, normal[3]!], exit0, [])).toBe(false);
  });

  it('tolerates a failed umount undo only when a check unmounted the same mount point first', () => {
    const mounted = (checks: ExecPlan['checks']): ExecPlan => ({
      version: 1, seed: 1, opTimeoutMs: 1000, geometry: [], final: [], candidates: [], threads: [[]], checks,
      setup: [{ name: 'mount fs', argv: ['mount', '-t', 'ext4', '/dev/vda', '/tmp/bf/mnt-fs'], undo: ['umount', '/tmp/bf/mnt-fs'] }],
    });
    const events: ExecEvent[] = [{ ev: 'setup', step: 0, name: 'mount fs', ok: true, ms: 5 }, { ev: 'undo', step: 0, name: 'mount fs', ok: false, exit: 32 }, { ev: 'done', ok: true }];
    expect(cleanRunOf(events, exit0, [], mounted([{ name: 'unmount fs', argv: ['umount', '/tmp/bf/mnt-fs'] }]))).toBe(true);
    expect(cleanRunOf(events, exit0, [], mounted([]))).toBe(false);
    expect(cleanRunOf(events, exit0, [], mounted([{ name: 'unmount other', argv: ['umount', '/tmp/bf/mnt-other'] }]))).toBe(false);
  });
});

describe('a plan that changes kernel settings', () => {
  const plan = (setup: ExecPlan['setup'], exec: string[][] = []): ExecPlan => ({
    version: 1, seed: 1, opTimeoutMs: 1000, setup, geometry: [], final: [], candidates: [], checks: [],
    threads: [exec.length ? [{ id: 900, kind: 'exec', argvs: exec }] : []],
  });

  it('is one that names /sys or /proc, loads modules, runs a shell or sets device properties', () => {
    expect(planTouchesKnobs(plan([], [['sh', '-c', 'echo 2 > /proc/sys/kernel/hung_task_timeout_secs']]))).toBe(true);
    expect(planTouchesKnobs(plan([{ name: 'scsi', argv: ['modprobe', 'scsi_debug'], undo: ['modprobe', '-r', 'scsi_debug'] }]))).toBe(true);
    expect(planTouchesKnobs(plan([{ name: 'ra', argv: ['blockdev', '--setra', '0', '/dev/vda'] }]))).toBe(true);
    expect(planTouchesKnobs(plan([{ name: 'q', argv: ['blockfarm-exec', '--if-exists', '/sys/block/vda/queue/scheduler', 'true'] }]))).toBe(true);
  });

  it('is not the usual device set-up', () => {
    expect(planTouchesKnobs(plan([
      { name: 'size', argv: ['blockdev', '--getsz', '/dev/vda'], capture: 'sz' },
      { name: 'dm lin', argv: ['dmsetup', 'create', 'bf1-lin', '--table', '0 ${sz} linear /dev/vda 0'], undo: ['dmsetup', 'remove', 'bf1-lin'] },
    ], [['dmsetup', 'suspend', 'bf1-lin']]))).toBe(false);
  });
});
