/**
 * The farm commands' expected failures, as one line and an exit code
 * (model/verdict.ts EXIT): what the user must change is bad input (2), what
 * this machine lacks is 3, an unreachable Redis is an infrastructure error (4).
 */
import { EXIT } from '../../model/index.ts';
import { BadRedisUrl, RedisUnavailable } from '../../infra/redis/connection.ts';
import { RedisServerMissing } from '../../infra/redis/server.ts';
import { TargetRefused } from '../../worker/targets/target.ts';
import { CampaignBusy, CampaignFinished } from './campaign-state.ts';
import { UsageProblem } from './cli-options.ts';

export function farmErrorExit(err: unknown): { line: string; code: number } | undefined {
  if (err instanceof UsageProblem || err instanceof BadRedisUrl) return { line: err.message, code: EXIT.badInput };
  if (err instanceof CampaignFinished || err instanceof CampaignBusy) return { line: err.message, code: EXIT.badInput };
  if (err instanceof RedisUnavailable) {
    // Connections to a dead Redis may keep handles open: make sure the process ends once the line is out.
    setTimeout(() => process.exit(EXIT.infra), 3000).unref();
    return { line: err.message, code: EXIT.infra };
  }
  if (err instanceof RedisServerMissing) return { line: err.message, code: EXIT.unsupported };
  if (err instanceof TargetRefused) return { line: err.message, code: err.exitCode };
  const msg = (err as Error)?.message ?? '';
  if (/is in use by process \d+/.test(msg)) return { line: msg, code: EXIT.badInput };
  return undefined;
}
