/**
 * Running a coordinator from the command line (shared by `blockfarm
 * coordinator` and `blockfarm campaign`): progress display, signals (first
 * SIGINT/SIGTERM pauses the campaign so that it resumes next time; a second
 * one exits at once), the summary (a table, or JSON), and the exit code.
 *
 * Exit codes: 0 no findings; 1 findings (divergence, crash, hang); 4 cases
 * that ended in infrastructure errors or failed batches and no finding.
 */
import { EXIT } from '../../model/index.ts';
import type { CliContext } from '../cli/context.ts';
import { type CampaignSummary, Coordinator, type CoordinatorOptions } from './coordinator.ts';
import { ProgressDisplay, summaryLines } from './progress.ts';

export function campaignExitCode(s: CampaignSummary): number {
  const sum = (f: (c: CampaignSummary['targets'][number]['counts']) => number) => s.targets.reduce((n, t) => n + f(t.counts), 0);
  if (sum((c) => c.divergence + c.crash + c.hang) > 0) return EXIT.finding;
  if (sum((c) => c.infraError + c.failed + c.lost) > 0) return EXIT.infra;
  return EXIT.pass;
}

export interface RunCampaignOptions {
  json: boolean;
  display: ProgressDisplay;
  /** Called once a signal asked to stop (before the coordinator has stopped). */
  onSignal?: () => void;
}

export async function runCampaign(coordOpts: CoordinatorOptions, ctx: CliContext, opts: RunCampaignOptions): Promise<{ summary: CampaignSummary; code: number }> {
  const coordinator = new Coordinator(coordOpts);
  coordinator.on('progress', (s) => opts.display.update(s));
  coordinator.on('warning', (w) => coordOpts.log.warn(w));
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      opts.display.done();
      ctx.err(`blockfarm: ${sig} again: exiting now (the campaign resumes from Redis next time)`);
      process.exit(130);
    }
    coordOpts.log.info(`${sig}: pausing the campaign (it resumes on the next start); ${sig} again to exit at once`);
    opts.onSignal?.();
    coordinator.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await coordinator.run();
    opts.display.done();
    if (opts.json) ctx.out(JSON.stringify(summary, null, 2));
    else for (const l of summaryLines(summary)) ctx.out(l);
    return { summary, code: campaignExitCode(summary) };
  } finally {
    opts.display.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
