/**
 * `blockfarm generate --seed N --count K [--out DIR] [--target-kinds host|qemu|all]`:
 * cases 0..K-1 of the campaign with seed N, for what the target kinds can
 * build. With --out, one file per case (DIR/<name>.json) and the scenario
 * statistics on stdout; without it, one case per line (JSON) on stdout and
 * the statistics on stderr, for piping.
 * Exit: 0 done, 2 bad options or an unwritable directory.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { ScenarioCounter, formatScenarioStats } from '../../classify/stats.ts';
import { type GenerateOptions, GenerateOptionsError, SUPPORTS, type TargetKinds, generateCase, normalizeOptions } from '../../generate/index.ts';
import type { CliContext, CommandHost } from '../context.ts';

export interface GenerateCliOptions {
  seed: string;
  count: string;
  out?: string;
  targetKinds: string;
  maxOps?: string;
  maxThreads?: string;
}

function integer(v: string | undefined, what: string, min: number, max: number): number | string {
  if (v === undefined) return `${what} is required`;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) return `${what} must be an integer from ${min} to ${max}, not '${v}'`;
  return n;
}

export async function generateCommand(opts: GenerateCliOptions, ctx: CliContext): Promise<number> {
  const seed = integer(opts.seed, '--seed', 0, 0xffffffff);
  const count = integer(opts.count, '--count', 1, 1_000_000);
  const problems = [seed, count].filter((x): x is string => typeof x === 'string');
  if (!(opts.targetKinds in SUPPORTS)) problems.push(`--target-kinds must be one of ${Object.keys(SUPPORTS).join(', ')}, not '${opts.targetKinds}'`);
  const gen: GenerateOptions = { supports: SUPPORTS[opts.targetKinds as TargetKinds] ?? SUPPORTS.all };
  for (const [key, flag, min, max] of [['maxOps', '--max-ops', 8, 100_000], ['maxThreads', '--max-threads', 1, 8]] as const) {
    if (opts[key] === undefined) continue;
    const n = integer(opts[key], flag, min, max);
    if (typeof n === 'string') problems.push(n);
    else gen[key] = n;
  }
  if (!problems.length) {
    try {
      normalizeOptions(gen);
    } catch (err) {
      if (!(err instanceof GenerateOptionsError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length || typeof seed !== 'number' || typeof count !== 'number') {
    for (const p of problems) ctx.err(`blockfarm generate: ${p}`);
    return EXIT.badInput;
  }
  if (opts.out) {
    try {
      await fsp.mkdir(opts.out, { recursive: true });
    } catch (err) {
      ctx.err(`blockfarm generate: cannot create ${opts.out}: ${(err as Error).message}`);
      return EXIT.badInput;
    }
  }
  const stats = new ScenarioCounter();
  for (let i = 0; i < count; i++) {
    const c = generateCase(seed, i, gen);
    stats.add(c);
    if (opts.out) await fsp.writeFile(join(opts.out, `${c.name}.json`), `${JSON.stringify(c, null, 2)}\n`);
    else ctx.out(JSON.stringify(c));
  }
  const table = formatScenarioStats(stats.snapshot());
  if (opts.out) {
    ctx.out(`wrote ${count} case(s) of campaign seed ${seed} (${opts.targetKinds}) to ${opts.out}`);
    ctx.out('');
    ctx.out(table);
  } else ctx.err(table);
  ctx.log.debug({ seed, count, targetKinds: opts.targetKinds }, 'generate done');
  return EXIT.pass;
}

export function registerGenerate(program: Command, host: CommandHost): void {
  program
    .command('generate')
    .description('write the cases a campaign with this seed would run (reproducible: same seed, same cases)')
    .requiredOption('--seed <n>', 'campaign seed (0 to 4294967295)')
    .requiredOption('--count <k>', 'how many cases (case 0 to k-1)')
    .option('--out <dir>', 'write DIR/<name>.json per case (default: one JSON case per line on stdout)')
    .option('--target-kinds <kinds>', 'what the cases may need: host (disk, fs, file, loop), qemu (every layer kind), all', 'all')
    .option('--max-ops <n>', 'most ops in a case (default 60)')
    .option('--max-threads <n>', 'most threads in a case (default 4)')
    .addHelpText('after', '\nThe scenario statistics (from the classifier) go to stdout with --out, else to stderr.\nExit codes: 0 done, 2 bad options.')
    .action(async (opts: GenerateCliOptions, cmd: Command) => {
      host.setExitCode(await generateCommand(opts, host.context(cmd)));
    });
}
