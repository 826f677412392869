/**
 * Content addresses of cases: sha256 of the canonical JSON (keys sorted, no
 * whitespace) of what a case does: format, data seed, stack and program.
 * Name, description and meta are left out, so the same test found twice
 * under two names is one corpus entry.
 */
import { createHash } from 'node:crypto';
import type { Case } from '../../model/index.ts';

/** JSON with object keys sorted at every level; undefined members left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** What a case's address covers. */
export function caseEssence(c: Case): Pick<Case, 'format' | 'seed' | 'stack' | 'program'> {
  return { format: c.format, seed: c.seed, stack: c.stack, program: c.program };
}

/** The content address of a case (hex sha256). Give it a validated case, so defaults are filled in. */
export function caseHash(c: Case): string {
  return createHash('sha256').update(canonicalJson(caseEssence(c))).digest('hex');
}
