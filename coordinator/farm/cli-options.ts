/**
 * Option parsing shared by `blockfarm coordinator`, `worker` and `campaign`:
 * durations, counts, target lists and the Redis URL, each with a one-line
 * complaint (bad input, exit 2) instead of a stack.
 */
import { knownTargetsLine } from '../target-kinds.ts';
import { BadRedisUrl, parseRedisUrl } from '../../infra/redis/connection.ts';
import { namespaceProblem, targetNameSyntaxProblem } from '../../worker/farm/protocol.ts';
import { resolveTargetFactory } from '../../worker/farm/targets.ts';

export class UsageProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageProblem';
  }
}

/** "90", "90s", "5m", "1h30m" -> ms. */
export function parseDuration(text: string, what = '--duration'): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t) && Number(t) > 0) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const n = Number(m[1]);
    ms += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    matched = re.lastIndex;
  }
  if (!t || matched !== t.length || ms <= 0) throw new UsageProblem(`${what}: '${text}' is not a duration (seconds, or e.g. 90s, 5m, 1h30m)`);
  return Math.round(ms);
}

export function parsePositiveInt(text: string, what: string, min = 1): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) throw new UsageProblem(`${what}: '${text}' is not a whole number >= ${min}`);
  return n;
}

export function parseSeed(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n > 0x7fffffff) throw new UsageProblem(`--campaign-seed: '${text}' is not a whole number 0..2147483647`);
  return n;
}

export function parseRate(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new UsageProblem(`${what}: '${text}' is not a number in [0, 1]`);
  return n;
}

export function checkNamespace(ns: string): string {
  const p = namespaceProblem(ns);
  if (p) throw new UsageProblem(`--namespace: ${p}`);
  return ns;
}

/** The Redis URL from --redis or BLOCKFARM_REDIS_URL (checked, not connected). */
export function redisUrlFrom(opt: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = opt ?? env.BLOCKFARM_REDIS_URL;
  if (url === undefined || url === '') return undefined;
  try {
    parseRedisUrl(url, env);
  } catch (err) {
    if (err instanceof BadRedisUrl) throw new UsageProblem(`--redis: ${err.message}`);
    throw err;
  }
  return url;
}

/** Split "model,qemu:x" (and repeated options) into checked target names. */
export async function parseTargets(values: readonly string[], opts: { allowHost: boolean }): Promise<string[]> {
  const names = [...new Set(values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean))];
  if (!names.length) throw new UsageProblem('no target given');
  for (const n of names) {
    const syntax = targetNameSyntaxProblem(n);
    if (syntax) throw new UsageProblem(syntax);
    if (!(await resolveTargetFactory(n))) throw new UsageProblem(`unknown target '${n}'; ${knownTargetsLine()}`);
    if (n === 'host' && !opts.allowHost)
      throw new UsageProblem("the host target runs cases on this machine's own kernel (a kernel bug can take the machine down): add --allow-host to mean it");
  }
  return names;
}

/**
 * What `blockfarm campaign` runs on when no --targets are given: the model,
 * the QEMU target when this build has it and this machine can run it, and
 * the host only with --allow-host.
 */
export async function defaultTargets(opts: { allowHost: boolean }): Promise<{ targets: string[]; notes: string[] }> {
  const targets = ['model'];
  const notes: string[] = [];
  const qemu = await resolveTargetFactory('qemu');
  if (!qemu) notes.push('qemu: not in this build yet, so the campaign runs on the model only');
  else {
    const missing = (await qemu.requirements().catch(() => [])).filter((c) => c.status === 'missing' && !c.optional);
    if (missing.length) notes.push(`qemu: not ready on this machine (${missing.map((c) => c.what).join(', ')} missing; see blockfarm doctor)`);
    else targets.push('qemu');
  }
  if (opts.allowHost) targets.push('host');
  return { targets, notes };
}
