/**
 * The `qemu:<kernel>` target: a case runs in a VM restored from a prepared
 * state (states.ts) for its disks' geometry, through the guest agent and the
 * native executor. The VM then runs the next cases of the same geometry, up
 * to `maxCasesPerVm`, as long as each ends cleanly (warm-vm.ts says when:
 * executor exit 0, every undo step done, no kernel log record at warning
 * level or worse, no set-up that writes kernel knobs, and afterwards no
 * device, mount or file left and the case's disks zeroed); anything else
 * and the VM is thrown away, the next case getting a fresh one. A warm VM
 * saves the restore and, under TCG, translating the guest's code again.
 * Crash and hang detection:
 *
 * - the serial console is scanned while the case runs (console-watch.ts):
 *   a panic/Oops/BUG ends the case as a crash, a hung-task (soft lockup,
 *   RCU stall) report as a hang, with the console log;
 * - the executor's own op timeout is a hang, as on the host;
 * - the agent is pinged while the case runs; one that stops answering
 *   within the (TCG-scaled) silence limit is a hang;
 * - QEMU exiting mid-case is a crash when the console explains it, else an
 *   infrastructure error;
 * - a VM that does not come up (boot, restore, agent) is an infrastructure
 *   error, never a finding.
 *
 * The kernel log judged by the oracle is the guest's /dev/kmsg records of
 * the run (all levels), sent by the agent after the executor ends.
 */
import { readFileSync } from 'node:fs';
import { type Case, layerModule, stackReusable } from '../../../model/index.ts';
import type { GuestImage } from '../../../infra/guest/build.ts';
import type { KernelConfig } from '../../../infra/kernels/config.ts';
import type { FetchedKernel } from '../../../infra/kernels/store.ts';
import type { KernelSymbolizer } from '../../kernel-log/kernel-symbols.ts';
import { symbolizeRun } from '../symbolize-run.ts';
import type { ExecEvent, ExecPlan } from '../../executor/protocol.ts';
import { compilePlan } from '../../plan/compile.ts';
import { makeSetupEnv } from '../../plan/env.ts';
import { reportText } from '../../kernel-log/parse.ts';
import type { RunRequest, Target, TargetRun } from '../target.ts';
import type { StackInfo } from '../../../model/index.ts';
import { AgentError } from './agent-channel.ts';
import { ConsoleWatch } from './console-watch.ts';
import { type ExecOutcome, interpretEvents } from '../exec-events.ts';
import { type CaseVm, type DiskGeometry, VmFactory, slotsFor } from './states.ts';
import { type GuestBaseline, type KeptStack, cleanRunOf, guestBaseline, planTouchesKnobs, resetForNextCase, resetKeptStack, tearDownKeptStack } from './warm-vm.ts';

export interface QemuTargetOptions {
  kernel: FetchedKernel;
  image: GuestImage;
  factory: VmFactory;
  /** Own kernels (added, built): their .config, checked for what a case's layers need. */
  kernelConfig?: KernelConfig;
  /** Symbolizes kernel output when the kernel has a System.map (or debug vmlinux). */
  symbolizer?: KernelSymbolizer;
  /** Per-op limit inside the executor. @defaultValue 120000 under TCG, 60000 under KVM */
  opTimeoutMs?: number;
  /** Whole-case limit. @defaultValue 900000 */
  caseTimeoutMs?: number;
  /** The agent must answer a ping within this while a case runs. @defaultValue 60000 under TCG */
  agentSilenceMs?: number;
  /** @defaultValue 5000 */
  pingEveryMs?: number;
  /** Keep one restored VM waiting for the next case. @defaultValue true */
  spare?: boolean;
  /**
   * Tests only: rewrite the compiled plan before it runs (inject a fault the
   * model is not told about, or a step that crashes the guest), given the
   * VM's disk devices.
   */
  planHookForTests?: (plan: ExecPlan, ctx: { devices: string[] }) => ExecPlan;
  /** Tests only: called with the VM once it is ready, before the plan runs. */
  vmHookForTests?: (vm: CaseVm) => Promise<void> | void;
  /** Tests only: called with the VM and the run's result before the VM is thrown away (look for leftovers). */
  inspectForTests?: (vm: CaseVm, run: TargetRun) => Promise<void> | void;
  /** After an op timed out, how long the executor may take to undo and exit before the case is a hang anyway. @defaultValue 15000 */
  hangGraceMs?: number;
  /**
   * Cases one VM may run, one after another, when each ends cleanly (1: a
   * fresh VM for every case). Capped so that kernel state cannot drift for long.
   * @defaultValue 16
   */
  maxCasesPerVm?: number;
  /**
   * Leave a case's stack standing in the kept VM for the next case that
   * builds the identical one, when model/stack-reuse.ts allows it (between
   * the programs its disks are zeroed and its caches emptied). Off with
   * planHookForTests (the hook rewrites set-up). @defaultValue true
   */
  reuseStacks?: boolean;
}

