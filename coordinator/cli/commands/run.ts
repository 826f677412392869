/**
 * `blockfarm run FILE|DIR... --target NAME [--json]`: validate case files and
 * run each valid one on a target, judged by the oracle.
 *
 * Output (stdout):
 * - human: one line per case (verdict, name, duration, file), then for a
 *   divergence each divergence's op, expected, observed, offset and writers;
 *   an invalid file prints its `FILE: path: message` lines instead; with
 *   several cases, a summary line.
 * - --json: ONE object. One FILE argument naming a file: the per-case object
 *   `{verdict, target, case, file, divergences, notes, durationMs, ...}`.
 *   Otherwise (a directory, several arguments): `{target, results, summary}`.
 *   `verdict` is the RunOutcome kind (pass, divergence, crash, hang,
 *   unsupported, infra-error) or `invalid` for a file that is not a valid case.
 *
 * Exit: 0 pass, 1 finding, 2 bad input, 3 unsupported, 4 infrastructure
 * error; several cases combine by priority (see ../exit-codes.ts).
 * The reusable parts (runLoadedCases, the formatters) serve `campaign` too.
 */
import type { Command } from 'commander';
import { type Divergence, EXIT, type OutcomeKind, type RunOutcome, exitCodeFor } from '../../../model/index.ts';
import { runCase } from '../../../worker/run-case.ts';
import { factoryFor } from '../../../worker/targets/registry.ts';
import { type Target, type TargetOptions, TargetRefused } from '../../../worker/targets/target.ts';
import { type CaseProblem, type LoadedCase, expandCasePaths, loadCasePaths, problemLine } from '../case-files.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { combineExitCodes } from '../exit-codes.ts';
import { targetNameProblem } from '../../target-kinds.ts';

export type CaseVerdict = OutcomeKind | 'invalid';

/** One case's result as printed by --json. */
export interface CaseResult {
  verdict: CaseVerdict;
  target: string;
  /** The case's name, or null when the file is not a valid case. */
  case: string | null;
  file: string;
  divergences: Divergence[];
  notes: string[];
  durationMs: number;
  /** This case alone as a process exit code (model/verdict.ts EXIT). */
  exitCode: number;
  /** unsupported: why the target cannot run it. */
  reason?: string;
  /** infra-error: what went wrong with the target. */
  message?: string;
  /** crash, hang: the title and the console log. */
  title?: string;
  log?: string;
  /** invalid: what is wrong with the file. */
  problems?: CaseProblem[];
  /** With --kernel-log: the titled kernel reports of the run (findings, and the ones the case causes on purpose). */
  kernelReports?: KernelReportLine[];
}

/** One titled kernel report, as --kernel-log prints it. */
export interface KernelReportLine {
  title: string;
  /** The case causes it on purpose (fault injection, corruption): not a finding. */
  expected: boolean;
  /** It ended the case (a crash or hang title). */
  fatal?: boolean;
  /** How many times it was logged. */
  count: number;
}

const EXPECTED_NOTE = 'expected kernel report: ';

/** The kernel reports of an outcome: kernel-log divergences, expected-report notes, a crash or hang title. */
export function kernelReportLines(r: CaseResult): KernelReportLine[] {
  const out: KernelReportLine[] = [];
  const add = (title: string, expected: boolean, fatal = false) => {
    const same = out.find((k) => k.title === title && k.expected === expected && Boolean(k.fatal) === fatal);
    if (same) same.count++;
    else out.push({ title, expected, ...(fatal ? { fatal } : {}), count: 1 });
  };
  if ((r.verdict === 'crash' || r.verdict === 'hang') && r.title) add(r.title, false, true);
  for (const d of r.divergences) if (d.class === 'kernel-log') add(d.observed, false);
  for (const n of r.notes) if (n.startsWith(EXPECTED_NOTE)) add(n.slice(EXPECTED_NOTE.length), true);
  return out;
}

export interface RunSummary {
  cases: number;
  pass: number;
  divergence: number;
  crash: number;
  hang: number;
  unsupported: number;
  infraError: number;
  invalid: number;
  exitCode: number;
}

export interface RunReport {
  target: string;
  results: CaseResult[];
  summary: RunSummary;
}

function resultOf(file: string, name: string, o: RunOutcome, wallMs: number): CaseResult {
  const base = { verdict: o.kind, target: o.target, case: name, file, divergences: [] as Divergence[], notes: [] as string[], exitCode: exitCodeFor(o) };
  switch (o.kind) {
    case 'pass': return { ...base, notes: o.notes, durationMs: o.durationMs };
    case 'divergence': return { ...base, divergences: o.divergences, notes: o.notes, durationMs: o.durationMs };
    case 'crash':
    case 'hang': return { ...base, title: o.title, log: o.log, durationMs: o.durationMs };
    case 'unsupported': return { ...base, reason: o.reason, durationMs: wallMs };
    case 'infra-error': return { ...base, message: o.message, durationMs: wallMs };
  }
}

