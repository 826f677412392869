/**
 * `blockfarm campaign` (what `npm start` runs). For now: every seed case in
 * corpus/seeds on the model target, as `run` would, printed as a table
 * (case, scenario, verdict, ms) with a summary line. The real campaign
 * (generator, queues, workers, triage) is a later issue.
 * Exit codes as `run`; no seed cases at all is bad input (2).
 */
import { promises as fsp } from 'node:fs';
import { basename, relative } from 'node:path';
import type { Command } from 'commander';
import { SEEDS_DIR, scenarioOfFileName } from '../../../corpus/seeds.ts';
import { EXIT } from '../../../model/index.ts';
import { loadCasePaths } from '../case-files.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { formatTable } from '../table.ts';
import { targetNameProblem } from '../../target-kinds.ts';
import { type CaseResult, type RunReport, jsonReport, resultDetailLines, runLoadedCases, summaryLine } from './run.ts';

/** The scenario column: S1..S5 from the file name prefix, '-' for other names. */
function scenarioTag(file: string): string {
  return scenarioOfFileName(file) ?? '-';
}

async function seedProblem(dir: string): Promise<string | undefined> {
  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) return `${dir} is not a directory`;
    const names = await fsp.readdir(dir);
    if (!names.some((n) => n.endsWith('.json'))) return `${dir} holds no *.json seed cases`;
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${dir} does not exist` : `cannot read ${dir}: ${(err as Error).message}`;
  }
}

function displayPath(dir: string): string {
  const rel = relative(process.cwd(), dir);
  return rel && !rel.startsWith('..') ? rel : dir;
}

function campaignTable(results: readonly CaseResult[]): string {
  const rows = results.map((r) => [r.case ?? basename(r.file), scenarioTag(r.file), r.verdict, r.verdict === 'invalid' ? '-' : String(r.durationMs)]);
  return formatTable(['case', 'scenario', 'verdict', 'ms'], rows);
}

export interface CampaignOptions {
  seeds: string;
  target: string;
  json: boolean;
}

export async function campaignCommand(opts: CampaignOptions, ctx: CliContext): Promise<number> {
  const problem = targetNameProblem(opts.target);
  if (problem) {
    ctx.err(`blockfarm campaign: ${problem}`);
    return EXIT.badInput;
  }
  const seeds = displayPath(opts.seeds);
  const missing = await seedProblem(opts.seeds);
  if (missing) {
    ctx.err(`blockfarm campaign: no seed cases to run: ${missing}`);
    return EXIT.badInput;
  }
  const report: RunReport = await runLoadedCases(await loadCasePaths([seeds]), opts.target, ctx);
  if (opts.json) {
    ctx.out(JSON.stringify(jsonReport(report, false), null, 2));
    return report.summary.exitCode;
  }
  ctx.out(`seed cases in ${seeds} on the ${opts.target} target (the farm campaign with queues and workers comes later)`);
  ctx.out('');
  ctx.out(campaignTable(report.results));
  const details = report.results.filter((r) => r.verdict !== 'pass');
  if (details.length) ctx.out('');
  for (const r of details) {
    if (r.verdict !== 'invalid') ctx.out(`${r.case} (${r.file}): ${r.verdict}`);
    for (const line of resultDetailLines(r)) ctx.out(line);
  }
  ctx.out('');
  ctx.out(summaryLine(report.summary));
  return report.summary.exitCode;
}

export function registerCampaign(program: Command, host: CommandHost): void {
  program
    .command('campaign')
    .description('for now: run every seed case in corpus/seeds on the model and print a summary (npm start runs this)')
    .option('--seeds <dir>', 'directory of seed cases', SEEDS_DIR.replace(/\/$/, ''))
    .option('-t, --target <name>', 'where to run: model (host and qemu:<kernel> come later)', 'model')
    .option('--json', 'print one JSON object {target, results, summary} on stdout')
    .addHelpText(
      'after',
      '\nNot yet the farm: the campaign with a case generator, BullMQ queues, workers, triage and\n' +
        'reports comes in a later issue. Today this is `blockfarm run corpus/seeds` with a table.\n' +
        'Exit codes as `run`; an absent or empty seed directory is bad input (2).',
    )
    .action(async (opts: CampaignOptions, cmd: Command) => {
      host.setExitCode(await campaignCommand(opts, host.context(cmd)));
    });
}