/** A VM kept after a clean case for the next case of the same geometry. */
interface WarmVm {
  cvm: CaseVm;
  /** Current size of each slot the cases used. */
  sizes: number[];
  /** Cases it has run. */
  cases: number;
  /** Its QEMU's CPU time when the last case ended (the next case's share starts there). */
  cpuMs?: number;
  /** The last case's stack, left standing and reset for a next program on it. */
  stack?: KeptStack;
}

/** How a case's VM went, for benchmarks and debugging. */
export interface QemuRunStats {
  /** 'reused': the VM of the previous case, reset in place. */
  how: CaseVm['how'] | 'reused';
  /** PID of the case's QEMU (the same for cases run in one VM). */
  vmPid?: number;
  /** This case's number in its VM (1 for a fresh VM). */
  caseInVm: number;
  /** The case ran its program on the previous case's stack (no set-up of its own). */
  stackReused: boolean;
  readyMs: number;
  execMs: number;
  /** CPU time (user + system) of the case's QEMU: over its life (restore, case) for a fresh VM, since the previous case ended (its reset, this case) for a reused one; when /proc tells. */
  qemuCpuMs?: number;
}

/** CPU time of a process so far, from /proc/PID/stat (utime + stime, in clock ticks of 10 ms). */
function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Guest directory under which runs put mount points and files. */
export const GUEST_WORK_DIR = '/tmp/bf';

export class QemuTarget implements Target {
  readonly name: string;
  private seq = 0;
  /** The last run's VM figures. */
  lastStats?: QemuRunStats;
  private readonly releasing = new Set<Promise<void>>();
  /** The previous case's VM, once it is known whether it may be reused. */
  private warm?: Promise<WarmVm | undefined>;
  /** The guest's devices and mounts right after a restore, per state key. */
  private readonly baselines = new Map<string, GuestBaseline>();
  /** VMs this target has run cases in (a reused VM counts once). */
  vmsUsed = 0;
  /** Cases that ran on the previous case's stack. */
  stacksReused = 0;
  /** Why the last VMs were not kept for the next case (newest last, at most 20): for tests and debugging. */
  readonly discarded: string[] = [];

  get lastRunReusedStack(): boolean {
    return this.lastStats?.stackReused ?? false;
  }
  private readonly stackKeys = new WeakMap<Case, string | null>();

  constructor(private readonly opts: QemuTargetOptions) {
    this.name = `qemu:${opts.kernel.info.id}`;
  }

  private get tcg(): boolean {
    return this.opts.factory.cfg.accel === 'tcg';
  }

  async unsupportedReason(req: RunRequest): Promise<string | undefined> {
    const m = this.opts.image.manifest;
    const have = new Set([...m.modules.inImage, ...m.modules.builtin]);
    const tools = new Set(m.tools);
    const id = this.opts.kernel.info.id;
    for (const l of req.info.layers) {
      const mod = layerModule(l);
      if (!mod.setup) return `the qemu target cannot build ${l.kind} layers ('${l.id}')`;
      const needs = mod.needs(l);
      const cfg = this.opts.kernelConfig;
      const lacks = cfg?.firstMissing(needs.config);
      if (lacks) return `kernel ${id} lacks CONFIG_${lacks} (needed by ${l.kind} layer '${l.id}'; not set in its config)`;
      // Built in per its config, or a kernel without a module tree: nothing to find in the image.
      const builtIn = cfg ? needs.config.every((o) => cfg.builtIn(o)) : !this.opts.kernel.hasModules;
      if (!builtIn) for (const x of needs.modules)
        if (!have.has(x.replace(/-/g, '_'))) return `kernel ${id} has no ${x} module (needed by ${l.kind} layer '${l.id}'${needs.config.length ? `; CONFIG_${needs.config[needs.config.length - 1]}` : ''})`;
      for (const t of needs.tools) if (!tools.has(t)) return `the guest image has no ${t} (needed by ${l.kind} layer '${l.id}')`;
    }
    return undefined;
  }