function invalidResult(target: string, l: Extract<LoadedCase, { ok: false }>): CaseResult {
  return { verdict: 'invalid', target, case: null, file: l.file, divergences: [], notes: [], durationMs: 0, exitCode: EXIT.badInput, problems: l.problems };
}

export function summarize(results: readonly CaseResult[]): RunSummary {
  const count = (v: CaseVerdict) => results.filter((r) => r.verdict === v).length;
  return {
    cases: results.length,
    pass: count('pass'),
    divergence: count('divergence'),
    crash: count('crash'),
    hang: count('hang'),
    unsupported: count('unsupported'),
    infraError: count('infra-error'),
    invalid: count('invalid'),
    exitCode: combineExitCodes(results.map((r) => r.exitCode)),
  };
}

/**
 * Run every valid loaded case on one target (created once, closed at the
 * end); invalid ones become 'invalid' results in place. The factory must
 * match `targetName` (check with factoryFor first).
 */
export async function runLoadedCases(loaded: readonly LoadedCase[], targetName: string, ctx: CliContext, targetOpts: TargetOptions = {}): Promise<RunReport> {
  const factory = factoryFor(targetName);
  if (!factory) throw new Error(`no target factory for '${targetName}'`);
  const results: CaseResult[] = [];
  let target: Target | undefined;
  let startError: string | undefined;
  if (loaded.some((l) => l.ok)) {
    try {
      target = await factory.create(targetName, targetOpts);
    } catch (err) {
      // A refusal (--allow-host missing, not root) is the user's to fix: it ends the command.
      if (err instanceof TargetRefused) throw err;
      startError = `could not start target '${targetName}': ${(err as Error).message}`;
      ctx.log.error({ target: targetName, err }, 'target start failed');
    }
  }
  try {
    for (const l of loaded) {
      if (!l.ok) {
        results.push(invalidResult(targetName, l));
        continue;
      }
      const name = l.theCase.name;
      if (!target) {
        results.push(resultOf(l.file, name, { kind: 'infra-error', target: targetName, message: startError ?? 'target not started' }, 0));
        continue;
      }
      ctx.log.debug({ file: l.file, case: name, target: targetName }, 'running case');
      const started = performance.now();
      const outcome = await runCase(target, l.theCase, l.info);
      const wallMs = Math.round(performance.now() - started);
      if (outcome.kind === 'infra-error') ctx.log.warn({ file: l.file, case: name, message: outcome.message }, 'infrastructure error');
      ctx.log.debug({ file: l.file, case: name, verdict: outcome.kind, ms: wallMs }, 'case done');
      results.push(resultOf(l.file, name, outcome, wallMs));
    }
  } finally {
    if (target) {
      try {
        await target.close();
      } catch (err) {
        ctx.log.warn({ target: targetName, err }, 'closing the target failed');
      }
    }
  }
  return { target: targetName, results, summary: summarize(results) };
}

// ---- human output ----

function opLabel(d: Divergence): string {
  if (d.op === undefined) return '';
  const where = [d.opKind, d.thread !== undefined ? `thread ${d.thread}` : undefined].filter(Boolean).join(', ');
  return `op ${d.op}${where ? ` (${where})` : ''}`;
}

function opsList(ops: readonly number[]): string {
  if (ops.length === 0) return 'none (initial content)';
  return `${ops.length === 1 ? 'op' : 'ops'} ${ops.join(', ')}`;
}

/** The lines under a divergence: class, op, object and offset, expected, observed, writers. */
export function divergenceLines(d: Divergence, index: number): string[] {
  const head = [
    d.dataClass ? `${d.class}/${d.dataClass}` : d.class,
    opLabel(d),
    d.object !== undefined ? `in '${d.object}'` : '',
    d.offset !== undefined ? `at offset ${d.offset}` : '',
  ].filter(Boolean);
  const lines = [`  divergence ${index + 1}: ${d.message}`, `    ${head.join(' ')}`, `    expected: ${d.expected}`, `    observed: ${d.observed}`];
  const writers = [
    d.expectedWriters ? `expected writers: ${opsList(d.expectedWriters)}` : '',
    d.observedWriter !== undefined ? `observed writer: op ${d.observedWriter}` : '',
  ].filter(Boolean);
  if (writers.length) lines.push(`    ${writers.join('; ')}`);
  return lines;
}

