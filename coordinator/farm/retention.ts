/**
 * Retention of the data directory: the corpus, the reports (divergence
 * records, triage reports, campaign summaries) and the console logs are each
 * capped by total size and by age. A sweep deletes what is older than the age
 * cap, then the oldest entries until the category is under 90% of its size
 * cap. Redis's own files (data/redis) hold live state and are never swept.
 *
 * Caps: the defaults below, overridden per category by `<data dir>/retention.json`:
 *   { "corpus": { "maxBytes": 2147483648, "maxAgeDays": 365 }, "logs": { "maxAgeDays": 7 } }
 * `blockfarm doctor` shows the caps in force and what each category uses.
 */
import { promises as fsp } from 'node:fs';
import { join, relative, sep } from 'node:path';

export interface RetentionCap {
  maxBytes: number;
  maxAgeDays: number;
}

export type RetentionCategory = 'corpus' | 'reports' | 'logs';

export type RetentionPolicy = Record<RetentionCategory, RetentionCap>;

const GiB = 1024 ** 3;

export const DEFAULT_RETENTION: RetentionPolicy = Object.freeze({
  corpus: { maxBytes: 2 * GiB, maxAgeDays: 365 },
  reports: { maxBytes: 2 * GiB, maxAgeDays: 180 },
  logs: { maxBytes: 1 * GiB, maxAgeDays: 30 },
});

/**
 * The directories of each category, relative to the data directory, and the
 * depth of the unit removed at once (a report directory goes whole; a corpus
 * or log file alone).
 */
export const CATEGORY_DIRS: Record<RetentionCategory, Array<{ dir: string; unitDepth: number }>> = {
  // corpus/cases/<h0h1>/<hash>.json; the store's index.jsonl stays (small), and the Redis corpus index drops a swept case when a mutation first misses it.
  corpus: [{ dir: 'corpus/cases', unitDepth: 2 }],
  reports: [
    { dir: 'reports', unitDepth: 1 },
    { dir: 'divergences', unitDepth: 3 },
    { dir: 'campaigns', unitDepth: 1 },
  ],
  logs: [{ dir: 'logs', unitDepth: 3 }],
};

export const RETENTION_FILE = 'retention.json';

function checkCap(where: string, v: unknown, base: RetentionCap): RetentionCap {
  if (v === undefined) return base;
  if (v === null || typeof v !== 'object') throw new Error(`${where}: expected an object { maxBytes, maxAgeDays }`);
  const o = v as Record<string, unknown>;
  const out = { ...base };
  for (const k of Object.keys(o)) {
    if (k !== 'maxBytes' && k !== 'maxAgeDays') throw new Error(`${where}: unknown field '${k}' (maxBytes, maxAgeDays)`);
    const n = o[k];
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new Error(`${where}.${k}: expected a positive number`);
    out[k] = n;
  }
  return out;
}