  /**
   * A kept VM serves the next case only when its VM state (disk geometry) is
   * the same, and its stack only when the next case builds the same one.
   */
  runOrderKey(info: StackInfo, theCase?: Case): string {
    const vm = this.opts.factory.keyOf(slotsFor(diskGeometriesOf(info)));
    return theCase ? `${vm}|${this.stackKeyOf(theCase, info) ?? ''}` : vm;
  }

  /**
   * The key of the stack this case may leave standing for the next program
   * (model/stack-reuse.ts), or undefined: its set-up compiled with fixed
   * names, and its disks' sizes and geometry.
   */
  private stackKeyOf(theCase: Case, info: StackInfo): string | undefined {
    const known = this.stackKeys.get(theCase);
    if (known !== undefined) return known ?? undefined;
    let key: string | undefined;
    if (this.opts.reuseStacks !== false && !this.opts.planHookForTests && (this.opts.maxCasesPerVm ?? 16) > 1 && stackReusable(theCase, info)) {
      const disks = info.layers.filter((l) => l.kind === 'disk');
      const slot = new Map(disks.map((d, i) => [d.id, i]));
      const env = makeSetupEnv({ workDir: GUEST_WORK_DIR, namePrefix: 'bf0-', seed: theCase.seed, info, disks: 'virtio', diskDevice: (id) => `disk${slot.get(id)}` });
      const compiled = compilePlan(theCase, info, env);
      if (compiled.ok && compiled.plan.checks.length === 0) {
        const p = compiled.plan;
        // A program on the kept stack runs without set-up, so nothing after set-up may use its ${captures}
        // (sizes for tables): device names are fixed, and so must be the undo steps the target runs itself.
        const after = JSON.stringify([p.threads, p.geometry, p.final, p.setup.map((s) => s.undo ?? [])]);
        if (!after.includes('${')) key = JSON.stringify({ setup: p.setup, disks: diskGeometriesOf(info), sizes: disks.map((d) => d.size) });
      }
    }
    this.stackKeys.set(theCase, key ?? null);
    return key;
  }

  async run(req: RunRequest): Promise<TargetRun> {
    const diskLayers = req.info.layers.filter((l) => l.kind === 'disk');
    const geoms = diskGeometriesOf(req.info);
    const sizes = diskLayers.map((d) => d.size);
    const slot = new Map(diskLayers.map((d, i) => [d.id, i]));
    const maxCases = this.opts.maxCasesPerVm ?? 16;
    const stackKey = this.stackKeyOf(req.theCase, req.info);
    const t0 = performance.now();
    const got = await this.vmFor(geoms, sizes, maxCases, stackKey);
    if ('error' in got) return { kind: 'infra-error', message: `${this.name}: ${got.error}` };
    const { cvm, reused } = got;
    // Set only when the kept VM's stack is this case's own (vmFor tears a different one down).
    const onStack = reused?.stack;
    let kept: KeptStack | undefined;
    const readyMs = Math.round(performance.now() - t0);
    const caseInVm = reused ? reused.cases + 1 : 1;
    const cpuBefore = reused?.cpuMs;
    let result: TargetRun | undefined;
    let clean = false;
    let plan: ExecPlan | undefined;
    try {
      const namePrefix = onStack?.namePrefix ?? `bf${++this.seq}-`;
      const env = makeSetupEnv({
        workDir: GUEST_WORK_DIR,
        namePrefix,
        seed: req.theCase.seed,
        info: req.info,
        disks: 'virtio',
        diskDevice: (id) => cvm.devices[slot.get(id) ?? -1] ?? `/dev/missing-${id}`,
      });
      const compiled = compilePlan(req.theCase, req.info, env, { opTimeoutMs: this.opts.opTimeoutMs ?? (this.tcg ? 120_000 : 60_000) });
      if (!compiled.ok) return { kind: 'unsupported', reason: compiled.unsupported };
      plan = this.opts.planHookForTests ? this.opts.planHookForTests(compiled.plan, { devices: cvm.devices }) : compiled.plan;
      if (stackKey !== undefined) {
        kept = {
          key: stackKey,
          namePrefix,
          setup: onStack?.setup ?? compiled.plan.setup,
          devices: req.info.layers.filter((l) => l.kind !== 'disk').map((l) => env.devicePath(l.id)),
          listing: onStack?.listing,
          programs: (onStack?.programs ?? 0) + 1,
        };
        // The executor leaves the stack standing at the normal end; on the kept stack it builds nothing.
        plan = { ...plan, keepStack: true, ...(onStack ? { setup: [] } : {}) };
        if (onStack) this.stacksReused++;
      }
      await this.opts.vmHookForTests?.(cvm);
      const ran = await this.execute(cvm, plan, req.signal);
      clean = ran.clean;
      result = await symbolizeRun(ran.run, this.opts.symbolizer);
      await this.opts.inspectForTests?.(cvm, result);
      return result;
    } finally {
      const cpuNow = cpuMsOf(cvm.vm.pid);
      this.lastStats = {
        how: reused ? 'reused' : cvm.how,
        vmPid: cvm.vm.pid,
        caseInVm,
        stackReused: onStack !== undefined,
        readyMs: reused ? readyMs : cvm.readyMs,
        execMs: Math.round(performance.now() - t0),
        qemuCpuMs: cpuNow === undefined ? undefined : cpuNow - (cpuBefore ?? 0),
      };
      // Reset the VM for the next case (or kill it) while the caller judges the run; the next run waits for it.
      const why = !clean
        ? `the run did not end cleanly (${result?.kind ?? 'no result'})`
        : result?.kind !== 'observed'
          ? `the run ended as ${result?.kind ?? 'nothing'}`
          : caseInVm >= maxCases
            ? `the VM ran its ${maxCases} cases`
            : plan === undefined || planTouchesKnobs(plan)
              ? 'the plan changes kernel settings'
              : this.warm
                ? 'another VM is kept already'
                : undefined;
      // One VM is kept at most (runs at once: the others' VMs go).
      if (why === undefined) this.warm = this.keepWarm(cvm, sizes, caseInVm, kept);
      else void this.discard(cvm, why);
    }
  }

