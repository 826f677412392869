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
import { type Case, type RunOutcome, validateCase } from '../../model/index.ts';
import { runCase } from '../../worker/run-case.ts';
import type { Target } from '../../worker/targets/target.ts';
import { Mutex } from './files.ts';

export interface Executor {
  /** What the cases run on, for reports: 'model', 'host', 'qemu:6.1.0-21-amd64'. */
  readonly name: string;
  run(c: Case, signal?: AbortSignal): Promise<RunOutcome>;
}

/** A Target run in this process, one case at a time. */
export class TargetExecutor implements Executor {
  private readonly mu = new Mutex();
  readonly name: string;

  constructor(private readonly target: Target) {
    this.name = target.name;
  }

  run(c: Case, signal?: AbortSignal): Promise<RunOutcome> {
    return this.mu.run(async () => {
      const v = validateCase(c);
      if (!v.ok) return { kind: 'infra-error', target: this.name, message: `invalid case: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}` };
      return runCase(this.target, v.value, v.info, signal);
    });
  }
}
