/**
 * The kernel-log and fsck oracles: which kernel reports and fsck results are
 * findings for a case. IO, integrity and filesystem errors are expected, and
 * not findings, exactly where the case itself causes them: a fault-injecting
 * layer, a corrupt op, or integrity-protected sectors read before they were
 * written (the model requires those reads to fail).
 */
import { type Case, type StackInfo, layerModule } from '../../model/index.ts';
import { type KernelReport, parseKernelLog } from '../kernel-log/parse.ts';
import type { CheckResult } from '../targets/target.ts';

const FAULT_KINDS = new Set(['io-error', 'integrity', 'fs-error']);

export interface KernelVerdict {
  crash?: KernelReport;
  findings: KernelReport[];
  expected: KernelReport[];
}

/** The case makes IO or integrity errors happen on purpose. */
export function caseInjectsFaults(c: Case, info: StackInfo): boolean {
  const faultyLayer = info.layers.some((l) => {
    const m = layerModule(l);
    return m.fault(l).kind !== 'none' || m.initialFill(l, info) === 'error';
  });
  const corrupts = c.program.threads.some((t) => t.ops.some((op) => op.kind === 'corrupt'));
  return faultyLayer || corrupts;
}

export function judgeKernelLog(c: Case, info: StackInfo, log: readonly string[]): KernelVerdict {
  const reports = parseKernelLog(log);
  const tolerant = caseInjectsFaults(c, info);
  const out: KernelVerdict = { findings: [], expected: [] };
  for (const r of reports) {
    if (r.crash && !out.crash) out.crash = r;
    else if (tolerant && FAULT_KINDS.has(r.kind)) out.expected.push(r);
    else out.findings.push(r);
  }
  return out;
}

export interface FsckVerdict {
  findings: CheckResult[];
  notes: string[];
  /** The case damages its filesystems on purpose: failed checks are notes, not findings. */
  tolerant: boolean;
}

/** A checker that found damage is a finding; one that could not run (e2fsck >= 8) is a note. */
export function judgeChecks(c: Case, info: StackInfo, checks: readonly CheckResult[]): FsckVerdict {
  const tolerant = caseInjectsFaults(c, info);
  const out: FsckVerdict = { findings: [], notes: [], tolerant };
  for (const ch of checks) {
    if (ch.exit === 0) continue;
    if (!ch.name.startsWith('fsck ')) {
      out.notes.push(`post-run step '${ch.name}' failed (exit ${ch.exit})`);
      continue;
    }
    if (ch.exit >= 8 && /e2fsck/.test(ch.output + ch.name)) out.notes.push(`'${ch.name}' could not run (exit ${ch.exit})`);
    else if (tolerant) out.notes.push(`'${ch.name}' found damage (exit ${ch.exit}) on a stack that injects faults`);
    else out.findings.push(ch);
  }
  return out;
}