  /** The previous case's VM when it was kept and fits (same state key), else a fresh one from the factory. */
  private async vmFor(geoms: DiskGeometry[], sizes: number[], maxCases: number, stackKey: string | undefined): Promise<{ cvm: CaseVm; reused?: WarmVm } | { error: string }> {
    // Taken before waiting: of two runs at once, only one gets the kept VM.
    const pending = this.warm;
    this.warm = undefined;
    const prev = await pending;
    if (prev && maxCases > 1 && prev.cvm.key === this.opts.factory.keyOf(slotsFor(geoms)) && !prev.cvm.vm.hasExited) {
      // The same stack (same set-up, sizes and geometry): the program runs on it as it stands.
      if (prev.stack && prev.stack.key === stackKey) return { cvm: prev.cvm, reused: prev };
      if (prev.stack && !(await this.tearDownStack(prev))) {
        await this.discard(prev.cvm, 'tearing its kept stack down failed');
        return this.freshVm(geoms, sizes, maxCases);
      }
      try {
        await this.opts.factory.resizeRunning(prev.cvm, prev.sizes, sizes);
        return { cvm: prev.cvm, reused: prev };
      } catch {
        // Fall through to a fresh VM.
      }
    }
    if (prev) await this.discard(prev.cvm, 'it cannot serve the next case (another disk geometry, a failed resize, or QEMU exited)');
    return this.freshVm(geoms, sizes, maxCases);
  }

  /** Tear a kept VM's stack down and reset the VM as after any case; false when either fails. */
  private async tearDownStack(w: WarmVm): Promise<boolean> {
    const stack = w.stack!;
    w.stack = undefined;
    const baseline = this.baselines.get(w.cvm.key);
    const timeoutMs = this.tcg ? 60_000 : 20_000;
    return (
      baseline !== undefined &&
      (await tearDownKeptStack(w.cvm, stack, timeoutMs)) &&
      (await resetForNextCase(w.cvm, baseline, { workDir: GUEST_WORK_DIR, disks: w.cvm.devices.slice(0, w.sizes.length), timeoutMs }))
    );
  }

