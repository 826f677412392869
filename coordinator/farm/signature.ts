/**
 * Signatures and outcome classes: what the coordinator deduplicates by.
 *
 * - A SIGNATURE names a finding independent of the case that found it and of
 *   the target: for a divergence the set of (class, data class, op kind) it
 *   reports; for a crash or hang its title with addresses, numbers and
 *   process names taken out. Triage keeps one report per signature.
 * - An OUTCOME CLASS is coarser and covers passes too: target kind, outcome
 *   kind, the scenarios of the case, the shape of its stack (layer kinds
 *   bottom-up) and the op kinds of its program, plus the signature of a
 *   finding. The corpus keeps a case when its outcome class is new.
 */
import { createHash } from 'node:crypto';
import type { Case, RunOutcome } from '../../model/index.ts';
import { targetKind } from '../../worker/farm/target-defaults.ts';

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

export function outcomeClass(target: string, o: RunOutcome, c: Case, scenarios: readonly string[] | undefined): string {
  const finding = isFinding(o) ? signature(o) : '';
  return h([targetKind(target), o.kind, (scenarios ?? []).join(','), stackShape(c), opKinds(c), c.program.threads.length > 1 ? 'mt' : 'st', finding].join('|'));
}
