/**
 * Campaign statistics: how often each scenario was exercised, by the
 * classifier's reading of each case. Constant memory: a counter per tag, so
 * the coordinator can keep one for a campaign of millions of cases.
 */
import type { Case } from '../../model/index.ts';
import { formatTable } from '../cli/table.ts';
import { SCENARIO_TAGS, type ScenarioTag, classifyCase } from './scenarios.ts';

export interface ScenarioStats {
  total: number;
  /** Cases that exercise each scenario (a case may count for several). */
  counts: Record<ScenarioTag, number>;
  /** Cases that exercise none. */
  none: number;
  /** Cases that exercise more than one. */
  several: number;
}

export function emptyStats(): ScenarioStats {
  return { total: 0, counts: { S1: 0, S2: 0, S3: 0, S4: 0, S5: 0 }, none: 0, several: 0 };
}

export class ScenarioCounter {
  private readonly s = emptyStats();

  /** Classify and count a case; returns its tags. */
  add(c: Case): ScenarioTag[] {
    const tags = classifyCase(c);
    this.addTags(tags);
    return tags;
  }

  /** Count a case whose tags are already known (from a worker, from Redis). */
  addTags(tags: readonly ScenarioTag[]): void {
    this.s.total++;
    for (const t of new Set(tags)) this.s.counts[t]++;
    if (tags.length === 0) this.s.none++;
    if (new Set(tags).size > 1) this.s.several++;
  }

  merge(other: ScenarioStats): void {
    this.s.total += other.total;
    for (const t of SCENARIO_TAGS) this.s.counts[t] += other.counts[t];
    this.s.none += other.none;
    this.s.several += other.several;
  }

  snapshot(): ScenarioStats {
    return { ...this.s, counts: { ...this.s.counts } };
  }
}

export function scenarioStats(cases: Iterable<Case>): ScenarioStats {
  const c = new ScenarioCounter();
  for (const x of cases) c.add(x);
  return c.snapshot();
}

/** Share of cases, 0..1, for each scenario. */
export function shares(s: ScenarioStats): Record<ScenarioTag, number> {
  const out = {} as Record<ScenarioTag, number>;
  for (const t of SCENARIO_TAGS) out[t] = s.total ? s.counts[t] / s.total : 0;
  return out;
}

const pct = (n: number, total: number) => (total ? `${((100 * n) / total).toFixed(1)}%` : '-');

/** A table for terminals: one row per scenario, then "none" and "several". */
export function formatScenarioStats(s: ScenarioStats): string {
  const rows = SCENARIO_TAGS.map((t) => [t, String(s.counts[t]), pct(s.counts[t], s.total)]);
  rows.push(['none', String(s.none), pct(s.none, s.total)], ['several', String(s.several), pct(s.several, s.total)]);
  return `${formatTable(['scenario', 'cases', 'share'], rows)}\n(${s.total} cases)`;
}
