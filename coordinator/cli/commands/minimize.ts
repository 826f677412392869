/**
 * `blockfarm minimize FILE --target T [--allow-host] [--out FILE]
 *  [--runs N] [--max-executions N] [--max-seconds S] [--match core|exact]
 *  [--report] [--data-dir D] [--json]`
 *
 * Runs the case on the target (in this process, through runCase), and if it
 * shows a finding, minimizes it there (coordinator/triage/minimize.ts):
 * progress on stderr, the minimized case written to --out (default
 * FILE with .min.json), a summary on stdout (--json: one object). With
 * --report the finding is also filed under <data>/reports/ and its report
 * folder written (report.md, repro.sh, repro.c...). The farm minimizes on
 * its workers instead; this is the local form.
 *
 * Exit: 1 the case shows a finding (minimized), 0 it shows none in the
 * confirmation runs, 2 bad input, 3 target refused, 4 infrastructure error.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { TargetExecutor, type MatchMode, fileFinding, kernelOfTarget, minimize, processSignature } from '../../triage/index.ts';
import { loadCaseFile, problemLine } from '../case-files.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { DEFAULT_DATA_DIR, startTarget, storeFor } from './triage.ts';
import { release, version } from 'node:os';

export interface MinimizeCliOptions {
  target: string;
  allowHost?: boolean;
  out?: string;
  runs?: string;
  maxExecutions?: string;
  maxSeconds?: string;
  match?: string;
  report?: boolean;
  dataDir: string;
  json?: boolean;
}

function positiveInt(v: string | undefined, what: string): number | undefined | string {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : `${what} must be a positive integer, not '${v}'`;
}

export async function minimizeCommand(file: string, opts: MinimizeCliOptions, ctx: CliContext): Promise<number> {
  const nums = { runs: positiveInt(opts.runs, '--runs'), maxExecutions: positiveInt(opts.maxExecutions, '--max-executions'), maxSeconds: positiveInt(opts.maxSeconds, '--max-seconds') };
  for (const v of Object.values(nums))
    if (typeof v === 'string') {
      ctx.err(`blockfarm minimize: ${v}`);
      return EXIT.badInput;
    }
  if (opts.match !== undefined && opts.match !== 'core' && opts.match !== 'exact') {
    ctx.err(`blockfarm minimize: --match is core or exact, not '${opts.match}'`);
    return EXIT.badInput;
  }
  const loaded = await loadCaseFile(file);
  if (!loaded.ok) {
    for (const p of loaded.problems) ctx.err(problemLine(file, p));
    return EXIT.badInput;
  }
  const target = await startTarget(opts.target, opts.allowHost, ctx, 'minimize');
  if (typeof target === 'number') return target;
  const executor = new TargetExecutor(target);
  try {
    const minOpts = {
      confirmRuns: (nums.runs as number | undefined) ?? 5,
      ...(nums.maxExecutions ? { maxExecutions: nums.maxExecutions as number } : {}),
      ...(nums.maxSeconds ? { maxMs: (nums.maxSeconds as number) * 1000 } : {}),
      match: (opts.match ?? 'core') as MatchMode,
      onProgress: (p: { stage: string; executions: number; size: { ops: number; threads: number; layers: number }; message: string }) =>
        ctx.err(`[${p.stage}] ${p.executions} runs, ${p.size.ops} ops/${p.size.threads} threads/${p.size.layers} layers: ${p.message}`),
    };
    const r = await minimize(executor, loaded.theCase, minOpts);
    const out = opts.out ?? file.replace(/(\.json)?$/, '.min.json');
    if (r.reproduced) await writeFile(out, `${JSON.stringify(r.minimized, null, 2)}\n`);
    let reportDir: string | undefined;
    if (opts.report && r.reproduced && r.originalOutcome) {
      const store = storeFor(opts.dataDir);
      const host = opts.target === 'host';
      const kernel = host ? release() : kernelOfTarget(opts.target);
      const kernelConfig = host ? await readFile(`/boot/config-${release()}`, 'utf8').catch(() => undefined) : undefined;
      const filed = await fileFinding(store, { outcome: r.originalOutcome, theCase: loaded.theCase, target: opts.target, kernel, ...(host ? { kernelVersion: `${release()} ${version()}` } : {}) });
      // The minimization is done: file its result and write the report without running it again.
      const p = await processSignature(store, opts.dataDir, filed!.record.id, { executor, minimized: r, ...(kernelConfig ? { kernelConfig } : {}) });
      reportDir = p.report.dir;
    }
    const summary = {
      file,
      target: opts.target,
      reproduced: r.reproduced,
      signature: r.reproduced ? { id: r.signature.id, title: r.signature.title } : undefined,
      minimizedSignature: r.minimizedSignature ? { id: r.minimizedSignature.id, title: r.minimizedSignature.title } : undefined,
      originalRate: r.originalRate,
      finalRate: r.finalRate,
      policy: r.policy,
      executions: r.executions,
      rejected: r.rejected,
      infraErrors: r.infraErrors,
      elapsedMs: r.elapsedMs,
      budgetExhausted: r.budgetExhausted,
      stages: r.stages,
      out: r.reproduced ? out : undefined,
      reportDir,
    };
    if (opts.json) ctx.out(JSON.stringify(summary, null, 2));
    else if (!r.reproduced) ctx.out(`${file}: no finding on ${opts.target} in ${r.originalRate.runs} runs; nothing to minimize`);
    else {
      const s0 = r.stages[0]?.before;
      const s1 = r.stages[r.stages.length - 1]?.after;
      ctx.out(`${file}: ${r.signature.title} (${r.signature.id})`);
      ctx.out(`  shown in ${r.originalRate.reproduced} of ${r.originalRate.runs} runs; minimized in ${r.executions} runs (${(r.elapsedMs / 1000).toFixed(1)} s)${r.budgetExhausted ? ', budget exhausted' : ''}`);
      if (s0 && s1) ctx.out(`  ${s0.ops} ops, ${s0.threads} threads, ${s0.layers} layers -> ${s1.ops} ops, ${s1.threads} threads, ${s1.layers} layers; the result shows it in ${r.finalRate.reproduced} of ${r.finalRate.runs} runs`);
      ctx.out(`  minimized case: ${out}`);
      if (reportDir) ctx.out(`  report: ${reportDir}/report.md`);
    }
    return r.reproduced ? EXIT.finding : EXIT.pass;
  } finally {
    await target.close().catch(() => undefined);
  }
}

export function registerMinimize(program: Command, host: CommandHost): void {
  program
    .command('minimize')
    .description('minimize a case that shows a finding on a target (runs locally; the farm does it on its workers)')
    .argument('<file>', 'a case file')
    .requiredOption('-t, --target <name>', 'where to run the candidates: model, host (with --allow-host), qemu:<kernel>')
    .option('--allow-host', "allow the host target (this machine's kernel)")
    .option('-o, --out <file>', 'where to write the minimized case (default: FILE.min.json)')
    .option('--runs <n>', 'runs of the original and of the result, to measure the rate (default 5)')
    .option('--max-executions <n>', 'budget: runs on the target (default 2000)')
    .option('--max-seconds <s>', 'budget: wall time (default 1800)')
    .option('--match <mode>', "core (same bug; the path and stack may get simpler) or exact (same signature)", 'core')
    .option('--report', 'file the finding under the data directory and write its report folder')
    .option('-d, --data-dir <dir>', 'the data directory (with --report)', DEFAULT_DATA_DIR)
    .option('--json', 'print one JSON object')
    .action(async (file: string, opts: MinimizeCliOptions, cmd: Command) => {
      host.setExitCode(await minimizeCommand(file, opts, host.context(cmd)));
    });
}
