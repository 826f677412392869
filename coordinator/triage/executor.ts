/**
 * Where triage runs a case: the narrow interface between the minimizer,
 * the bisector and the cross-kernel view on one side and the machines on the
 * other. Locally it wraps a Target through runCase (TargetExecutor); the farm
 * implements it by queueing the case on exec-<target> and awaiting the
 * outcome, so many candidates run at once on many workers; tests use fakes.
 *
 * Contract: run() resolves with the outcome of one run of the case (it may
 * reject on an infrastructure failure; callers count that as "not shown" and
 * go on). Concurrent calls are allowed; an executor that cannot take them
 * serializes them itself (TargetExecutor does, targets build one stack at a
 * time).
 */
import { type Case, type Observation, type RunOutcome, validateCase } from '../../model/index.ts';
import { runCase } from '../../worker/run-case.ts';
import type { RunRequest, Target, TargetRun } from '../../worker/targets/target.ts';
import { Mutex } from './files.ts';

/**
 * What a target observed in the run that ended in an outcome (per-op results,
 * geometry), where the executor knows it. Reports steer the reproducer's
 * tables by it: repro.c then expects the path the kernel took in that run.
 */
const OBSERVATIONS = new WeakMap<RunOutcome, Observation>();

export function recordObservation(o: RunOutcome, obs: Observation): void {
  OBSERVATIONS.set(o, obs);
}

export function observationOf(o: RunOutcome | undefined): Observation | undefined {
  return o ? OBSERVATIONS.get(o) : undefined;
}

/** A target that remembers the observation of its last run. */
class Recording implements Target {
  last: Observation | undefined;
  constructor(private readonly inner: Target) {}
  get name(): string {
    return this.inner.name;
  }
  unsupportedReason(req: RunRequest): Promise<string | undefined> {
    return this.inner.unsupportedReason(req);
  }
  async run(req: RunRequest): Promise<TargetRun> {
    const r = await this.inner.run(req);
    this.last = r.kind === 'observed' ? r.observation : undefined;
    return r;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface Executor {
  /** What the cases run on, for reports: 'model', 'host', 'qemu:6.1.0-21-amd64'. */
  readonly name: string;
  run(c: Case, signal?: AbortSignal): Promise<RunOutcome>;
}

/** A Target run in this process, one case at a time. */
export class TargetExecutor implements Executor {
  private readonly mu = new Mutex();
  private readonly target: Recording;
  readonly name: string;

  constructor(target: Target) {
    this.target = new Recording(target);
    this.name = target.name;
  }

  run(c: Case, signal?: AbortSignal): Promise<RunOutcome> {
    return this.mu.run(async () => {
      const v = validateCase(c);
      if (!v.ok) return { kind: 'infra-error', target: this.name, message: `invalid case: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}` };
      this.target.last = undefined;
      const o = await runCase(this.target, v.value, v.info, signal);
      if (this.target.last) recordObservation(o, this.target.last);
      return o;
    });
  }
}
