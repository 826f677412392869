/**
 * `blockfarm coordinator --redis URL [--campaign-seed N] [--duration D | --cases N]
 *  [--targets model,qemu:...] [--data-dir DIR] ...`: run (or resume) a
 * campaign on a Redis that workers elsewhere serve (`blockfarm worker`).
 *
 * Without --duration or --cases it runs until stopped (SIGINT/SIGTERM pause
 * the campaign; the next start resumes it). Without --campaign-seed it
 * resumes the latest unfinished campaign of the namespace, or starts a new
 * one with a random seed. Progress goes to stderr (a bar on a terminal, log
 * lines otherwise); the summary table (or --json) to stdout.
 *
 * Exit codes: 0 no findings, 1 findings, 2 bad input (options, a finished
 * campaign, a data directory in use), 4 Redis unreachable or lost, or
 * infrastructure errors without findings.
 */
import type { Command } from 'commander';
import { redactUrl } from '../../../infra/redis/connection.ts';
import { DEFAULT_NAMESPACE } from '../../../worker/farm/protocol.ts';
import { farmErrorExit } from '../../farm/cli-errors.ts';
import { UsageProblem, checkNamespace, parseDuration, parsePositiveInt, parseRate, parseSeed, parseTargets, redisUrlFrom } from '../../farm/cli-options.ts';
import type { CoordinatorOptions } from '../../farm/coordinator.ts';
import { checkDashboardPort, startEmbeddedDashboard } from '../../dashboard/embedded.ts';
import type { DashboardServer } from '../../dashboard/server.ts';
import { DEFAULT_DATA_DIR, DataDirLock } from '../../farm/data-dir.ts';
import { ProgressDisplay, barAwareLogger } from '../../farm/progress.ts';
import { runCampaign } from '../../farm/run-campaign.ts';
import type { CliContext, CommandHost } from '../context.ts';

export interface FarmCampaignCliOptions {
  redis?: string;
  campaignSeed?: string;
  duration?: string;
  cases?: string;
  targets?: string[];
  dataDir: string;
  namespace: string;
  batchSize?: string;
  maxQueuedBatches?: string;
  mutationRate?: string;
  generator?: string;
  seeds: boolean;
  allowHost?: boolean;
  json?: boolean;
  redisGrace: string;
  /** Also serve the dashboard on this port. */
  dashboard?: string;
}

/** The coordinator's options from the command line (everything but the Redis URL and the targets). */
export function coordinatorOptionsFrom(o: FarmCampaignCliOptions): Omit<CoordinatorOptions, 'redisUrl' | 'targets' | 'log'> {
  if (o.duration !== undefined && o.cases !== undefined) throw new UsageProblem('give --duration or --cases, not both');
  const budget = {
    ...(o.duration !== undefined ? { durationMs: parseDuration(o.duration) } : {}),
    ...(o.cases !== undefined ? { cases: parsePositiveInt(o.cases, '--cases') } : {}),
  };
  if (o.generator !== undefined && o.generator !== 'auto' && o.generator !== 'builtin') throw new UsageProblem(`--generator: '${o.generator}' is not auto or builtin`);
  return {
    budget,
    dataDir: o.dataDir,
    namespace: checkNamespace(o.namespace),
    ...(o.campaignSeed !== undefined ? { seed: parseSeed(o.campaignSeed) } : {}),
    ...(o.batchSize !== undefined ? { batchSize: parsePositiveInt(o.batchSize, '--batch-size') } : {}),
    ...(o.maxQueuedBatches !== undefined ? { maxInflightBatches: parsePositiveInt(o.maxQueuedBatches, '--max-queued-batches') } : {}),
    ...(o.mutationRate !== undefined ? { mutationRate: parseRate(o.mutationRate, '--mutation-rate') } : {}),
    ...(o.generator !== undefined ? { generator: o.generator as 'auto' | 'builtin' } : {}),
    seeds: o.seeds,
    redisDownGraceMs: parseDuration(o.redisGrace, '--redis-grace'),
  };
}

