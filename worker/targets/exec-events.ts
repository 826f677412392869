/**
 * Turning the executor's event stream (worker/executor/protocol.ts) into a
 * TargetRun, for every target that runs the executor (host, QEMU guests): a
 * set-up step that failed is an infrastructure error, an op timeout (or the
 * whole case running out of time) a hang, a run that stopped before 'done'
 * or was interrupted an infrastructure error, and everything else an
 * observation.
 */
import type { FinalContent, ObservedGeometry, OpResult } from '../../model/index.ts';
import type { ExecEvent } from '../executor/protocol.ts';
import type { CheckResult, TargetRun } from './target.ts';

export interface ExecOutcome {
  /** The executor's exit code (-1: killed or could not start). */
  exit: number;
  /** The signal that killed it, if any (number or name). */
  signal: number | string | null;
  /** The caller stopped it because the whole case ran out of time. */
  timedOut?: boolean;
  badLine?: string;
  stderr: string[];
}

export function interpretEvents(target: string, events: readonly ExecEvent[], outcome: ExecOutcome, kernelLog: string[], consoleLog: string): TargetRun {
  if (outcome.badLine !== undefined) return { kind: 'infra-error', message: `the executor printed a line that is not an event: ${outcome.badLine}`, kernelLog };
  const timeout = events.find((e): e is Extract<ExecEvent, { ev: 'timeout' }> => e.ev === 'timeout');
  if (timeout || outcome.timedOut) {
    const title = timeout ? `hang: op ${timeout.op} did not complete within ${timeout.ms} ms` : 'hang: the case did not complete in time';
    return { kind: 'hang', title, log: [...kernelLog, consoleLog].filter(Boolean).join('\n') };
  }
  if (outcome.exit === 2) return { kind: 'infra-error', message: `the executor rejected the plan: ${outcome.stderr.slice(-1)[0] ?? ''}`, kernelLog };
  const failed = events.find((e): e is Extract<ExecEvent, { ev: 'setup'; ok: false }> => e.ev === 'setup' && !e.ok);
  if (failed) {
    // The kernel often says why (a dm table it refused): add its last error lines.
    const said = kernelErrors(kernelLog).slice(-2);
    const why = said.length ? `; kernel: ${said.join(' / ')}` : '';
    return { kind: 'infra-error', message: `set-up step '${failed.name}' failed (exit ${failed.exit}): ${failed.stderr.trim().split('\n').slice(-2).join(' ')}${why}`, kernelLog };
  }
  const done = events.find((e): e is Extract<ExecEvent, { ev: 'done' }> => e.ev === 'done');
  // Exit 5: cut short by an op timeout or a signal (an abort), after undoing the set-up.
  if (done && !done.ok && outcome.exit === 5) return { kind: 'infra-error', message: `the run was stopped before the end: ${done.message ?? 'interrupted'}`, kernelLog };
  if (!done) {
    const how = outcome.signal ? `killed by signal ${outcome.signal}` : `exit ${outcome.exit}`;
    return { kind: 'infra-error', message: `the executor stopped before the end (${how}): ${outcome.stderr.slice(-2).join(' / ')}`, kernelLog };
  }
  const results: OpResult[] = [];
  const geometry: Record<string, ObservedGeometry> = {};
  const final: Record<string, FinalContent> = {};
  const checks: CheckResult[] = [];
  for (const e of events) {
    if (e.ev === 'result') {
      const r: OpResult = { op: e.op, ret: e.ret, durationUs: e.us };
      if (e.errno) r.errno = e.errno;
      if (e.signal) r.signal = e.signal;
      if (e.data) r.data = e.data;
      results.push(r);
    } else if (e.ev === 'geometry') {
      const { ev: _ev, id, ...g } = e;
      geometry[id] = g;
    } else if (e.ev === 'final') final[e.id] = { size: e.size, extents: e.extents, ranges: e.ranges };
    else if (e.ev === 'check') checks.push({ name: e.name, exit: e.exit, output: e.output });
  }
  return { kind: 'observed', observation: { target, geometry, results, final }, kernelLog, checks };
}

/** Messages of kmsg records at error level or worse (priority 0-3). */
export function kernelErrors(kmsg: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of kmsg) {
    const m = /^(\d+),\d+,\d+,[^;]*;(.*)$/.exec(line);
    if (m && Number(m[1]) % 8 <= 3) out.push(m[2]!);
  }
  return out;
}
