/**
 * `blockfarm worker --redis URL --target T [--concurrency N] [--allow-host]`:
 * serve the exec queues of one or more targets until stopped. Batches run in
 * runner child processes, so a crashing target fails its batch, not the
 * worker. SIGTERM/SIGINT: take no new batch, let running batches finish for
 * --shutdown-grace, then return them to the queue; exit 0.
 *
 * Exit codes: 0 stopped by a signal, 2 bad input (options, the host target
 * without --allow-host), 3 a target that cannot run on this machine,
 * 4 Redis unreachable at start or lost for longer than --redis-grace.
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { RedisWatchdog, connectRedis, redactUrl } from '../../../infra/redis/connection.ts';
import { FarmWorker } from '../../../worker/farm/farm-worker.ts';
import { DEFAULT_NAMESPACE } from '../../../worker/farm/protocol.ts';
import { farmErrorExit } from '../../farm/cli-errors.ts';
import { UsageProblem, checkNamespace, parseDuration, parsePositiveInt, parseTargets, redisUrlFrom } from '../../farm/cli-options.ts';
import type { CliContext, CommandHost } from '../context.ts';

interface WorkerCliOptions {
  redis?: string;
  target?: string[];
  concurrency: string;
  allowHost?: boolean;
  namespace: string;
  dataDir?: string;
  lockDuration?: string;
  stalledInterval?: string;
  shutdownGrace: string;
  redisGrace: string;
}

async function workerCommand(o: WorkerCliOptions, ctx: CliContext): Promise<number> {
  let worker: FarmWorker | undefined;
  let watchdog: RedisWatchdog | undefined;
  try {
    const url = redisUrlFrom(o.redis);
    if (!url) throw new UsageProblem('--redis URL (or BLOCKFARM_REDIS_URL) is required');
    if (!o.target?.length) throw new UsageProblem('--target is required (model, host, qemu:<kernel>; several allowed)');
    const targets = await parseTargets(o.target, { allowHost: Boolean(o.allowHost) });
    const concurrency = parsePositiveInt(o.concurrency, '--concurrency');
    const namespace = checkNamespace(o.namespace);
    const graceMs = parseDuration(o.shutdownGrace, '--shutdown-grace');
    const redisGraceMs = parseDuration(o.redisGrace, '--redis-grace');
    const probe = await connectRedis(url, { connectionName: 'blockfarm-worker-watchdog' });
    probe.on('error', () => {});
    const lost = new Promise<Error>((resolve) => {
      watchdog = new RedisWatchdog(probe, url, redisGraceMs, resolve);
    });
    worker = new FarmWorker({
      redisUrl: url,
      targets,
      concurrency,
      allowHost: Boolean(o.allowHost),
      namespace,
      log: ctx.log,
      shutdownGraceMs: graceMs,
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      ...(o.lockDuration ? { lockDurationMs: parseDuration(o.lockDuration, '--lock-duration') } : {}),
      ...(o.stalledInterval ? { stalledIntervalMs: parseDuration(o.stalledInterval, '--stalled-interval') } : {}),
    });
    const w = worker;
    const gone = (err: Error): number => {
      ctx.err(`blockfarm worker: ${err.message}`);
      watchdog?.stop();
      probe.disconnect();
      w.abandon();
      setTimeout(() => process.exit(EXIT.infra), 3000).unref();
      return EXIT.infra;
    };
    // Redis may die while the queues are still connecting: that too ends in one line and exit 4.
    const started = await Promise.race([w.start().then(() => 'started' as const), lost]);
    if (started instanceof Error) return gone(started);
    ctx.log.info({ redis: redactUrl(url), pid: process.pid }, 'serving; SIGTERM or SIGINT to stop');
    const stopped = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    const nothingLeft = new Promise<'refused'>((resolve) => {
      w.on('target-refused', (target, message) => {
        ctx.err(`blockfarm worker: target '${target}' cannot run here: ${message}`);
        if (!w.serving.length) resolve('refused');
      });
    });
    const first = await Promise.race([stopped, lost, nothingLeft]);
    if (first === 'refused') {
      await w.close();
      watchdog?.stop();
      probe.disconnect();
      return EXIT.unsupported;
    }
    if (first instanceof Error) return gone(first);
    ctx.log.info({ signal: first }, 'stopping: running batches finish or go back to the queue');
    process.on(first, () => {
      ctx.err(`blockfarm worker: ${first} again: exiting now (running batches return to the queue when their lock lapses)`);
      process.exit(130);
    });
    await worker.close();
    watchdog?.stop();
    probe.disconnect();
    return EXIT.pass;
  } catch (err) {
    watchdog?.stop();
    await worker?.close().catch(() => {});
    const known = farmErrorExit(err);
    if (!known) throw err;
    ctx.err(`blockfarm worker: ${known.line}`);
    return known.code;
  }
}

export function registerWorker(program: Command, host: CommandHost): void {
  program
    .command('worker')
    .description("serve the exec queues of one or more targets: run batches, judge them with the model, report verdicts")
    .option('--redis <url>', 'redis://[user:password@]host[:port][/db] or rediss:// (TLS); default BLOCKFARM_REDIS_URL')
    .option('-t, --target <names...>', 'targets to serve (model, host, qemu:<kernel>); several, or comma-separated')
    .option('-c, --concurrency <n>', 'batches at once per target (one runner process each)', '1')
    .option('--allow-host', "allow the host target: cases run on this machine's own kernel")
    .option('--namespace <ns>', 'prefix of every Redis key and queue (as the coordinator)', DEFAULT_NAMESPACE)
    .option('--data-dir <dir>', 'where targets keep their files (VM images, work directories)')
    .option('--lock-duration <time>', "how long a batch stays this worker's after its renewals stop (default: the target's longest case)")
    .option('--stalled-interval <time>', 'how often to look for batches of dead workers', '30s')
    .option('--shutdown-grace <time>', 'on SIGTERM: how long running batches may finish before going back to the queue', '30s')
    .option('--redis-grace <time>', 'exit (4) when Redis has been unreachable this long', '60s')
    .addHelpText('after', '\nExit codes: 0 stopped by a signal, 2 bad input, 3 target cannot run here, 4 Redis unreachable or lost.')
    .action(async (opts: WorkerCliOptions, cmd: Command) => {
      host.setExitCode(await workerCommand(opts, host.context(cmd)));
    });
}