/** The farm options shared by `coordinator` and `campaign`. */
export function addCampaignOptions(cmd: Command): Command {
  return cmd
    .option('--campaign-seed <n>', 'resume or start campaign seed-<n> (default: resume the latest unfinished one, else a random seed)')
    .option('--duration <time>', 'stop generating after this much running time (90, 90s, 5m, 1h)')
    .option('--cases <n>', 'stop generating after n cases per target')
    .option('--data-dir <dir>', 'corpus, findings, reports, campaign records (and the private Redis)', DEFAULT_DATA_DIR)
    .option('--namespace <ns>', 'prefix of every Redis key and queue (several farms on one Redis)', DEFAULT_NAMESPACE)
    .option('--batch-size <n>', 'cases per batch (default per target: model 64, host 8, qemu 4)')
    .option('--max-queued-batches <n>', 'back-pressure: batches in flight per target', '8')
    .option('--mutation-rate <r>', 'share of cases that mutate a corpus entry', '0.25')
    .option('--generator <which>', 'auto (the case generator of this build) or builtin (a small stand-in)')
    .option('--no-seeds', 'do not start with the seed cases of corpus/seeds')
    .option('--redis-grace <time>', 'stop (exit 4) when Redis has been unreachable this long', '20s')
    .option('--json', 'print the summary as one JSON object on stdout')
    .option('--dashboard <port>', 'also serve the dashboard on this port of 127.0.0.1 (BLOCKFARM_DASHBOARD_HOST and BLOCKFARM_DASHBOARD_TOKEN to bind elsewhere)');
}

async function coordinatorCommand(o: FarmCampaignCliOptions, ctx: CliContext): Promise<number> {
  const tty = process.stderr.isTTY === true && process.env.BLOCKFARM_LOG_FORMAT !== 'json';
  const display = new ProgressDisplay(tty, ctx.log);
  const log = tty ? barAwareLogger(display, { name: 'coordinator', ...(ctx.log.level === 'debug' ? { level: 'debug' as const } : {}) }) : ctx.log;
  const lock = new DataDirLock(o.dataDir);
  let dashboard: DashboardServer | undefined;
  try {
    const url = redisUrlFrom(o.redis);
    if (!url) throw new UsageProblem('--redis URL (or BLOCKFARM_REDIS_URL) is required; `blockfarm campaign` runs a private Redis instead');
    const targets = await parseTargets(o.targets?.length ? o.targets : ['model'], { allowHost: true });
    const base = coordinatorOptionsFrom(o);
    checkDashboardPort(o.dashboard);
    await lock.acquire();
    log.info({ redis: redactUrl(url), targets }, 'coordinator starting');
    if (o.dashboard !== undefined) dashboard = await startEmbeddedDashboard({ port: o.dashboard, redisUrl: url, dataDir: o.dataDir, namespace: base.namespace!, log });
    const { code } = await runCampaign({ ...base, redisUrl: url, targets, log }, ctx, { json: Boolean(o.json), display });
    return code;
  } catch (err) {
    display.done();
    const known = farmErrorExit(err);
    if (!known) throw err;
    ctx.err(`blockfarm coordinator: ${known.line}`);
    return known.code;
  } finally {
    await dashboard?.close();
    await lock.release();
  }
}

export function registerCoordinator(program: Command, host: CommandHost): void {
  const cmd = program
    .command('coordinator')
    .description('run (or resume) a campaign through Redis queues served by workers anywhere (blockfarm worker)')
    .option('--redis <url>', 'redis://[user:password@]host[:port][/db] or rediss:// (TLS); default BLOCKFARM_REDIS_URL')
    .option('-t, --targets <names...>', 'targets to run cases on, comma-separated (model, host, qemu:<kernel>)');
  addCampaignOptions(cmd)
    .addHelpText(
      'after',
      '\nWithout --duration or --cases the campaign runs until stopped; SIGINT/SIGTERM pause it and the next\n' +
        'start resumes it. Passwords: prefer BLOCKFARM_REDIS_URL or BLOCKFARM_REDIS_PASSWORD to argv.\n' +
        'Exit codes: 0 no findings, 1 findings, 2 bad input, 4 Redis unreachable or infrastructure errors.',
    )
    .action(async (opts: FarmCampaignCliOptions, c: Command) => {
      host.setExitCode(await coordinatorCommand(opts, host.context(c)));
    });
}

