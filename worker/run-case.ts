/**
 * Run one case on one target and judge it: validate, check the target can
 * build it, run, and hand the observation to the oracle. Every path ends in a
 * RunOutcome; nothing here throws for a bad case, a kernel or a target.
 */
import { type Case, type Divergence, type RunOutcome, type StackInfo, judgeObservation } from '../model/index.ts';
import { judgeChecks, judgeKernelLog } from './judge/kernel-findings.ts';
import { reportText } from './kernel-log/parse.ts';
import { POST_RUN_OP_BASE } from './plan/compile.ts';
import type { Target } from './targets/target.ts';

export async function runCase(target: Target, theCase: Case, info: StackInfo, signal?: AbortSignal): Promise<RunOutcome> {
  const started = performance.now();
  const req = { theCase, info, signal };
  const why = await target.unsupportedReason(req);
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
    case 'infra-error': {
      // A set-up step or the executor failing because the kernel crashed is a crash, not an infrastructure error.
      const k = judgeKernelLog(theCase, info, run.kernelLog ?? []);
      if (k.crash) return { kind: 'crash', target: target.name, title: k.crash.title, log: reportText(k.crash), durationMs };
      return { kind: 'infra-error', target: target.name, message: run.message };
    }
    case 'crash': return { kind: 'crash', target: target.name, title: run.title, log: run.log, durationMs };
    case 'hang': return { kind: 'hang', target: target.name, title: run.title, log: run.log, durationMs };
    case 'observed': {
      const k = judgeKernelLog(theCase, info, run.kernelLog ?? []);
      if (k.crash) return { kind: 'crash', target: target.name, title: k.crash.title, log: reportText(k.crash), durationMs };
      const answer = judgeObservation(theCase, info, run.observation);
      if (answer.incomplete !== undefined) return { kind: 'infra-error', target: target.name, message: answer.incomplete };
      const fsck = judgeChecks(theCase, info, run.checks ?? []);
      const divergences: Divergence[] = answer.verdict === 'divergence' ? [...answer.divergences] : [];
      for (const r of k.findings)
        divergences.push({ class: 'kernel-log', expected: 'no kernel report', observed: r.title, message: `the kernel logged: ${r.title}` });
      // The remount before the read-back (worker/plan/compile.ts postRunOps) must work on an undamaged stack.
      for (const r of run.observation.results)
        if (r.op >= POST_RUN_OP_BASE + 100 && r.ret < 0 && fsck.tolerant === false)
          divergences.push({ class: 'fsck', expected: 'the filesystems mount again after the program', observed: r.errno ?? 'failure', message: `remounting a filesystem after the program failed (${r.errno ?? 'error'})` });
      for (const f of fsck.findings)
        divergences.push({ class: 'fsck', expected: 'a clean check', observed: `exit ${f.exit}`, message: `${f.name} found damage (exit ${f.exit}): ${f.output.trim().split('\n').slice(-3).join(' / ')}` });
      const notes = [...answer.notes, ...fsck.notes, ...k.expected.map((r) => `expected kernel report: ${r.title}`)];
      return divergences.length
        ? { kind: 'divergence', target: target.name, divergences, notes, durationMs }
        : { kind: 'pass', target: target.name, notes, durationMs };
    }
  }
}
