/**
 * `blockfarm dashboard [--redis URL] [--data DIR] [--port N] [--host H]
 *  [--token T] [--namespace NS]`: serve the campaign dashboard (pages, JSON
 * API, /metrics, the queue UI under /queues) until SIGINT/SIGTERM. It reads
 * Redis and the data directory and never changes either.
 *
 * Bound to 127.0.0.1 by default; any other address needs a token (--token or
 * BLOCKFARM_DASHBOARD_TOKEN), checked on every request.
 *
 * Exit codes: 0 stopped by a signal, 2 bad input (a public bind without a
 * token, a bad port, no Redis URL, a port in use), 4 Redis unreachable.
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { DEFAULT_NAMESPACE } from '../../../worker/farm/protocol.ts';
import { TOKEN_ENV, parsePort } from '../../dashboard/access.ts';
import { DashboardRefused, DashboardServer } from '../../dashboard/server.ts';
import { farmErrorExit } from '../../farm/cli-errors.ts';
import { UsageProblem, checkNamespace, redisUrlFrom } from '../../farm/cli-options.ts';
import { DEFAULT_DATA_DIR } from '../../farm/data-dir.ts';
import type { CliContext, CommandHost } from '../context.ts';

export const DEFAULT_DASHBOARD_PORT = 8080;

interface DashboardCliOptions {
  redis?: string;
  data?: string;
  dataDir?: string;
  port: string;
  host: string;
  token?: string;
  namespace: string;
}

async function dashboardCommand(o: DashboardCliOptions, ctx: CliContext): Promise<number> {
  let server: DashboardServer | undefined;
  try {
    const url = redisUrlFrom(o.redis);
    if (!url) throw new UsageProblem('--redis URL (or BLOCKFARM_REDIS_URL) is required: the Redis of the farm to show');
    const token = o.token ?? (process.env[TOKEN_ENV] || undefined);
    server = new DashboardServer({
      redisUrl: url,
      dataDir: o.data ?? o.dataDir ?? DEFAULT_DATA_DIR,
      namespace: checkNamespace(o.namespace),
      host: o.host,
      port: parsePort(o.port),
      ...(token ? { token } : {}),
      log: ctx.log,
    });
    const at = await server.start();
    ctx.out(`dashboard: ${at}/${token ? ' (token required: Authorization: Bearer, or open it once with ?token=...)' : ''}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return EXIT.pass;
  } catch (err) {
    if (err instanceof DashboardRefused) {
      ctx.err(`blockfarm dashboard: ${err.message}`);
      return EXIT.badInput;
    }
    const known = farmErrorExit(err);
    if (!known) throw err;
    ctx.err(`blockfarm dashboard: ${known.line}`);
    return known.code;
  } finally {
    await server?.close();
  }
}

export function registerDashboard(program: Command, host: CommandHost): void {
  program
    .command('dashboard')
    .description('serve the campaign dashboard: overview, signatures, reports, kernels, workers, queues, /metrics, a JSON API (read-only)')
    .option('--redis <url>', "the farm's Redis (default BLOCKFARM_REDIS_URL)")
    .option('--data <dir>', `the farm's data directory (reports) (default ${DEFAULT_DATA_DIR})`)
    .option('--data-dir <dir>', 'the same as --data')
    .option('--port <n>', 'TCP port (0 = any free port)', String(DEFAULT_DASHBOARD_PORT))
    .option('--host <addr>', 'address to bind; anything but loopback needs a token', '127.0.0.1')
    .option('--token <token>', `required on every request when set (default ${TOKEN_ENV}); at least 16 characters`)
    .option('--namespace <ns>', 'the farm namespace (prefix of its Redis keys and queues)', DEFAULT_NAMESPACE)
    .addHelpText('after', '\nExit codes: 0 stopped (SIGINT/SIGTERM), 2 bad input (a public bind without a token, a port in use), 4 Redis unreachable.')
    .action(async (opts: DashboardCliOptions, c: Command) => {
      host.setExitCode(await dashboardCommand(opts, host.context(c)));
    });
}
