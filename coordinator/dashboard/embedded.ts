/**
 * The dashboard inside `blockfarm coordinator` / `blockfarm campaign`
 * (--dashboard PORT): the same server, on 127.0.0.1 unless
 * BLOCKFARM_DASHBOARD_HOST says otherwise (then BLOCKFARM_DASHBOARD_TOKEN is
 * required, as for `blockfarm dashboard`). Refusals are usage problems (exit 2).
 */
import type { Logger } from '../../infra/log.ts';
import { UsageProblem } from '../farm/cli-options.ts';
import { TOKEN_ENV, parsePort } from './access.ts';
import { DashboardRefused, DashboardServer } from './server.ts';

export const HOST_ENV = 'BLOCKFARM_DASHBOARD_HOST';

export interface EmbeddedDashboardOptions {
  /** The --dashboard value. */
  port: string;
  redisUrl: string;
  dataDir: string;
  namespace: string;
  log: Logger;
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
}

/** Check --dashboard before anything starts (a bad port is bad input at once). */
export function checkDashboardPort(port: string | undefined): number | undefined {
  return port === undefined ? undefined : parsePort(port, '--dashboard');
}

export async function startEmbeddedDashboard(o: EmbeddedDashboardOptions): Promise<DashboardServer> {
  const env = o.env ?? process.env;
  const token = env[TOKEN_ENV] || undefined;
  try {
    const server = new DashboardServer({
      redisUrl: o.redisUrl,
      dataDir: o.dataDir,
      namespace: o.namespace,
      host: env[HOST_ENV] || '127.0.0.1',
      port: parsePort(o.port, '--dashboard'),
      ...(token ? { token } : {}),
      log: o.log,
    });
    await server.start();
    return server;
  } catch (err) {
    if (err instanceof DashboardRefused) throw new UsageProblem(`--dashboard: ${err.message}`);
    throw err;
  }
}
