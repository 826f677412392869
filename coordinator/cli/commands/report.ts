/**
 * `blockfarm report SIG [--data-dir D] [--json] [--rewrite]`: print a
 * signature's report (report.md, or report.json with --json). A signature
 * filed without a report yet (or with --rewrite) gets its report folder
 * written first, from its record and cases: report.md, report.json and the
 * standalone reproducers repro.sh and repro.c.
 * Exit: 0, 2 for an unknown signature.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { writeReport } from '../../triage/index.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { DEFAULT_DATA_DIR, findSignature, storeFor } from './triage.ts';

export interface ReportOptions {
  dataDir: string;
  json?: boolean;
  rewrite?: boolean;
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}

export async function reportCommand(sig: string, opts: ReportOptions, ctx: CliContext): Promise<number> {
  const store = storeFor(opts.dataDir);
  const found = await findSignature(store, sig);
  if ('problem' in found) {
    ctx.err(`blockfarm report: ${found.problem}`);
    return EXIT.badInput;
  }
  const r = found.record;
  const dir = store.dir(r.id);
  if (opts.rewrite || !(await exists(join(dir, 'report.md')))) {
    const original = await store.getCase(r.id, 'original');
    if (!original) {
      ctx.err(`blockfarm report: signature ${r.id} has no case.json to report on`);
      return EXIT.badInput;
    }
    const minimized = await store.getCase(r.id, 'minimized');
    const old = JSON.parse(await fsp.readFile(join(dir, 'report.json'), 'utf8').catch(() => '{}')) as { outcome?: never; bisect?: never; crossKernel?: never };
    const log = await fsp.readFile(join(dir, 'console.log'), 'utf8').catch(() => undefined);
    const files = await writeReport(dir, {
      record: r,
      original,
      ...(minimized ? { minimized } : {}),
      ...(old.outcome ? { outcome: old.outcome } : {}),
      ...(old.bisect ? { bisect: old.bisect } : {}),
      ...(old.crossKernel ? { crossKernel: old.crossKernel } : {}),
      ...(log ? { kernelLog: log } : {}),
    });
    ctx.log.info({ dir, files: files.files }, 'report written');
  }
  ctx.out((await fsp.readFile(join(dir, opts.json ? 'report.json' : 'report.md'), 'utf8')).trimEnd());
  return EXIT.pass;
}

export function registerReport(program: Command, host: CommandHost): void {
  program
    .command('report')
    .description("print a signature's report (written first if there is none yet): what the model allowed, what the kernel did, the minimized case, reproducers")
    .argument('<sig>', 'a signature id, or a unique prefix of one (see blockfarm triage)')
    .option('-d, --data-dir <dir>', 'the data directory', DEFAULT_DATA_DIR)
    .option('--json', 'print report.json instead of report.md')
    .option('--rewrite', 'write the report folder again from the record and the cases')
    .action(async (sig: string, opts: ReportOptions, cmd: Command) => {
      host.setExitCode(await reportCommand(sig, opts, host.context(cmd)));
    });
}
