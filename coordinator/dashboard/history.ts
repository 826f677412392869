/**
 * The counts over time behind the charts. The farm keeps only running totals
 * in Redis (campaign-state.ts), so the dashboard samples them: every
 * `everyMs` it stores, per target of each campaign, the cumulative executed,
 * divergence, crash and hang counts. Rates are differences of neighbouring
 * samples. The coordinator also stores a coarser history in Redis
 * (campaign-state.ts, one sample per HISTORY_EVERY_MS): a campaign this
 * dashboard sees for the first time is seeded from it, so a dashboard
 * opened mid-campaign or afterwards still draws the run from its start.
 * Older samples are thinned, not dropped, so a long campaign still shows
 * its whole curve at a coarser step.
 */
import type { HistorySample } from '../farm/campaign-state.ts';
import type { CampaignView } from './read-model.ts';

export interface Sample {
  at: number;
  executed: number;
  divergence: number;
  crash: number;
  hang: number;
}

export interface SeriesPoint {
  at: number;
  /** Cases per second since the previous sample. */
  execRate: number;
  /** Cumulative counts at this sample. */
  executed: number;
  divergence: number;
  crash: number;
  hang: number;
}

export interface HistoryOptions {
  /** @defaultValue 720 samples per series (then every other old sample is dropped) */
  maxSamples?: number;
}

export class CountHistory {
  /** `<campaign>\u0000<target>` -> samples, oldest first. */
  private readonly series = new Map<string, Sample[]>();
  private readonly maxSamples: number;

  constructor(opts: HistoryOptions = {}) {
    this.maxSamples = opts.maxSamples ?? 720;
    if (!Number.isInteger(this.maxSamples) || this.maxSamples < 4) throw new Error('maxSamples must be an integer >= 4');
  }

  private key(campaign: string, target: string): string {
    return `${campaign}\u0000${target}`;
  }

  /** Campaigns already seeded from their stored history. */
  private readonly seededCampaigns = new Set<string>();

  /** True when `campaign` still needs its stored history (call seed with it before the next record). */
  needsSeed(campaign: string): boolean {
    return !this.seededCampaigns.has(campaign);
  }

  /** Puts the coordinator's stored samples of a campaign ahead of what this process sampled. */
  seed(campaign: string, stored: readonly HistorySample[]): void {
    this.seededCampaigns.add(campaign);
    const byTarget = new Map<string, Sample[]>();
    for (const h of stored)
      for (const [target, c] of Object.entries(h.targets)) {
        const list = byTarget.get(target) ?? [];
        list.push({ at: h.at, executed: c.executed, divergence: c.divergence, crash: c.crash, hang: c.hang });
        byTarget.set(target, list);
      }
    for (const [target, older] of byTarget) {
      const k = this.key(campaign, target);
      const s = this.series.get(k) ?? [];
      const first = s[0]?.at ?? Number.POSITIVE_INFINITY;
      const merged = [...older.filter((x) => x.at < first).sort((a, b) => a.at - b.at), ...s];
      while (merged.length > this.maxSamples) this.thin(merged);
      this.series.set(k, merged);
    }
  }

  record(campaigns: CampaignView[], at = Date.now()): void {
    for (const c of campaigns)
      for (const t of c.targets) {
        const k = this.key(c.meta.id, t.target);
        const s = this.series.get(k) ?? [];
        const last = s[s.length - 1];
        const sample = { at, executed: t.counts.executed, divergence: t.counts.divergence, crash: t.counts.crash, hang: t.counts.hang };
        // A finished campaign stops changing: one sample for it is enough.
        if (last && last.executed === sample.executed && last.divergence === sample.divergence && last.crash === sample.crash && last.hang === sample.hang && c.meta.status === 'finished') continue;
        s.push(sample);
        if (s.length > this.maxSamples) this.thin(s);
        this.series.set(k, s);
      }
  }

  /** Halve the older half of the samples (keep every other one). */
  private thin(s: Sample[]): void {
    const half = Math.floor(s.length / 2);
    const older = s.slice(0, half).filter((_, i) => i % 2 === 0);
    s.splice(0, half, ...older);
  }

  points(campaign: string, target: string): SeriesPoint[] {
    const s = this.series.get(this.key(campaign, target)) ?? [];
    return s.map((x, i) => {
      const prev = s[i - 1];
      const dt = prev ? (x.at - prev.at) / 1000 : 0;
      return { ...x, execRate: prev && dt > 0 ? Math.max(0, x.executed - prev.executed) / dt : 0 };
    });
  }

  /** Per campaign: the targets' points (for the API and the charts). */
  campaign(c: CampaignView): Record<string, SeriesPoint[]> {
    return Object.fromEntries(c.targets.map((t) => [t.target, this.points(c.meta.id, t.target)]));
  }
}