/** Lines explaining a result that is not a pass (empty for a pass). */
export function resultDetailLines(r: CaseResult): string[] {
  switch (r.verdict) {
    case 'pass': return [];
    case 'divergence': return [...r.divergences.flatMap(divergenceLines), ...r.notes.map((n) => `  note: ${n}`)];
    case 'crash':
    case 'hang': return [`  ${r.title ?? ''}`];
    case 'unsupported': return [`  unsupported on ${r.target}: ${r.reason ?? ''}`];
    case 'infra-error': return [`  infrastructure error on ${r.target}: ${r.message ?? ''}`];
    case 'invalid': return (r.problems ?? []).map((p) => problemLine(r.file, p));
  }
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "5 cases: 4 pass, 1 divergence", plus any other kind that occurred. */
export function summaryLine(s: RunSummary): string {
  const parts = [`${s.pass} pass`, plural(s.divergence, 'divergence', 'divergences')];
  if (s.crash) parts.push(plural(s.crash, 'crash', 'crashes'));
  if (s.hang) parts.push(plural(s.hang, 'hang', 'hangs'));
  if (s.unsupported) parts.push(`${s.unsupported} unsupported`);
  if (s.infraError) parts.push(plural(s.infraError, 'infrastructure error', 'infrastructure errors'));
  if (s.invalid) parts.push(`${s.invalid} invalid`);
  return `${plural(s.cases, 'case', 'cases')}: ${parts.join(', ')}`;
}

function humanReport(report: RunReport, kernelLog = false): string[] {
  const lines: string[] = [];
  for (const r of report.results) {
    if (r.verdict === 'invalid') {
      lines.push(...resultDetailLines(r));
      continue;
    }
    lines.push(`${r.verdict.padEnd(11)} ${r.case}  ${r.durationMs} ms  ${r.file}`, ...resultDetailLines(r));
    if (kernelLog) {
      const reports = r.kernelReports ?? [];
      if (!reports.length) lines.push('  kernel: no reports');
      for (const k of reports) lines.push(`  kernel${k.fatal ? '' : k.expected ? ' (expected)' : ''}: ${k.title}${k.count > 1 ? ` (x${k.count})` : ''}`);
    }
  }
  if (report.results.length > 1) lines.push(summaryLine(report.summary));
  return lines;
}

/** The --json document: one case's object, or the report. */
export function jsonReport(report: RunReport, single: boolean): unknown {
  const only = report.results[0];
  return single && report.results.length === 1 && only ? only : report;
}

/** Print a report the way `run` does; returns the exit code. */
export function printReport(report: RunReport, opts: { json: boolean; single: boolean }, ctx: CliContext): number {
  if (opts.json) {
    ctx.out(JSON.stringify(jsonReport(report, opts.single), null, 2));
    // Bad input still gets its clear lines, on stderr so stdout stays one JSON document.
    for (const r of report.results) if (r.verdict === 'invalid') for (const line of resultDetailLines(r)) ctx.err(line);
  } else for (const line of humanReport(report)) ctx.out(line);
  return report.summary.exitCode;
}

export interface RunOptions {
  target: string;
  json: boolean;
  allowHost?: boolean;
  /** Print each case's titled kernel reports. */
  kernelLog?: boolean;
}

export async function runCommand(paths: readonly string[], opts: RunOptions, ctx: CliContext): Promise<number> {
  const problem = targetNameProblem(opts.target);
  if (problem) {
    ctx.err(`blockfarm run: ${problem}`);
    return EXIT.badInput;
  }
  const expanded = await expandCasePaths(paths);
  const single = paths.length === 1 && expanded.length === 1 && expanded[0]?.file === paths[0];
  let report: RunReport;
  try {
    report = await runLoadedCases(await loadCasePaths(paths), opts.target, ctx, { allowHost: opts.allowHost });
  } catch (err) {
    if (!(err instanceof TargetRefused)) throw err;
    ctx.err(`blockfarm run: target '${opts.target}' refused: ${err.message}`);
    return err.exitCode;
  }
  if (opts.kernelLog) {
    for (const r of report.results) if (r.verdict !== 'invalid') r.kernelReports = kernelReportLines(r);
    if (!opts.json) {
      for (const line of humanReport(report, true)) ctx.out(line);
      return report.summary.exitCode;
    }
  }
  return printReport(report, { json: opts.json, single }, ctx);
}

export function registerRun(program: Command, host: CommandHost): void {
  program
    .command('run')
    .description('validate case files and run them on a target, judged against the model; directories expand to their *.json files')
    .argument('<paths...>', 'case files or directories of case files')
    .option('-t, --target <name>', "where to run: model; host (this machine's kernel; needs --allow-host and root); qemu (a VM with the newest fetched kernel) or qemu:<kernel id> (see 'blockfarm kernels list')", 'model')
    .option('--allow-host', "allow the host target: cases run on this machine's own kernel, and a kernel bug can take the machine down")
    .option('--json', 'print one JSON object on stdout (logs stay on stderr)')
    .option('--kernel-log', "print each case's titled kernel reports (with --json: a kernelReports array per case)")
    .addHelpText(
      'after',
      '\nExit codes: 0 pass, 1 finding (divergence, crash, hang), 2 bad input, 3 unsupported, 4 infrastructure error.\n' +
        'With several cases: 1 if any finding, else 2 if any bad input, else 4, else 3, else 0.',
    )
    .action(async (paths: string[], opts: RunOptions, cmd: Command) => {
      host.setExitCode(await runCommand(paths, opts, host.context(cmd)));
    });
}