/** The policy in force for a data directory: defaults, overridden by its retention.json. */
export async function loadRetention(dataDir: string): Promise<{ policy: RetentionPolicy; source: string }> {
  const file = join(dataDir, RETENTION_FILE);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return { policy: { ...DEFAULT_RETENTION }, source: 'defaults' };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${file}: expected an object`);
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(k in DEFAULT_RETENTION)) throw new Error(`${file}: unknown category '${k}' (corpus, reports, logs)`);
  return {
    policy: {
      corpus: checkCap(`${file}: corpus`, o.corpus, DEFAULT_RETENTION.corpus),
      reports: checkCap(`${file}: reports`, o.reports, DEFAULT_RETENTION.reports),
      logs: checkCap(`${file}: logs`, o.logs, DEFAULT_RETENTION.logs),
    },
    source: file,
  };
}

interface Unit {
  path: string;
  bytes: number;
  /** Newest modification time inside the unit (ms). */
  mtimeMs: number;
}

async function walk(dir: string, out: Array<{ path: string; bytes: number; mtimeMs: number }>): Promise<void> {
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p, out);
    else if (e.isFile()) {
      try {
        const st = await fsp.stat(p);
        out.push({ path: p, bytes: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // removed meanwhile
      }
    }
  }
}

async function unitsOf(dataDir: string, category: RetentionCategory): Promise<Unit[]> {
  const units = new Map<string, Unit>();
  for (const { dir, unitDepth } of CATEGORY_DIRS[category]) {
    const root = join(dataDir, dir);
    const files: Array<{ path: string; bytes: number; mtimeMs: number }> = [];
    await walk(root, files);
    for (const f of files) {
      const parts = relative(root, f.path).split(sep);
      const unitPath = join(root, ...parts.slice(0, Math.min(unitDepth, parts.length)));
      const u = units.get(unitPath) ?? { path: unitPath, bytes: 0, mtimeMs: 0 };
      u.bytes += f.bytes;
      u.mtimeMs = Math.max(u.mtimeMs, f.mtimeMs);
      units.set(unitPath, u);
    }
  }
  return [...units.values()];
}

export interface CategoryUsage {
  bytes: number;
  entries: number;
  oldestMs?: number;
}

export async function dataDirUsage(dataDir: string): Promise<Record<RetentionCategory, CategoryUsage>> {
  const out = {} as Record<RetentionCategory, CategoryUsage>;
  for (const c of Object.keys(CATEGORY_DIRS) as RetentionCategory[]) {
    const units = await unitsOf(dataDir, c);
    const oldest = units.reduce((m, u) => Math.min(m, u.mtimeMs), Infinity);
    out[c] = { bytes: units.reduce((s, u) => s + u.bytes, 0), entries: units.length, ...(units.length ? { oldestMs: oldest } : {}) };
  }
  return out;
}

export interface SweepResult {
  category: RetentionCategory;
  removed: string[];
  freedBytes: number;
  keptBytes: number;
}

/**
 * Apply the policy now. `protect` names paths that must stay (e.g. the report
 * being written). Returns what went, per category.
 */
export async function sweepRetention(dataDir: string, policy: RetentionPolicy, now = Date.now(), protect: ReadonlySet<string> = new Set()): Promise<SweepResult[]> {
  const results: SweepResult[] = [];
  for (const category of Object.keys(CATEGORY_DIRS) as RetentionCategory[]) {
    const cap = policy[category];
    const units = (await unitsOf(dataDir, category)).sort((a, b) => a.mtimeMs - b.mtimeMs);
    const removed: string[] = [];
    let total = units.reduce((s, u) => s + u.bytes, 0);
    let freed = 0;
    const minMtime = now - cap.maxAgeDays * 86_400_000;
    const target = cap.maxBytes * 0.9;
    // Over the cap: remove oldest first down to 90% of it, so the next sweep is not at once due again.
    const overSize = total > cap.maxBytes;
    for (const u of units) {
      if (protect.has(u.path)) continue;
      const tooOld = u.mtimeMs < minMtime;
      if (!tooOld && !(overSize && total > target)) break;
      await fsp.rm(u.path, { recursive: true, force: true });
      removed.push(u.path);
      total -= u.bytes;
      freed += u.bytes;
    }
    results.push({ category, removed, freedBytes: freed, keptBytes: total });
  }
  return results;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(x >= 10 ? 0 : 1)} ${units[i]}`;
}

export interface RetentionReport {
  dataDir: string;
  /** 'defaults' or the retention.json that set the caps. */
  source: string;
  /** Set when retention.json is unreadable (the defaults apply). */
  problem?: string;
  categories: Array<{ category: RetentionCategory; dirs: string[]; maxBytes: number; maxAgeDays: number; usedBytes: number; entries: number }>;
}

/** The caps in force for a data directory and what each category uses now (for `blockfarm doctor`). */
export async function retentionReport(dataDir: string): Promise<RetentionReport> {
  let policy: RetentionPolicy = DEFAULT_RETENTION;
  let source = 'defaults';
  let problem: string | undefined;
  try {
    ({ policy, source } = await loadRetention(dataDir));
  } catch (err) {
    problem = (err as Error).message;
  }
  const usage = await dataDirUsage(dataDir);
  return {
    dataDir,
    source,
    ...(problem ? { problem } : {}),
    categories: (Object.keys(CATEGORY_DIRS) as RetentionCategory[]).map((c) => ({
      category: c,
      dirs: CATEGORY_DIRS[c].map((d) => d.dir),
      maxBytes: policy[c].maxBytes,
      maxAgeDays: policy[c].maxAgeDays,
      usedBytes: usage[c].bytes,
      entries: usage[c].entries,
    })),
  };
}
