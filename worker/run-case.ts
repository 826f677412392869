/**
 * Run one case on one target and judge it: validate, check the target can
 * build it, run, and hand the observation to the oracle. Every path ends in a
 * RunOutcome; nothing here throws for a bad case, a kernel or a target.
 */
import { type Case, type RunOutcome, type StackInfo, judgeObservation } from '../model/index.ts';
import type { Target } from './targets/target.ts';

export async function runCase(target: Target, theCase: Case, info: StackInfo, signal?: AbortSignal): Promise<RunOutcome> {
  const started = performance.now();
  const req = { theCase, info, signal };
  const why = target.unsupportedReason(req);
  if (why) return { kind: 'unsupported', target: target.name, reason: why };
  let run;
  try {
    run = await target.run(req);
  } catch (err) {
    return { kind: 'infra-error', target: target.name, message: (err as Error).message };
  }
  const durationMs = Math.round(performance.now() - started);
  switch (run.kind) {
    case 'unsupported': return { kind: 'unsupported', target: target.name, reason: run.reason };
    case 'infra-error': return { kind: 'infra-error', target: target.name, message: run.message };
    case 'crash': return { kind: 'crash', target: target.name, title: run.title, log: run.log, durationMs };
    case 'hang': return { kind: 'hang', target: target.name, title: run.title, log: run.log, durationMs };
    case 'observed': {
      const answer = judgeObservation(theCase, info, run.observation);
      if (answer.incomplete !== undefined) return { kind: 'infra-error', target: target.name, message: answer.incomplete };
      return answer.verdict === 'pass'
        ? { kind: 'pass', target: target.name, notes: answer.notes, durationMs }
        : { kind: 'divergence', target: target.name, divergences: answer.divergences, notes: answer.notes, durationMs };
    }
  }
}
