/**
 * The counts over time behind the charts. The farm keeps only running totals
 * in Redis (campaign-state.ts), so the dashboard samples them: every
 * `everyMs` it stores, per target of each campaign, the cumulative executed,
 * divergence, crash and hang counts. Rates are differences of neighbouring
 * samples. The history lives in this process (a dashboard started with the
 * coordinator has the whole run); older samples are thinned, not dropped,
 * so a long campaign still shows its whole curve at a coarser step.
 */
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
