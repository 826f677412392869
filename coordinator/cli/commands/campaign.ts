/**
 * `blockfarm campaign` (what `npm start` runs): the whole farm in one
 * command. Without --redis it starts a private redis-server (Debian's
 * package) on a free 127.0.0.1 port with its data in <data dir>/redis, local
 * workers (runner child processes) and the coordinator; runs a short campaign
 * (default 60 s) on the model and on the QEMU target when this machine can
 * run it (the host only with --allow-host); shows progress; prints a summary
 * table and where the reports are; stops its redis-server by PID.
 *
 * With --redis URL the same command uses that Redis: workers on other
 * machines (`blockfarm worker --redis URL ...`) join in, and --workers 0
 * leaves all the work to them.
 *
 * A campaign interrupted (Ctrl-C, a crash) resumes on the next start with the
 * same data directory (and --campaign-seed, if one was given).
 *
 * Exit codes: 0 no findings, 1 findings, 2 bad input, 3 no redis-server here
 * (apt-get install redis-server, or --redis URL), 4 Redis lost or
 * infrastructure errors without findings.
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { redactUrl } from '../../../infra/redis/connection.ts';
import { farmErrorExit } from '../../farm/cli-errors.ts';
import { defaultTargets, parsePositiveInt, parseTargets, redisUrlFrom } from '../../farm/cli-options.ts';
import { LocalFarm } from '../../farm/local-farm.ts';
import { checkDashboardPort, startEmbeddedDashboard } from '../../dashboard/embedded.ts';
import type { DashboardServer } from '../../dashboard/server.ts';
import { ProgressDisplay, barAwareLogger } from '../../farm/progress.ts';
import { runCampaign } from '../../farm/run-campaign.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { type FarmCampaignCliOptions, addCampaignOptions, coordinatorOptionsFrom } from './coordinator.ts';

export const DEFAULT_CAMPAIGN_DURATION = '60s';

interface CampaignCliOptions extends FarmCampaignCliOptions {
  workers?: string;
}

async function campaignCommand(o: CampaignCliOptions, ctx: CliContext): Promise<number> {
  const tty = process.stderr.isTTY === true && process.env.BLOCKFARM_LOG_FORMAT !== 'json';
  const display = new ProgressDisplay(tty, ctx.log);
  const log = tty ? barAwareLogger(display, { name: 'campaign', ...(ctx.log.level === 'debug' ? { level: 'debug' as const } : {}) }) : ctx.log;
  let farm: LocalFarm | undefined;
  let dashboard: DashboardServer | undefined;
  try {
    const url = redisUrlFrom(o.redis);
    const allowHost = Boolean(o.allowHost);
    let targets: string[];
    if (o.targets?.length) targets = await parseTargets(o.targets, { allowHost });
    else {
      const d = await defaultTargets({ allowHost });
      targets = d.targets;
      for (const n of d.notes) log.info(n);
    }
    const base = coordinatorOptionsFrom({ ...o, ...(o.duration === undefined && o.cases === undefined ? { duration: DEFAULT_CAMPAIGN_DURATION } : {}) });
    const concurrency = o.workers !== undefined ? parsePositiveInt(o.workers, '--workers', 0) : undefined;
    checkDashboardPort(o.dashboard);
    farm = new LocalFarm({ dataDir: o.dataDir, ...(url ? { redisUrl: url } : {}), targets, ...(concurrency !== undefined ? { concurrency } : {}), allowHost, namespace: base.namespace!, log });
    await farm.start();
    if (o.dashboard !== undefined) dashboard = await startEmbeddedDashboard({ port: o.dashboard, redisUrl: farm.url, dataDir: o.dataDir, namespace: base.namespace!, log });
    log.info({ redis: url ? redactUrl(url) : `private (pid ${farm.redisPid})`, targets, workers: farm.workers.length }, 'farm up');
    const { code } = await runCampaign({ ...base, redisUrl: farm.url, targets, log }, ctx, { json: Boolean(o.json), display });
    return code;
  } catch (err) {
    display.done();
    const known = farmErrorExit(err);
    if (!known) throw err;
    ctx.err(`blockfarm campaign: ${known.line}`);
    return known.code;
  } finally {
    await dashboard?.close();
    await farm?.stop();
  }
}

export function registerCampaign(program: Command, host: CommandHost): void {
  const cmd = program
    .command('campaign')
    .description('the whole farm in one command: a private Redis, local workers and a short campaign (npm start runs this)')
    .option('--redis <url>', 'use this Redis instead of a private one (workers elsewhere may join); default BLOCKFARM_REDIS_URL')
    .option('-t, --targets <names...>', 'targets, comma-separated (default: model, plus qemu when this machine can run it, plus host with --allow-host)')
    .option('--allow-host', "also run cases on this machine's own kernel (a kernel bug can take the machine down)")
    .option('--workers <n>', 'batches at once per target on this machine (default: model cores-1, others 1; 0 = none, with --redis)');
  addCampaignOptions(cmd)
    .addHelpText(
      'after',
      `\nDefault budget: --duration ${DEFAULT_CAMPAIGN_DURATION}. Ctrl-C pauses; the same command resumes the campaign.\n` +
        'Exit codes: 0 no findings, 1 findings, 2 bad input, 3 no redis-server here, 4 Redis lost or infrastructure errors.',
    )
    .action(async (opts: CampaignCliOptions, c: Command) => {
      if (opts.workers === '0' && !opts.redis && !process.env.BLOCKFARM_REDIS_URL) {
        host.context(c).err('blockfarm campaign: --workers 0 needs --redis URL (with a private Redis nobody else could do the work)');
        host.setExitCode(EXIT.badInput);
        return;
      }
      host.setExitCode(await campaignCommand(opts, host.context(c)));
    });
}

