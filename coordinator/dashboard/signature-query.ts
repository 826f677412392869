/**
 * Filter and sort of the signatures table, shared by the page and
 * /api/signatures: ?q= (words in the title or id), class=, status=,
 * kernel=, minimized=yes|no, sort=<column>, dir=asc|desc. Unknown values
 * are ignored (the default order: last seen, newest first).
 */
import type { SignatureRow } from './read-model.ts';

export const SORT_KEYS = ['title', 'class', 'count', 'firstSeen', 'lastSeen', 'kernels', 'repro', 'minimized', 'status'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export interface SignatureQuery {
  q?: string;
  class?: string;
  status?: string;
  kernel?: string;
  minimized?: 'yes' | 'no';
  sort: SortKey;
  dir: 'asc' | 'desc';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, 200) : undefined;
}

export function parseSignatureQuery(raw: Record<string, unknown>): SignatureQuery {
  const sort = (SORT_KEYS as readonly string[]).includes(String(raw.sort)) ? (raw.sort as SortKey) : 'lastSeen';
  const dir = raw.dir === 'asc' || raw.dir === 'desc' ? raw.dir : sort === 'title' || sort === 'class' ? 'asc' : 'desc';
  const q: SignatureQuery = { sort, dir };
  const text = str(raw.q);
  if (text) q.q = text;
  const cls = str(raw.class);
  if (cls) q.class = cls;
  const status = str(raw.status);
  if (status) q.status = status;
  const kernel = str(raw.kernel);
  if (kernel) q.kernel = kernel;
  if (raw.minimized === 'yes' || raw.minimized === 'no') q.minimized = raw.minimized;
  return q;
}

function sortValue(r: SignatureRow, k: SortKey): string | number {
  switch (k) {
    case 'title': return r.title.toLowerCase();
    case 'class': return r.class;
    case 'count': return r.count;
    case 'firstSeen': return r.firstSeen;
    case 'lastSeen': return r.lastSeen;
    case 'kernels': return r.kernels.length;
    case 'repro': return r.reproRate ?? -1;
    case 'minimized': return r.minimized ? 1 : 0;
    case 'status': return r.status;
  }
}

export function applySignatureQuery(rows: readonly SignatureRow[], q: SignatureQuery): SignatureRow[] {
  const words = (q.q ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  const out = rows.filter((r) => {
    if (q.class && r.class !== q.class) return false;
    if (q.status && r.status !== q.status) return false;
    if (q.kernel && !r.kernels.includes(q.kernel)) return false;
    if (q.minimized && r.minimized !== (q.minimized === 'yes')) return false;
    const hay = `${r.title} ${r.id} ${r.class}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
  const sign = q.dir === 'asc' ? 1 : -1;
  return out.sort((a, b) => {
    const x = sortValue(a, q.sort);
    const y = sortValue(b, q.sort);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return c !== 0 ? sign * c : b.lastSeen - a.lastSeen || a.id.localeCompare(b.id);
  });
}

/** The query as URL parameters (for links that keep the filter). */
export function queryString(q: SignatureQuery, override: Partial<SignatureQuery> = {}): string {
  const m = { ...q, ...override };
  const p = new URLSearchParams();
  for (const k of ['q', 'class', 'status', 'kernel', 'minimized', 'sort', 'dir'] as const) {
    const v = m[k];
    if (v !== undefined && v !== '') p.set(k, String(v));
  }
  return p.toString();
}
