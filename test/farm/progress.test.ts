/**
 * How a campaign's progress and summary read for a slow target (a VM runs a
 * fraction of a case per second) beside a fast one.
 */
import { describe, expect, it } from 'vitest';
import { emptyCounts } from '../../coordinator/farm/campaign-state.ts';
import type { CampaignSummary } from '../../coordinator/farm/coordinator.ts';
import { fmtRate, statusText, summaryLines } from '../../coordinator/farm/progress.ts';

describe('rates', () => {
  it('keep one decimal below 10 cases/s, so a VM target does not read as 0/s', () => {
    expect(fmtRate(0)).toBe('0');
    expect(fmtRate(0.437)).toBe('0.4');
    expect(fmtRate(9.96)).toBe('10.0');
    expect(fmtRate(456.4)).toBe('456');
    expect(fmtRate(12_345.6)).toBe('12,346');
  });

  it('in the progress line and the summary table', () => {
    const model = { target: 'model', counts: { ...emptyCounts(), executed: 2048, pass: 2048 }, inflightBatches: 0, rate: 40.2, workers: 1, scenarios: { S1: 3 } };
    const qemu = { target: 'qemu', counts: { ...emptyCounts(), executed: 8, pass: 5, divergence: 3, stackReused: 6 }, inflightBatches: 1, rate: 0.44, workers: 1, scenarios: { S1: 8 } };
    const snap = { campaign: 'seed-1', seed: 1, elapsedMs: 20_000, remainingMs: 40_000, draining: false, memory: { rssMb: 1, heapUsedMb: 1 }, targets: [model, qemu] };
    expect(statusText(snap)).toBe('model 2,048 cases 40/s 0 found | qemu 8 cases 0.4/s 3 found | 40 s left');
    const summary: CampaignSummary = {
      ...snap, resumed: false, finished: true, generator: 'generator', coordinator: 'c', dataDir: '/d', signatures: 1, someSignatures: ['abc'], abandonedBatches: 0, generatorMs: 0,
    };
    const text = summaryLines(summary).join('\n');
    expect(text).toMatch(/^model\s+2,048\s+102\s+2,048\s+0\s/m);
    expect(text).toMatch(/^qemu\s+8\s+0\.4\s+5\s+3\s.*\s6\s*$/m);
    expect(text).toMatch(/on a kept stack/);
    expect(text).toContain('scenarios exercised: S1 11');
    expect(text).toContain('3 finding(s) in 1 distinct signature(s): abc');
  });
});
