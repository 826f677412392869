/**
 * The `host` target: this machine's own kernel, as root, through the native
 * executor. Opt-in only (a bug found here can take the machine down). It
 * creates only its own loop devices and mounts, all under one fresh run
 * directory, and removes them on every path: when the executor undoes its
 * set-up itself, and when it was killed or hung (then from the set-up events
 * it streamed, and a sweep for anything still backed by or mounted under
 * the run directory).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { layerModule } from '../../../model/index.ts';
import type { ExecEvent, ExecPlan } from '../../executor/protocol.ts';
import { compilePlan } from '../../plan/compile.ts';
import { makeSetupEnv } from '../../plan/env.ts';
import type { RunRequest, Target, TargetRun } from '../target.ts';
import { HostCapabilities } from './capabilities.ts';
import { KmsgCursor } from './kmsg.ts';
import { sweepRunDir, undoRemaining } from './teardown.ts';
import { type ExecOutcome, interpretEvents } from '../exec-events.ts';

export interface HostTargetOptions {
  /** Parent of the per-run directories. */
  workRoot: string;
  /** Path of the built executor. */
  executor: () => Promise<string>;
  /** Whole-case limit before the executor is stopped and the case counted as hung. */
  caseTimeoutMs?: number;
  opTimeoutMs?: number;
  /**
   * Tests only: rewrite the compiled plan before it runs, to inject faults
   * the model is not told about (corrupting a backing file behind a loop
   * device) and prove the oracle catches them.
   */
  planHookForTests?: (plan: ExecPlan) => ExecPlan;
}

export class HostTarget implements Target {
  readonly name = 'host';

  private readonly caps = new HostCapabilities();

  constructor(private readonly opts: HostTargetOptions) {}

  async unsupportedReason(req: RunRequest): Promise<string | undefined> {
    for (const l of req.info.layers) {
      const m = layerModule(l);
      const needs = m.needs(l);
      for (const x of needs.modules) if (!(await this.caps.hasModule(x))) return `this kernel has no ${x} (needed by ${l.kind} layer '${l.id}')`;
      for (const x of needs.tools) if (!(await this.caps.hasTool(x))) return `${x} is not installed (needed by ${l.kind} layer '${l.id}')`;
      if (!m.setup) return `the host target cannot build ${l.kind} layers ('${l.id}')`;
    }
    return undefined;
  }

  async run(req: RunRequest): Promise<TargetRun> {
    await mkdir(this.opts.workRoot, { recursive: true });
    const runDir = await mkdtemp(join(this.opts.workRoot, 'run-'));
    const env = makeSetupEnv({ workDir: runDir, namePrefix: `bf-${basename(runDir).slice(4)}-`, seed: req.theCase.seed, info: req.info, disks: 'loop-file' });
    const compiled = compilePlan(req.theCase, req.info, env, { opTimeoutMs: this.opts.opTimeoutMs });
    if (!compiled.ok) {
      await rm(runDir, { recursive: true, force: true });
      return { kind: 'unsupported', reason: compiled.unsupported };
    }
    const kmsg = KmsgCursor.open();
    let events: ExecEvent[] = [];
    let outcome: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; badLine?: string; stderr: string };
    try {
      const exe = await this.opts.executor();
      const plan = this.opts.planHookForTests ? this.opts.planHookForTests(compiled.plan) : compiled.plan;
      ({ events, outcome } = await this.execute(exe, plan, req.signal));
    } catch (err) {
      await this.cleanUp(runDir, compiled.plan, events);
      kmsg?.close();
      return { kind: 'infra-error', message: `host executor: ${(err as Error).message}` };
    }
    const leftovers = await this.cleanUp(runDir, compiled.plan, events);
    const kernelLog = kmsg?.read() ?? [];
    kmsg?.close();
    return this.interpret(events, outcome, kernelLog, leftovers);
  }

  async close(): Promise<void> {}

  private execute(exe: string, plan: ExecPlan, signal?: AbortSignal) {
    return new Promise<{ events: ExecEvent[]; outcome: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; badLine?: string; stderr: string } }>((resolve, reject) => {
      const child = spawn(exe, [], { stdio: ['pipe', 'pipe', 'pipe'] });
      const events: ExecEvent[] = [];
      let badLine: string | undefined;
      let timedOut = false;
      let stderr = '';
      const stop = () => {
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      };
      const timer = setTimeout(() => {
        timedOut = true;
        stop();
      }, this.opts.caseTimeoutMs ?? 600_000);
      signal?.addEventListener('abort', stop, { once: true });
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          events.push(JSON.parse(line) as ExecEvent);
        } catch {
          badLine ??= line.slice(0, 200);
        }
      });
      child.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 65536) stderr += d.toString();
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        if (code === 2) reject(new Error(`the executor rejected the plan: ${stderr.trim().split('\n').pop() ?? ''}`));
        else resolve({ events, outcome: { code, signal: sig, timedOut, badLine, stderr } });
      });
      child.stdin.on('error', () => {}); // a dead executor shows up in 'close'
      child.stdin.end(JSON.stringify(plan));
    });
  }

  /** Undo what the executor could not, then sweep; returns what is still left (nothing, normally). */
  private async cleanUp(runDir: string, plan: ExecPlan, events: ExecEvent[]): Promise<string[]> {
    await undoRemaining(plan, events);
    const left = await sweepRunDir(runDir);
    if (left.length === 0) await rm(runDir, { recursive: true, force: true });
    return left;
  }

  private interpret(
    events: ExecEvent[],
    outcome: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; badLine?: string; stderr: string },
    kernelLog: string[],
    leftovers: string[],
  ): TargetRun {
    if (leftovers.length) return { kind: 'infra-error', message: `could not tear down: ${leftovers.join('; ')}`, kernelLog };
    const exec: ExecOutcome = {
      exit: outcome.code ?? -1,
      signal: outcome.signal,
      timedOut: outcome.timedOut,
      badLine: outcome.badLine,
      stderr: outcome.stderr.trim().split('\n'),
    };
    return interpretEvents(this.name, events, exec, kernelLog, '');
  }
}
