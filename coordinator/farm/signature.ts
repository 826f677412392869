/**
 * Signatures and outcome classes: what the coordinator deduplicates by.
 *
 * - A SIGNATURE names a finding independent of the case that found it and of
 *   the target: for a divergence the set of (class, data class, op kind) it
 *   reports; for a crash or hang its title with addresses, numbers and
 *   process names taken out. Triage keeps one report per signature.
 * - The corpus keeps a case whose run is new in its signature or in its
 *   outcome class (corpus/store/policy.ts); caseFeatures gives the structural
 *   features an outcome class is split by: stack shape (layer kinds
 *   bottom-up), op kinds, one or several threads, scenarios.
 */
import { createHash } from 'node:crypto';
import type { Case, RunOutcome } from '../../model/index.ts';

function h(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** A crash or hang title without what varies between runs (addresses, numbers, pids, comm names). */
export function normalizeTitle(title: string): string {
  return title
    .replace(/0x[0-9a-f]+/gi, 'ADDR')
    .replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/gi, '')
    .replace(/\b[0-9a-f]{8,}\b/gi, 'HEX')
    .replace(/\d+/g, 'N')
    .replace(/\s+/g, ' ')
    .trim();
}

export type Finding = Extract<RunOutcome, { kind: 'divergence' | 'crash' | 'hang' }>;

export function isFinding(o: RunOutcome): o is Finding {
  return o.kind === 'divergence' || o.kind === 'crash' || o.kind === 'hang';
}

/** What the signature is made of, readable (shown in reports). */
export function signatureText(o: Finding): string {
  if (o.kind === 'divergence') {
    const parts = [...new Set(o.divergences.map((d) => `${d.class}/${d.dataClass ?? '-'}/${d.opKind ?? '-'}`))].sort();
    return `divergence ${parts.join(' ')}`;
  }
  return `${o.kind} ${normalizeTitle(o.title)}`;
}

export function signature(o: Finding): string {
  return h(signatureText(o));
}

export function stackShape(c: Case): string {
  return c.stack.layers.map((l) => l.kind).join('>');
}

function opKinds(c: Case): string {
  const kinds = new Set<string>();
  for (const t of c.program.threads) for (const op of t.ops) kinds.add(op.kind);
  return [...kinds].sort().join(',');
}

export function caseFeatures(c: Case, scenarios: readonly string[] | undefined): string[] {
  return [`stack=${stackShape(c)}`, `ops=${opKinds(c)}`, c.program.threads.length > 1 ? 'threads=many' : 'threads=one', ...(scenarios ?? []).map((s) => `scenario=${s}`)];
}