  private async freshVm(geoms: DiskGeometry[], sizes: number[], maxCases: number): Promise<{ cvm: CaseVm } | { error: string }> {
    try {
      const cvm = await this.opts.factory.acquire(geoms, sizes, { spare: this.opts.spare !== false });
      this.vmsUsed++;
      if (maxCases > 1 && !this.baselines.has(cvm.key)) {
        // What a restored guest holds before any case: what a reset VM must show again.
        const b = await guestBaseline(cvm).catch(() => undefined);
        if (b) this.baselines.set(cvm.key, b);
      }
      return { cvm };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /** Reset a VM after a clean case (leftovers checked, disks zeroed; a kept stack reset in place); kill it when that fails. */
  private async keepWarm(cvm: CaseVm, sizes: number[], cases: number, stack?: KeptStack): Promise<WarmVm | undefined> {
    if (stack) {
      const listing = await resetKeptStack(cvm, stack, { workDir: GUEST_WORK_DIR, disks: cvm.devices.slice(0, sizes.length), timeoutMs: this.tcg ? 60_000 : 20_000 });
      if (listing === undefined) return this.discard(cvm, 'resetting its kept stack failed');
      return { cvm, sizes: [...sizes], cases, cpuMs: cpuMsOf(cvm.vm.pid), stack: { ...stack, listing: stack.listing ?? listing } };
    }
    const baseline = this.baselines.get(cvm.key);
    const ok = baseline !== undefined && (await resetForNextCase(cvm, baseline, { workDir: GUEST_WORK_DIR, disks: cvm.devices.slice(0, sizes.length), timeoutMs: this.tcg ? 60_000 : 20_000 }));
    if (!ok) return this.discard(cvm, 'its reset failed');
    return { cvm, sizes: [...sizes], cases, cpuMs: cpuMsOf(cvm.vm.pid) };
  }

  /** Kill a VM (close() waits for it). */
  private discard(cvm: CaseVm, why?: string): Promise<undefined> {
    if (why) {
      this.discarded.push(why);
      if (this.discarded.length > 20) this.discarded.shift();
    }
    const r = this.opts.factory.release(cvm).finally(() => this.releasing.delete(r));
    this.releasing.add(r);
    return r.then(() => undefined);
  }

  /** Run the plan; `clean`: it ended in a way that allows the VM to be reused (see cleanRunOf). */
  private async execute(cvm: CaseVm, plan: ExecPlan, signal?: AbortSignal): Promise<{ run: TargetRun; clean: boolean }> {
    let clean = false;
    const run = await this.executeRun(cvm, plan, signal, () => (clean = true));
    return { run, clean };
  }

  private async executeRun(cvm: CaseVm, plan: ExecPlan, signal: AbortSignal | undefined, markClean: () => void): Promise<TargetRun> {
    const { vm } = cvm;
    const agent = vm.agent!;
    const watch = new ConsoleWatch(vm.console);
    const events: ExecEvent[] = [];
    let badLine: string | undefined;
    const timers: NodeJS.Timeout[] = [];
    let onTimeoutEvent: (() => void) | undefined;
    try {
      const run = agent.start(['blockfarm-exec'], JSON.stringify(plan), {
        kmsg: true,
        keepOut: false,
        onOut: (line) => {
          try {
            const e = JSON.parse(line) as ExecEvent;
            events.push(e);
            if (e.ev === 'timeout') onTimeoutEvent?.();
          } catch {
            badLine ??= line.slice(0, 200);
          }
        },
      });
      type End =
        | { k: 'done'; r: Awaited<typeof run.done> }
        | { k: 'console' }
        | { k: 'exit' }
        | { k: 'timeout' }
        | { k: 'silent'; why: string }
        | { k: 'abort' }
        | { k: 'lost'; why: string };
      const ends: Array<Promise<End>> = [
        run.done.then(
          (r): End => ({ k: 'done', r }),
          (e: Error): End => ({ k: 'lost', why: e.message }),
        ),
        watch.verdict.then((): End => ({ k: 'console' })),
        vm.exited.then((): End => ({ k: 'exit' })),
        new Promise<End>((resolve) => timers.push(setTimeout(() => resolve({ k: 'timeout' }), this.opts.caseTimeoutMs ?? 900_000))),
        this.liveness(agent, timers),
      ];
      if (signal) ends.push(new Promise<End>((resolve) => signal.addEventListener('abort', () => resolve({ k: 'abort' }), { once: true })));
      // An op timeout: the executor reports it, undoes and exits; a thread stuck in the kernel can keep it from exiting.
      ends.push(
        new Promise<End>((resolve) => {
          onTimeoutEvent = () => {
            onTimeoutEvent = undefined;
            timers.push(setTimeout(() => resolve({ k: 'timeout' }), this.opts.hangGraceMs ?? 15_000));
          };
        }),
      );
      const end = await Promise.race(ends);
      const consoleNow = () => watch.text();
      switch (end.k) {
        case 'done': {
          const v = watch.settle();
          if (v) return this.fromConsole(v.kind, v.report, v.log);
          const outcome: ExecOutcome = { exit: end.r.exit, signal: end.r.signal, badLine, stderr: end.r.err };
          if (cleanRunOf(events, outcome, end.r.kmsg, plan)) markClean();
          return interpretEvents(this.name, events, outcome, end.r.kmsg, consoleNow());
        }
        case 'console': {
          const v = watch.settle()!;
          return this.fromConsole(v.kind, v.report, v.log);
        }
        case 'exit':
        case 'lost': {
          // Give the console a moment: QEMU exits right after a panic's last lines.
          await new Promise((r) => setTimeout(r, 200));
          const v = watch.settle();
          if (v) return this.fromConsole(v.kind, v.report, v.log);
          const ex = await Promise.race([vm.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
          const what = ex ? `QEMU exited (${ex.code ?? ex.signal}) during the case` : `the agent connection was lost (${end.k === 'lost' ? end.why : ''})`;
          return { kind: 'infra-error', message: `${what} without a kernel report; ${vm.stderrTail() || 'console: ' + consoleNow().trim().split('\n').slice(-3).join(' | ')}` };
        }
        case 'timeout':
        case 'silent': {
          const title =
            end.k === 'silent'
              ? `hang: the guest agent stopped answering (${end.why})`
              : events.find((e) => e.ev === 'timeout')
                ? `hang: op ${(events.find((e) => e.ev === 'timeout') as Extract<ExecEvent, { ev: 'timeout' }>).op} did not complete and the executor could not finish`
                : 'hang: the case did not complete in time';
          const blocked = await this.blockedTasks(cvm, end.k !== 'silent');
          const v = watch.settle();
          if (v && v.kind === 'crash') return this.fromConsole(v.kind, v.report, v.log);
          return { kind: 'hang', title, log: [consoleNow(), blocked].filter(Boolean).join('\n') };
        }
        case 'abort':
          agent.kill(run.id, 15);
          return { kind: 'infra-error', message: 'the run was aborted' };
      }
      return { kind: 'infra-error', message: 'internal: unhandled end of a run' };
    } catch (err) {
      if (err instanceof AgentError) return { kind: 'infra-error', message: `${this.name}: ${err.message}` };
      throw err;
    } finally {
      for (const t of timers) clearTimeout(t);
      watch.close();
    }
  }

  private fromConsole(kind: 'crash' | 'hang', report: Parameters<typeof reportText>[0], log: string): TargetRun {
    return { kind, title: report.title, log: log || reportText(report) };
  }

  /** Resolves when the agent fails to answer a ping within the silence limit. */
  private liveness(agent: NonNullable<CaseVm['vm']['agent']>, timers: NodeJS.Timeout[]): Promise<{ k: 'silent'; why: string }> {
    const silence = this.opts.agentSilenceMs ?? (this.tcg ? 60_000 : 20_000);
    const every = this.opts.pingEveryMs ?? 5000;
    return new Promise((resolve) => {
      const tick = () => {
        if (agent.isClosed) return;
        agent.ping(silence, silence).then(
          () => timers.push(setTimeout(tick, every)),
          (e: Error) => {
            if (!agent.isClosed) resolve({ k: 'silent', why: e.message });
          },
        );
      };
      timers.push(setTimeout(tick, every));
    });
  }

  /** Ask the kernel to list blocked tasks (sysrq w) and return what the console showed. */
  private async blockedTasks(cvm: CaseVm, agentAlive: boolean): Promise<string> {
    const agent = cvm.vm.agent;
    if (!agentAlive || !agent || agent.isClosed || cvm.vm.hasExited) return '';
    const mark = cvm.vm.console.mark();
    try {
      // The task list is printed at KERN_INFO: raise the console's level around it (sysrq 7, then back to 5).
      agent.sysrq('7');
      agent.sysrq('w');
      await new Promise((r) => setTimeout(r, this.tcg ? 2000 : 500));
      agent.sysrq('5');
    } catch {
      return '';
    }
    return cvm.vm.console.text(mark);
  }

  async close(): Promise<void> {
    const warm = await this.warm;
    this.warm = undefined;
    if (warm) await this.discard(warm.cvm);
    await Promise.all([...this.releasing]);
    await this.opts.factory.close();
  }
}

/** The case's disks in stack order, as the VM presents them. */
function diskGeometriesOf(info: StackInfo): DiskGeometry[] {
  return info.layers.flatMap((d) => (d.kind === 'disk' ? [{ logicalBlockSize: d.logicalBlockSize, physicalBlockSize: d.physicalBlockSize ?? d.logicalBlockSize }] : []));
}
