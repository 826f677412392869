/**
 * The contract between a farm worker and its runner children
 * (worker/farm/runner-child.ts), over Node's IPC channel (advanced
 * serialization). A runner is a child process that holds the targets and runs
 * batches one at a time, so a target that crashes (a native crash, an
 * exception, running out of memory) kills the runner, fails that job and
 * leaves the worker alive.
 *
 * Start: the worker forks the runner with BLOCKFARM_RUNNER_OPTIONS = JSON
 * RunnerOptions in its environment (what a job may never choose: whether the
 * host target is allowed, the data directory). The runner answers
 * { t: 'ready' } once loaded.
 *
 * worker -> runner
 *   { t: 'batch', batch, target, caseTimeoutMs, cases }   run these cases (CaseEnvelope[])
 *   { t: 'abort', batch }                                  stop after the case in progress
 * runner -> worker
 *   { t: 'ready' }
 *   { t: 'invalid', batch, problems: [{ index, id, issues: ['path: message'] }] }
 *                    some case failed validation; nothing ran
 *   { t: 'refused', batch, message }   the target will not run here (TargetRefused)
 *   { t: 'results', batch, results }   results so far (flushed every FLUSH_MS and at the end)
 *   { t: 'done', batch, targetMs, aborted }   the batch is over (aborted: stopped early)
 *   { t: 'failed', batch, message }    the target or the runner failed (infrastructure)
 * The worker treats the runner's exit during a batch as a failure of that
 * batch naming the first case without a result.
 */
import type { CaseEnvelope, CaseResult } from './protocol.ts';

export const RUNNER_OPTIONS_ENV = 'BLOCKFARM_RUNNER_OPTIONS';
export const FLUSH_MS = 20;

export interface RunnerOptions {
  allowHost: boolean;
  dataDir?: string;
}

export type ToRunner =
  | { t: 'batch'; batch: string; target: string; caseTimeoutMs: number; cases: CaseEnvelope[] }
  | { t: 'abort'; batch: string };

export interface CaseProblemLine {
  index: number;
  id: string;
  issues: string[];
}

export type FromRunner =
  | { t: 'ready' }
  | { t: 'invalid'; batch: string; problems: CaseProblemLine[] }
  | { t: 'refused'; batch: string; message: string }
  | { t: 'results'; batch: string; results: CaseResult[] }
  | { t: 'done'; batch: string; targetMs: number; aborted: boolean }
  | { t: 'failed'; batch: string; message: string };
